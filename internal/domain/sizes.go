package domain

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Size limits of a record. A record travels whole in one change of one
// frame (wire.MaxFrame, 4 MiB) and in batches of a few hundred KiB: a
// record larger than a batch would stop its laptop's outbox, and one
// larger than a frame could never be sent at all. These bounds keep any
// valid record under MaxRecordText of text, far below both, whatever is
// typed, pasted or imported; the hub checks them too (change.CheckValues),
// so no device can send its team a record they cannot take.
const (
	// MaxText is the most bytes of one text value (a note of several
	// pages fits: about 8,000 accented characters).
	MaxText = 16 << 10
	// MaxItems is the most entries of one list or table (codes, the
	// followed participants of a workshop, head counts by category).
	MaxItems = 1000
	// MaxRecordText is the most bytes of text of one record, all fields
	// together.
	MaxRecordText = 64 << 10
)

// sizes adds a problem for each value of r over its limit, and one for
// the record when its text together is over MaxRecordText (named after
// its longest field). r is a pointer to a record struct.
func (c *checker) sizes(r Record) {
	v := reflect.ValueOf(r).Elem()
	names := fieldNames(v.Type())
	total, longest, longestLen := 0, "", -1
	for i, name := range names {
		n := c.sizeOf("", name, v.Field(i))
		total += n
		if n > longestLen {
			longest, longestLen = name, n
		}
	}
	if total > MaxRecordText {
		c.invalid(longest, "", fmt.Sprintf("l'enregistrement dépasse %d Kio de texte au total", MaxRecordText>>10))
	}
}

// namesByType holds the JSON names of the fields of each struct type
// sizes has walked: every record is validated at each save and at the hub
// for each change it receives, and reading the tags again each time was
// most of the cost of sizes.
var namesByType sync.Map // reflect.Type → []string

// fieldNames returns the JSON names of struct type t's fields, in order.
func fieldNames(t reflect.Type) []string {
	if names, ok := namesByType.Load(t); ok {
		return names.([]string)
	}
	names := make([]string, t.NumField())
	for i := range names {
		names[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	namesByType.Store(t, names)
	return names
}

// sizeOf checks value v of field name (of the nested struct outer, if
// not empty) and returns its bytes of text.
func (c *checker) sizeOf(outer, name string, v reflect.Value) int {
	field := func() string {
		if outer == "" {
			return name
		}
		return outer + "." + name
	}
	switch v.Kind() {
	case reflect.String:
		if v.Len() > MaxText {
			c.invalid(field(), "", fmt.Sprintf("texte trop long : %d octets au plus", MaxText))
		}
		return v.Len()
	case reflect.Pointer:
		if v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return 0
		}
		return c.structSize(field(), v.Elem())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Len() > MaxItems {
			c.invalid(field(), "", fmt.Sprintf("%d éléments au plus", MaxItems))
		}
		if v.Type().Elem().Kind() != reflect.String {
			return 0
		}
		n := 0
		for i := 0; i < v.Len(); i++ {
			n += c.sizeOf(outer, name, v.Index(i))
		}
		return n
	case reflect.Map:
		if v.Len() > MaxItems {
			c.invalid(field(), "", fmt.Sprintf("%d éléments au plus", MaxItems))
		}
		n := 0
		for it := v.MapRange(); it.Next(); {
			n += c.sizeOf(outer, name, it.Key()) + c.sizeOf(outer, name, it.Value())
		}
		return n
	}
	return 0
}

// structSize checks the fields of a nested struct, named "outer.inner".
func (c *checker) structSize(outer string, v reflect.Value) int {
	n := 0
	for i, inner := range fieldNames(v.Type()) {
		n += c.sizeOf(outer, inner, v.Field(i))
	}
	return n
}
