package merge

import (
	"bytes"
	"strings"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/hlc"
)

// marshalReflect is the oracle of Marshal: the same state through
// stateWire and the library, with maps where Marshal searches slices.
// Marshal must give its bytes exactly (TestMergeIsOrderIndependentAndIdempotent, TestMarshalMatchesLibrary).
func (s *State) marshalReflect() ([]byte, error) {
	w := stateWire{Fields: s.Fields, Clocks: make(map[uint64]uint64, len(s.Clocks))}
	devs := map[string]uint64{}
	stamps := map[hlc.Stamp]uint64{}
	idx := func(st hlc.Stamp) uint64 {
		if i, ok := stamps[st]; ok {
			return i
		}
		d, ok := devs[st.Device]
		if !ok {
			d = uint64(len(w.Devices))
			devs[st.Device] = d
			w.Devices = append(w.Devices, st.Device)
		}
		i := uint64(len(w.Stamps))
		w.Stamps = append(w.Stamps, [2]uint64{uint64(st.TS), d})
		stamps[st] = i
		return i
	}
	for _, n := range s.Fields.Nums() {
		if st, ok := s.Clocks[n]; ok {
			w.Clocks[n] = idx(st)
		}
	}
	opt := func(st hlc.Stamp) uint64 {
		if st.TS == 0 {
			return 0
		}
		return idx(st) + 1
	}
	w.Deleted, w.Erased, w.Last = opt(s.Deleted), opt(s.Erased), opt(s.Last)
	if len(w.Fields) == 0 {
		w.Fields = nil
	}
	return change.Marshal(w)
}

// Beyond the random states of the merge test: real stamps (9-byte
// heads), field numbers past 23, long device ids, every optional key.
func TestMarshalMatchesLibrary(t *testing.T) {
	s := benchState(t)
	s.Fields[300] = raw(t, strings.Repeat("x", 300))
	s.Clocks[300] = hlc.Stamp{TS: 1<<40 + 9, Device: strings.Repeat("d", 36)}
	plain := *s
	states := []*State{NewState(), &plain}
	for _, st := range []*hlc.Stamp{&s.Last, &s.Deleted, &s.Erased} {
		*st = hlc.Stamp{TS: 1<<62 + 1, Device: "z"}
		c := *s
		states = append(states, &c)
	}
	for i, s := range states {
		got, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.marshalReflect()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("state %d: Marshal\n%x\nwant\n%x", i, got, want)
		}
	}
}
