package domain_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/fixture"
)

// TestSizesMatchReference: the size checks by plan (sizePlanOf) find the
// same problems, in the same order, as the walk of every field by
// reflection, over fixture records of every kind and over each of them
// with one value pushed past its limit, or every text at its limit.
func TestSizesMatchReference(t *testing.T) {
	set := fixture.Generate(fixture.Options{N: 30, Seed: 5})
	kinds := map[domain.Kind]int{}
	checked, over := 0, 0
	for _, r := range set.Records() {
		r.Normalize()
		kinds[r.Kind()]++
		for _, v := range oversized(r) {
			got, want := domain.SizeProblems(v), domain.ReferenceSizeProblems(v)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %s:\nplan:      %v\nreference: %v", v.Kind(), v.RecordID(), got, want)
			}
			checked++
			if len(want) > 0 {
				over++
			}
		}
	}
	if len(kinds) != len(domain.Kinds) || over < checked/2 {
		t.Fatalf("%d kinds, %d of %d records over a limit: the test checks too little", len(kinds), over, checked)
	}
}

// oversized returns r, then copies of r each with one value over its
// limit (a text, a list, a table, a key or a value of a table, in r or in
// a struct r points to), then one with every text at its limit.
func oversized(r domain.Record) []domain.Record {
	out := []domain.Record{r}
	long := strings.Repeat("é", domain.MaxText/2) + "x"
	each(reflect.TypeOf(r).Elem(), nil, func(path []int, ft reflect.Type) {
		for _, val := range valuesOver(ft, long) {
			out = append(out, withValue(r, path, val))
		}
	})
	all := withValue(r, nil, reflect.Value{})
	each(reflect.TypeOf(r).Elem(), nil, func(path []int, ft reflect.Type) {
		if ft.Kind() == reflect.String {
			set(reflect.ValueOf(all).Elem(), path, reflect.ValueOf(strings.Repeat("t", domain.MaxText-len(path))))
		}
	})
	return append(out, all)
}

// each calls fn with the path and type of every field of struct type t,
// and of the structs its fields point to.
func each(t reflect.Type, path []int, fn func([]int, reflect.Type)) {
	for i := range t.NumField() {
		ft := t.Field(i).Type
		p := append(append([]int(nil), path...), i)
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
			each(ft.Elem(), p, fn)
			continue
		}
		fn(p, ft)
	}
}

// valuesOver returns values of type ft over a limit of sizes.
func valuesOver(ft reflect.Type, long string) []reflect.Value {
	items := func(n int, item func(i int) reflect.Value) reflect.Value {
		s := reflect.MakeSlice(ft, n, n)
		for i := range n {
			s.Index(i).Set(item(i))
		}
		return s
	}
	text := func(i int) reflect.Value { return reflect.ValueOf(fmt.Sprint("v", i)) }
	switch {
	case ft.Kind() == reflect.String:
		return []reflect.Value{reflect.ValueOf(long).Convert(ft)}
	case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
		return []reflect.Value{items(2, func(int) reflect.Value { return reflect.ValueOf(long) }), items(domain.MaxItems+1, text)}
	case ft.Kind() == reflect.Slice:
		return []reflect.Value{reflect.MakeSlice(ft, domain.MaxItems+1, domain.MaxItems+1)}
	case ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String:
		zero := reflect.Zero(ft.Elem())
		longKey := reflect.MakeMap(ft)
		longKey.SetMapIndex(reflect.ValueOf(long), zero)
		longKey.SetMapIndex(reflect.ValueOf("k"), zero)
		many := reflect.MakeMap(ft)
		for i := range domain.MaxItems + 1 {
			many.SetMapIndex(text(i), zero)
		}
		out := []reflect.Value{longKey, many}
		if ft.Elem().Kind() == reflect.String {
			longValue := reflect.MakeMap(ft)
			longValue.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf(long))
			out = append(out, longValue)
		}
		return out
	}
	return nil
}

// withValue returns a copy of r, the structs it points to copied too,
// with val at path (nothing set for a zero val).
func withValue(r domain.Record, path []int, val reflect.Value) domain.Record {
	cp := reflect.New(reflect.TypeOf(r).Elem())
	cp.Elem().Set(reflect.ValueOf(r).Elem())
	copyPointed(cp.Elem())
	if val.IsValid() {
		set(cp.Elem(), path, val)
	}
	return cp.Interface().(domain.Record)
}

// copyPointed gives struct v copies of the structs it points to,
// allocating those it lacks.
func copyPointed(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer || f.Type().Elem().Kind() != reflect.Struct {
			continue
		}
		n := reflect.New(f.Type().Elem())
		if !f.IsNil() {
			n.Elem().Set(f.Elem())
		}
		copyPointed(n.Elem())
		f.Set(n)
	}
}

func set(v reflect.Value, path []int, val reflect.Value) {
	for _, i := range path[:len(path)-1] {
		v = v.Field(i).Elem()
	}
	v.Field(path[len(path)-1]).Set(val)
}
