package change

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"numeribus/internal/domain"
)

// readEncoded returns a change whose fields are read from b (values
// sub-slices of b, as the wire reads a pushed change) with b as its
// encoding hint; false when b is not a field map.
func readEncoded(b []byte) (*Change, bool) {
	f, err := splitMap(b, 1<<64-1)
	if err != nil {
		return nil, false
	}
	c := &Change{Fields: f}
	c.SetEncoded(b)
	return c, true
}

// checkEncoded checks the promise of Encoded on c: the bytes it gives are
// Fields.Encode's. It returns whether it gave any.
func checkEncoded(t *testing.T, c *Change) bool {
	t.Helper()
	got, ok := c.Encoded()
	if ok && !bytes.Equal(got, c.Fields.Encode()) {
		t.Fatalf("Encoded gave %x, Fields.Encode gives %x", got, c.Fields.Encode())
	}
	return ok
}

// A pushed field map, as agents encode it, is used as it is: over every
// fixture record.
func TestEncodedIsTheHintWhenItIsEncode(t *testing.T) {
	_, fields := fixtureFields(t)
	for _, f := range fields {
		c, ok := readEncoded(f.Encode())
		if !ok || !checkEncoded(t, c) {
			t.Fatalf("%x: the hint is not used", f.Encode())
		}
	}
}

// A hint that is not exactly Fields.Encode's bytes, or no longer, is not
// used.
func TestEncodedRefusesWhatIsNotEncode(t *testing.T) {
	good := Fields{2: {0x61, 'a'}, 3: {0x01}, 30: Null}.Encode() // a3 02 6161 03 01 181e f6
	for name, edit := range map[string]func(c *Change){
		"no hint":        func(c *Change) { c.SetEncoded(nil) },
		"field dropped":  func(c *Change) { delete(c.Fields, 3) },
		"field added":    func(c *Change) { c.Fields[4] = Null },
		"value replaced": func(c *Change) { c.Fields[3] = []byte{0x01} }, // same bytes, other memory
		"value cut":      func(c *Change) { c.Fields[2] = c.Fields[2][:1] },
		"fields erased":  func(c *Change) { c.Fields = WithoutPersonal(domain.KindActivity, Fields{13: Null}) },
	} {
		c, _ := readEncoded(good)
		edit(c)
		if checkEncoded(t, c) {
			t.Errorf("%s: the hint is used", name)
		}
	}
	for name, b := range map[string][]byte{
		"unsorted":         {0xa2, 0x03, 0x01, 0x02, 0x61, 'a'},
		"long map head":    {0xb8, 0x01, 0x02, 0x01},
		"long key head":    {0xa1, 0x18, 0x02, 0x01},
		"bytes after":      {0xa1, 0x02, 0x01, 0x00},
		"not a map":        {0x81, 0x02},
		"repeated key":     {0xa2, 0x02, 0x01, 0x02, 0x01},
		"indefinite value": {0xa1, 0x02, 0x7f, 0x61, 'a', 0xff},
	} {
		c, ok := readEncoded(b)
		if !ok {
			c = &Change{Fields: Fields{2: {0x01}}}
			c.SetEncoded(b)
		}
		if checkEncoded(t, c) {
			t.Errorf("%s: the hint is used", name)
		}
	}
}

// Mutated field maps keep the promise: the hint is used only when it is
// Fields.Encode's bytes.
func TestEncodedOnMutatedMaps(t *testing.T) {
	_, fields := fixtureFields(t)
	rng := rand.New(rand.NewPCG(3, 4))
	used := 0
	for _, f := range fields {
		for range 8 {
			if c, ok := readEncoded(mutate(rng, f.Encode())); ok && checkEncoded(t, c) {
				used++
			}
		}
	}
	if used == 0 {
		t.Error("no mutated map was used: the test tries nothing")
	}
}
