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
//
// It walks the fields that can hold text or items only, by a plan made
// once per struct type (sizePlanOf): every record is validated at each
// save and at the hub for each change it receives, beside the hub's one
// SQLite writer (issue #13), and walking every field by reflection, map
// entries copied out one by one, was 40% of a record's validation.
func (c *checker) sizes(r Record) {
	v := reflect.ValueOf(r).Elem()
	total, longest, longestLen := 0, "", -1
	// A field that can hold no text counts 0: never the longest of a
	// record over MaxRecordText, so leaving it out changes nothing.
	for _, f := range sizePlanOf(v.Type()) {
		n := c.fieldSize("", f, v.Field(f.index))
		total += n
		if n > longestLen {
			longest, longestLen = f.name, n
		}
	}
	if total > MaxRecordText {
		c.invalid(longest, "", fmt.Sprintf("l'enregistrement dépasse %d Kio de texte au total", MaxRecordText>>10))
	}
}

// sizeField is a field of a struct that can hold text or items: its
// index, JSON name and kind, and for a pointer to a struct, that
// struct's plan.
type sizeField struct {
	index  int
	name   string
	kind   reflect.Kind
	nested func() []sizeField
}

// sizePlans holds the plan of each struct type sizes has walked.
var sizePlans sync.Map // reflect.Type → []sizeField

// sizePlanOf returns the fields of struct type t that sizeOf may find
// text or items in, in order: strings, slices, arrays of strings, maps,
// pointers to structs.
func sizePlanOf(t reflect.Type) []sizeField {
	if p, ok := sizePlans.Load(t); ok {
		return p.([]sizeField)
	}
	var plan []sizeField
	for i, name := range fieldNames(t) {
		ft := t.Field(i).Type
		f := sizeField{index: i, name: name, kind: ft.Kind()}
		switch {
		case f.kind == reflect.String, f.kind == reflect.Slice, f.kind == reflect.Map,
			f.kind == reflect.Array && ft.Elem().Kind() == reflect.String:
		case f.kind == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			elem := ft.Elem()
			f.nested = func() []sizeField { return sizePlanOf(elem) } // lazily: a type may hold itself
		default:
			continue
		}
		plan = append(plan, f)
	}
	sizePlans.Store(t, plan)
	return plan
}

// fieldSize is sizeOf of field f (of the nested struct outer, if not
// empty), whose value is v, by its plan.
func (c *checker) fieldSize(outer string, f sizeField, v reflect.Value) int {
	switch f.kind {
	case reflect.String:
		if n := v.Len(); n <= MaxText {
			return n
		}
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		field := f.name
		if outer != "" {
			field = outer + "." + f.name
		}
		n, e := 0, v.Elem()
		for _, inner := range f.nested() {
			n += c.fieldSize(field, inner, e.Field(inner.index))
		}
		return n
	case reflect.Map:
		if n, ok := c.tableSize(outer, f.name, v); ok {
			return n
		}
	}
	return c.sizeOf(outer, f.name, v)
}

// tableSize is sizeOf of a table of the records' own types, read without
// reflection; false for any other map.
func (c *checker) tableSize(outer, name string, v reflect.Value) (int, bool) {
	if !v.CanInterface() {
		return 0, false
	}
	n := 0
	switch m := v.Interface().(type) {
	case map[string]int:
		if len(m) > MaxItems {
			return 0, false // the problem is told by sizeOf
		}
		for k := range m {
			n += c.textSize(outer, name, k)
		}
	case map[string]string:
		if len(m) > MaxItems {
			return 0, false
		}
		for k, val := range m {
			n += c.textSize(outer, name, k) + c.textSize(outer, name, val)
		}
	default:
		return 0, false
	}
	return n, true
}

// textSize is sizeOf of a text value s.
func (c *checker) textSize(outer, name, s string) int {
	if len(s) > MaxText {
		field := name
		if outer != "" {
			field = outer + "." + name
		}
		c.invalid(field, "", fmt.Sprintf("texte trop long : %d octets au plus", MaxText))
	}
	return len(s)
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
