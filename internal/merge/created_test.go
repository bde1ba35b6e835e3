package merge

import (
	"bytes"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// MarshalCreated gives Marshal's bytes for the state an upsert creates,
// over every fixture record of every kind, with each of its fields
// cleared in turn, and for the states with no field or no stamp.
func TestMarshalCreatedIsMarshal(t *testing.T) {
	var cases []*change.Change
	device := ident.New().String()
	for i, r := range fixture.Generate(fixture.Options{N: 800, Seed: 7}).Records() {
		r.Normalize()
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		c := &change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f, HLC: hlc.Timestamp(1<<40 + i), Device: device}
		cases = append(cases, c)
		for n := range f {
			cleared := change.Fields{n: change.Null}
			cases = append(cases, &change.Change{Kind: c.Kind, ID: c.ID, Op: change.OpUpsert, Fields: cleared, HLC: c.HLC, Device: device})
		}
	}
	long := string(bytes.Repeat([]byte("d"), 300))
	for _, st := range []hlc.Stamp{{TS: 1, Device: ""}, {TS: 1<<63 + 5, Device: long}, {TS: 0, Device: device}} {
		for _, f := range []change.Fields{nil, {}, {2: change.Null}, {2: change.Null, 30: {0x01}, 300: {0x61, 'x'}}} {
			cases = append(cases, &change.Change{Kind: domain.KindActivity, ID: ident.New(), Op: change.OpUpsert, Fields: f, HLC: st.TS, Device: st.Device})
		}
	}
	for _, c := range cases {
		s := NewState()
		Apply(s, c.Kind, c)
		want, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := MarshalCreated(c.Fields.Encode(), c.Stamp())
		if err != nil {
			t.Fatalf("%s %x: %v", c.Kind, c.Fields.Encode(), err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s %x stamped %v:\ngot  %x\nwant %x", c.Kind, c.Fields.Encode(), c.Stamp(), got, want)
		}
	}
}

// What is not a field map as Fields.Encode gives it is refused, not
// encoded into a state that would not be Marshal's.
func TestMarshalCreatedRefusesOtherMaps(t *testing.T) {
	st := hlc.Stamp{TS: 7, Device: "d"}
	for name, b := range map[string][]byte{
		"id field":       {0xa1, 0x01, 0x00},
		"unsorted":       {0xa2, 0x03, 0x00, 0x02, 0x00},
		"repeated":       {0xa2, 0x02, 0x00, 0x02, 0x00},
		"not a map":      {0x80},
		"truncated":      {0xa2, 0x02, 0x00},
		"trailing bytes": {0xa1, 0x02, 0x00, 0x00},
		"empty":          {},
	} {
		if out, err := MarshalCreated(b, st); err == nil {
			t.Errorf("%s: encoded as %x", name, out)
		}
	}
}
