package wire

import (
	"bytes"
	"strings"
	"testing"

	"numeribus/internal/ident"
)

// The version 2 fields round-trip, and a tag of the wrong size is refused
// by the decoder, whichever message carries it.
func TestVersion2FieldsRoundTrip(t *testing.T) {
	id := ident.New()
	tg := ChangeTag(41, 1<<20, id, 1)
	for _, m := range []Message{
		&Welcome{HWM: 41, LastTag: tg},
		&Pull{Cursor: 9, Tag: tg, Own: true},
		&Changes{Next: 9, Tag: tg, Reset: true},
	} {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%T): %v", m, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%T): %v", m, err)
		}
		b2, _ := Encode(got)
		if !bytes.Equal(b, b2) {
			t.Errorf("%T did not round-trip", m)
		}
	}
	if _, err := Encode(&Pull{Cursor: 1, Tag: tg[:5]}); err == nil || !strings.Contains(err.Error(), "tag") {
		t.Errorf("a 5-byte tag was encoded: %v", err)
	}
}

// Tags tell changes apart by every part of their identity.
func TestTagsDiffer(t *testing.T) {
	id, other := ident.New(), ident.New()
	base := ChangeTag(5, 100, id, 1)
	for name, tg := range map[string][]byte{
		"seq": ChangeTag(6, 100, id, 1), "hlc": ChangeTag(5, 101, id, 1),
		"id": ChangeTag(5, 100, other, 1), "op": ChangeTag(5, 100, id, 2),
		"log": LogTag(5, "d", 5, 100, id, 1),
	} {
		if bytes.Equal(tg, base) || len(tg) != TagSize {
			t.Errorf("changing the %s gives the same tag", name)
		}
	}
	if !bytes.Equal(base, ChangeTag(5, 100, id, 1)) {
		t.Error("a tag is not deterministic")
	}
	l := LogTag(7, "d", 5, 100, id, 1)
	if bytes.Equal(l, LogTag(7, "e", 5, 100, id, 1)) || bytes.Equal(l, LogTag(8, "d", 5, 100, id, 1)) {
		t.Error("log tags ignore the device or the hub seq")
	}
}
