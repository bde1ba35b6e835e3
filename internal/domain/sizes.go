package domain

import (
	"fmt"
	"reflect"
	"strings"
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
	t := v.Type()
	total, longest, longestLen := 0, "", -1
	for i := 0; i < t.NumField(); i++ {
		name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		n := c.sizeOf(name, v.Field(i))
		total += n
		if n > longestLen {
			longest, longestLen = name, n
		}
	}
	if total > MaxRecordText {
		c.invalid(longest, "", fmt.Sprintf("l'enregistrement dépasse %d Kio de texte au total", MaxRecordText>>10))
	}
}

// sizeOf checks value v of field name and returns its bytes of text.
func (c *checker) sizeOf(name string, v reflect.Value) int {
	switch v.Kind() {
	case reflect.String:
		if v.Len() > MaxText {
			c.invalid(name, "", fmt.Sprintf("texte trop long : %d octets au plus", MaxText))
		}
		return v.Len()
	case reflect.Pointer:
		if v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return 0
		}
		return c.structSize(name, v.Elem())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Len() > MaxItems {
			c.invalid(name, "", fmt.Sprintf("%d éléments au plus", MaxItems))
		}
		if v.Type().Elem().Kind() != reflect.String {
			return 0
		}
		n := 0
		for i := 0; i < v.Len(); i++ {
			n += c.sizeOf(name, v.Index(i))
		}
		return n
	case reflect.Map:
		if v.Len() > MaxItems {
			c.invalid(name, "", fmt.Sprintf("%d éléments au plus", MaxItems))
		}
		n := 0
		for it := v.MapRange(); it.Next(); {
			n += c.sizeOf(name, it.Key()) + c.sizeOf(name, it.Value())
		}
		return n
	}
	return 0
}

// structSize checks the fields of a nested struct, named "outer.inner".
func (c *checker) structSize(name string, v reflect.Value) int {
	t, n := v.Type(), 0
	for i := 0; i < t.NumField(); i++ {
		inner := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		n += c.sizeOf(name+"."+inner, v.Field(i))
	}
	return n
}
