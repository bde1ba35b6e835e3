package change

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"numeribus/internal/cborx"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
)

// sameAsLibrary checks the invariant of the fast decoder on f: when it
// decodes, the library decodes too, to an equal record (nil and empty
// lists and tables told apart); when the library refuses, so does it.
// It returns whether the fast decoder took f.
func sameAsLibrary(t *testing.T, k domain.Kind, f Fields) bool {
	t.Helper()
	id := ident.New()
	want, werr := decodeLibrary(k, id, f)
	got, ok := decodeFast(k, f)
	if !ok {
		return false
	}
	got.SetRecordID(id)
	if werr != nil {
		t.Fatalf("%s %x: the fast decoder took what the library refuses (%v): %#v", k, f.Encode(), werr, got)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %x:\nfast    %#v\nlibrary %#v", k, f.Encode(), got, want)
	}
	return true
}

// fixtureFields returns the field maps of the records of a few fixture
// sets, as agents encode them, with their kinds.
func fixtureFields(t *testing.T) ([]domain.Kind, []Fields) {
	t.Helper()
	var kinds []domain.Kind
	var fields []Fields
	for _, seed := range []uint64{1, 2, 3} {
		for _, r := range fixture.Generate(fixture.Options{N: 600, Seed: seed}).Records() {
			r.Normalize()
			f, err := Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			kinds, fields = append(kinds, r.Kind()), append(fields, f)
		}
	}
	return kinds, fields
}

// Every fixture record decodes the fast way, to what the library gives;
// so does each of its fields alone, and each cleared (null).
func TestDecodeFastIsTheLibrary(t *testing.T) {
	kinds, fields := fixtureFields(t)
	for i, f := range fields {
		k := kinds[i]
		if !sameAsLibrary(t, k, f) {
			t.Fatalf("%s %x: a fixture record is left to the library", k, f.Encode())
		}
		for n, v := range f {
			if !sameAsLibrary(t, k, Fields{n: v}) || !sameAsLibrary(t, k, Fields{n: Null}) {
				t.Fatalf("%s field %d (%x) alone is left to the library", k, n, v)
			}
		}
	}
}

// Every field of every kind, and of the nested structs, has a fast
// decoder: a field added to the domain without one would quietly send
// every record of its kind to the library.
func TestDecodeFastKnowsEveryField(t *testing.T) {
	for _, k := range domain.Kinds {
		for _, fd := range domain.Fields(k) {
			if fd.Num == domain.IDField {
				continue
			}
			if _, ok := decodeFast(k, Fields{fd.Num: Null}); !ok {
				t.Errorf("%s: no fast decoder of field %d (%s)", k, fd.Num, fd.Name)
			}
		}
	}
	for _, c := range []struct {
		typ  reflect.Type
		sets int
	}{
		{reflect.TypeFor[domain.Orientation](), countSet(orientationSetters)},
		{reflect.TypeFor[domain.Participants](), countSet(participantsSetters)},
	} {
		if c.typ.NumField() != c.sets {
			t.Errorf("%s has %d fields, the fast decoder knows %d", c.typ, c.typ.NumField(), c.sets)
		}
	}
}

func countSet[R any](sets []setter[R]) int {
	n := 0
	for _, s := range sets {
		if s != nil {
			n++
		}
	}
	return n
}

// hexes builds an encoded item from its bytes.
func hexes(b ...byte) []byte { return b }

// The shapes at the edges, one field at a time: what the fast decoder
// takes must decode as from the library, what the library refuses it
// must leave to the library, and the rest it may leave.
func TestDecodeFastEdges(t *testing.T) {
	id := ident.New()
	idBytes := cborx.AppendHead(nil, cborx.Bytes, 16)
	idBytes = append(idBytes, id[:]...)
	long := cborx.AppendHead(nil, cborx.Text, 300)
	for range 300 {
		long = append(long, 'a')
	}
	values := map[string][]byte{
		"null":                             hexes(0xf6),
		"undefined":                        hexes(0xf7),
		"false":                            hexes(0xf4),
		"true":                             hexes(0xf5),
		"zero":                             hexes(0x00),
		"23":                               hexes(0x17),
		"24 long head":                     hexes(0x18, 0x05),
		"max int":                          hexes(0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"over max int":                     hexes(0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0),
		"-1":                               hexes(0x20),
		"min int":                          hexes(0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"under min int":                    hexes(0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0),
		"float":                            hexes(0xf9, 0x3c, 0x00),
		"empty text":                       hexes(0x60),
		"text":                             hexes(0x63, 'a', 'b', 'c'),
		"text long head":                   hexes(0x78, 0x03, 'a', 'b', 'c'),
		"long text":                        long,
		"accented text":                    hexes(0x62, 0xc3, 0xa9),
		"invalid utf-8":                    hexes(0x62, 0xc3, 0x28),
		"truncated text":                   hexes(0x63, 'a'),
		"text and more":                    hexes(0x61, 'a', 0x00),
		"indefinite text":                  hexes(0x7f, 0x61, 'a', 0xff),
		"bytes":                            hexes(0x43, 'a', 'b', 'c'),
		"id":                               idBytes,
		"short id":                         idBytes[:len(idBytes)-1],
		"15-byte id":                       append(hexes(0x4f), id[:15]...),
		"17-byte id":                       append(append(hexes(0x51), id[:]...), 0),
		"tagged text":                      hexes(0xc0, 0x61, 'a'),
		"empty list":                       hexes(0x80),
		"list":                             hexes(0x82, 0x61, 'a', 0x61, 'b'),
		"list of ids":                      append(hexes(0x81), idBytes...),
		"list with null":                   hexes(0x82, 0x61, 'a', 0xf6),
		"list of ints":                     hexes(0x81, 0x01),
		"list too long":                    hexes(0x83, 0x61, 'a'),
		"list and more":                    hexes(0x81, 0x61, 'a', 0x00),
		"indefinite list":                  hexes(0x9f, 0x61, 'a', 0xff),
		"empty map":                        hexes(0xa0),
		"counts":                           hexes(0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x20),
		"texts by text":                    hexes(0xa1, 0x61, 'a', 0x61, '1'),
		"repeated text key":                hexes(0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02),
		"null count":                       hexes(0xa1, 0x61, 'a', 0xf6),
		"bytes key":                        hexes(0xa1, 0x41, 'a', 0x01),
		"int key":                          hexes(0xa1, 0x01, 0x01),
		"struct":                           hexes(0xa2, 0x01, 0xf5, 0x02, 0x61, 'x'),
		"struct, nulls":                    hexes(0xa2, 0x01, 0xf6, 0x02, 0xf6),
		"struct, key 3":                    hexes(0xa1, 0x03, 0x01),
		"struct, key 0":                    hexes(0xa1, 0x00, 0x01),
		"struct, dup key":                  hexes(0xa2, 0x01, 0xf5, 0x01, 0xf4),
		"struct, text key":                 hexes(0xa1, 0x61, '1', 0xf5),
		"participants":                     append(append(hexes(0xa4, 0x01, 0x81), idBytes...), 0x02, 0x0c, 0x03, 0x01, 0x04, 0xa1, 0x61, 'f', 0x07),
		"participants, repeated count key": hexes(0xa1, 0x04, 0xa2, 0x61, 'f', 0x01, 0x61, 'f', 0x02),
		"texts by text, repeated key":      hexes(0xa2, 0x61, 'a', 0x61, '1', 0x61, 'a', 0x61, '2'),
		"participants, bad":                hexes(0xa1, 0x04, 0xa1, 0x61, 'f', 0x61, 'x'),
		"truncated map":                    hexes(0xa2, 0x01, 0xf5),
		"empty":                            {},
		"reserved":                         hexes(0x1c),
	}
	taken := 0
	for _, k := range domain.Kinds {
		for _, fd := range domain.Fields(k) {
			if fd.Num == domain.IDField {
				continue
			}
			for name, v := range values {
				t.Run(fmt.Sprintf("%s/%s/%s", k, fd.Name, name), func(t *testing.T) {
					if sameAsLibrary(t, k, Fields{fd.Num: v}) {
						taken++
					}
				})
			}
		}
	}
	if taken < 100 {
		t.Errorf("the fast decoder took only %d of the edge cases", taken)
	}
}

// Fixture values mutated at random — a byte changed, inserted, dropped,
// the value cut — keep the invariant: the fast decoder takes only what
// decodes as from the library.
func TestDecodeFastOnMutatedValues(t *testing.T) {
	kinds, fields := fixtureFields(t)
	rng := rand.New(rand.NewPCG(1, 2))
	taken := 0
	for i, f := range fields {
		for n, v := range f {
			for range 8 {
				m := mutate(rng, v)
				if sameAsLibrary(t, kinds[i], Fields{n: m}) {
					taken++
				}
			}
		}
	}
	if taken == 0 {
		t.Error("no mutated value was taken by the fast decoder: the test tries nothing")
	}
	t.Logf("%d mutated values taken by the fast decoder", taken)
}

// mutate returns a copy of v with one random change.
func mutate(rng *rand.Rand, v []byte) []byte {
	m := append([]byte(nil), v...)
	if len(m) == 0 {
		return []byte{byte(rng.IntN(256))}
	}
	at := rng.IntN(len(m))
	switch rng.IntN(5) {
	case 0:
		m[at] = byte(rng.IntN(256))
	case 1:
		m[at] ^= 1 << rng.IntN(8)
	case 2:
		m = append(m[:at], append([]byte{byte(rng.IntN(256))}, m[at:]...)...)
	case 3:
		m = append(m[:at], m[at+1:]...)
	case 4:
		m = m[:at]
	}
	return m
}

// FuzzDecodeFast checks the invariant of the fast decoder on any value of
// any field.
func FuzzDecodeFast(f *testing.F) {
	f.Add(uint8(0), uint64(2), []byte{0x63, 'a', 'b', 'c'})
	f.Add(uint8(0), uint64(22), []byte{0xa2, 0x02, 0x0c, 0x04, 0xa1, 0x61, 'f', 0x07})
	f.Add(uint8(3), uint64(4), []byte{0xa1, 0x61, 'a', 0x61, '1'})
	f.Fuzz(func(t *testing.T, kind uint8, num uint64, v []byte) {
		k := domain.Kinds[int(kind)%len(domain.Kinds)]
		sameAsLibrary(t, k, Fields{num: v})
	})
}
