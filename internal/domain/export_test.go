package domain

import (
	"fmt"
	"reflect"
)

// SizeProblems returns the problems sizes finds in r.
func SizeProblems(r Record) []Problem {
	var c checker
	c.sizes(r)
	return c.problems
}

// ReferenceSizeProblems returns the problems of r's sizes as the walk of
// every field by reflection found them before the plans of sizePlanOf:
// the reference the plans must match (TestSizesMatchReference).
func ReferenceSizeProblems(r Record) []Problem {
	var c checker
	v := reflect.ValueOf(r).Elem()
	total, longest, longestLen := 0, "", -1
	for i, name := range fieldNames(v.Type()) {
		n := c.referenceSizeOf("", name, v.Field(i))
		total += n
		if n > longestLen {
			longest, longestLen = name, n
		}
	}
	if total > MaxRecordText {
		c.invalid(longest, "", fmt.Sprintf("l'enregistrement dépasse %d Kio de texte au total", MaxRecordText>>10))
	}
	return c.problems
}

func (c *checker) referenceSizeOf(outer, name string, v reflect.Value) int {
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
		n := 0
		for i, inner := range fieldNames(v.Elem().Type()) {
			n += c.referenceSizeOf(field(), inner, v.Elem().Field(i))
		}
		return n
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Len() > MaxItems {
			c.invalid(field(), "", fmt.Sprintf("%d éléments au plus", MaxItems))
		}
		if v.Type().Elem().Kind() != reflect.String {
			return 0
		}
		n := 0
		for i := 0; i < v.Len(); i++ {
			n += c.referenceSizeOf(outer, name, v.Index(i))
		}
		return n
	case reflect.Map:
		if v.Len() > MaxItems {
			c.invalid(field(), "", fmt.Sprintf("%d éléments au plus", MaxItems))
		}
		n := 0
		for it := v.MapRange(); it.Next(); {
			n += c.referenceSizeOf(outer, name, it.Key()) + c.referenceSizeOf(outer, name, it.Value())
		}
		return n
	}
	return 0
}
