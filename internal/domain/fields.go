package domain

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Field describes one top-level field of a kind: its stable number (the
// storage and wire identity), its JSON name, and whether it is personal
// data (removed by an erasure).
type Field struct {
	Num      uint64
	Name     string
	Personal bool
}

// IDField is the number of the id field in every kind. It is carried
// beside the fields of a change, never among them.
const IDField = 1

var fieldTables = map[Kind][]Field{}

func init() {
	for _, k := range Kinds {
		t := reflect.TypeOf(New(k)).Elem()
		var fs []Field
		seen := map[uint64]bool{}
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			num, err := strconv.ParseUint(strings.Split(sf.Tag.Get("cbor"), ",")[0], 10, 64)
			if err != nil || seen[num] {
				panic(fmt.Sprintf("domain: %s.%s: cbor field number missing or repeated", t.Name(), sf.Name))
			}
			seen[num] = true
			name := strings.Split(sf.Tag.Get("json"), ",")[0]
			fs = append(fs, Field{Num: num, Name: name, Personal: sf.Tag.Get("personal") == "true"})
		}
		fieldTables[k] = fs
		for i := range fs {
			for uint64(len(fieldsByNum[k])) <= fs[i].Num {
				fieldsByNum[k] = append(fieldsByNum[k], nil)
			}
			fieldsByNum[k][fs[i].Num] = &fs[i]
		}
	}
}

// Fields returns the fields of kind k in declaration order.
func Fields(k Kind) []Field { return fieldTables[k] }

// fieldsByNum holds the fields of each kind by number (nil where none),
// filled with fieldTables: FieldByNum runs for every field of every
// change the hub checks.
var fieldsByNum = map[Kind][]*Field{}

// FieldByNum returns the field numbered num of kind k.
func FieldByNum(k Kind, num uint64) (Field, bool) {
	byNum := fieldsByNum[k]
	if num >= uint64(len(byNum)) || byNum[num] == nil {
		return Field{}, false
	}
	return *byNum[num], true
}

var personalTables = map[Kind][]uint64{}

func init() {
	for k, fs := range fieldTables {
		for _, f := range fs {
			if f.Personal {
				personalTables[k] = append(personalTables[k], f.Num)
			}
		}
	}
}

// personalIndexes holds, per record struct type, the indexes of its
// fields tagged personal: hasPersonal runs for every person the hub
// receives, and reading the tags each time was most of it.
var personalIndexes = func() map[reflect.Type][]int {
	m := map[reflect.Type][]int{}
	for _, k := range Kinds {
		t := reflect.TypeOf(New(k)).Elem()
		m[t] = []int{} // known, even without a personal field
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("personal") == "true" {
				m[t] = append(m[t], i)
			}
		}
	}
	return m
}()

// hasPersonal reports whether r, a pointer to a record struct, sets any
// field tagged personal: the one list of what identifies someone.
func hasPersonal(r Record) bool {
	v := reflect.ValueOf(r).Elem()
	idx, ok := personalIndexes[v.Type()]
	if !ok {
		panic(fmt.Sprintf("domain: %s is not a record type", v.Type()))
	}
	for _, i := range idx {
		if !v.Field(i).IsZero() {
			return true
		}
	}
	return false
}

// PersonalFields returns the numbers of the personal fields of kind k:
// what an erasure strips. The slice is shared: do not modify it.
func PersonalFields(k Kind) []uint64 { return personalTables[k] }
