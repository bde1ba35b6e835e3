package change

import (
	"bytes"
	"maps"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/domain"
)

// An erasure leaves no field tagged personal, of any kind, whatever its
// value (set, nested, cleared), and every other field as it was; on the
// field map and on its encoding alike. The fields come from the domain's
// tags, not from a list kept here.
func TestWithoutPersonalStripsEveryPersonalField(t *testing.T) {
	raw := func(v any) cbor.RawMessage {
		b, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	values := []struct {
		name string
		v    cbor.RawMessage
	}{
		{"a string", raw("Léa Roux")},
		{"a number", raw(1980)},
		{"nested", raw(map[string]any{"genre": map[string]int{"feminin": 2}, "ids": []any{"x", nil, []int{1, 2}}})},
		{"cleared", Null},
	}
	personal, other := 0, 0
	for _, k := range domain.Kinds {
		for _, fd := range domain.Fields(k) {
			if fd.Personal {
				personal++
			} else if fd.Num != domain.IDField {
				other++
			}
		}
		for _, val := range values {
			all := Fields{}
			for _, fd := range domain.Fields(k) {
				if fd.Num == domain.IDField {
					continue
				}
				all[fd.Num] = val.v
				t.Run(string(k)+"/"+fd.Name+" alone, "+val.name, func(t *testing.T) {
					checkWithoutPersonal(t, k, Fields{fd.Num: val.v})
				})
			}
			t.Run(string(k)+"/every field, "+val.name, func(t *testing.T) {
				checkWithoutPersonal(t, k, all)
			})
		}
	}
	if personal < 10 || other == 0 {
		t.Fatalf("%d personal and %d other fields checked", personal, other)
	}
}

func checkWithoutPersonal(t *testing.T, k domain.Kind, f Fields) {
	t.Helper()
	before := maps.Clone(f)
	got := WithoutPersonal(k, f)
	kept := 0
	for _, fd := range domain.Fields(k) {
		v, in := f[fd.Num]
		g, out := got[fd.Num]
		switch {
		case fd.Personal && out:
			t.Errorf("personal field %s kept", fd.Name)
		case !fd.Personal && in && (!out || !bytes.Equal(g, v)):
			t.Errorf("field %s: %x, want %x as it was", fd.Name, g, v)
		case !fd.Personal && in:
			kept++
		}
	}
	if len(got) != kept {
		t.Errorf("%d fields left, want %d", len(got), kept)
	}
	if !maps.EqualFunc(f, before, func(a, b cbor.RawMessage) bool { return bytes.Equal(a, b) }) {
		t.Errorf("the caller's map was modified: %v", f.Nums())
	}

	in := f.Encode()
	enc, dropped, err := WithoutPersonalEncoded(k, in)
	if err != nil {
		t.Fatal(err)
	}
	if dropped != (len(got) != len(f)) {
		t.Errorf("encoded: dropped = %v with %d of %d fields left", dropped, len(got), len(f))
	}
	if want := got.Encode(); !bytes.Equal(enc, want) {
		t.Errorf("encoded: %x, want %x", enc, want)
	}
}
