package merge

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"numeribus/internal/cborx"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
)

// stateWire is the stored form of a State. Stamps are listed once and
// referred to by index, because most fields of a record share the stamp of
// the write that created it: 1 stamp + small integers instead of a device
// id per field.
type stateWire struct {
	Fields  change.Fields     `cbor:"1,keyasint,omitempty"`
	Devices []string          `cbor:"2,keyasint,omitempty"`
	Stamps  [][2]uint64       `cbor:"3,keyasint,omitempty"` // {hlc, device index}
	Clocks  map[uint64]uint64 `cbor:"4,keyasint,omitempty"` // field → stamp index
	Deleted uint64            `cbor:"5,keyasint,omitempty"` // stamp index + 1
	Erased  uint64            `cbor:"6,keyasint,omitempty"`
	Last    uint64            `cbor:"7,keyasint,omitempty"`
}

// Marshal encodes the state for storage, by hand: it runs for every record
// written, and the library took 4 to 5 times as long
// (BenchmarkMarshalState). The bytes are those Core Deterministic
// Encoding gives for stateWire: the tests compare them.
func (s *State) Marshal() ([]byte, error) {
	// Stamps are deduplicated in field order; records have one or two, so
	// a linear search beats maps.
	var stampBuf [4]hlc.Stamp
	var devBuf [2]string
	stamps, devs := stampBuf[:0], devBuf[:0]
	idx := func(st hlc.Stamp) uint64 {
		for i, x := range stamps {
			if x == st {
				return uint64(i)
			}
		}
		if !slices.Contains(devs, st.Device) {
			devs = append(devs, st.Device)
		}
		stamps = append(stamps, st)
		return uint64(len(stamps) - 1)
	}
	nums := s.Fields.Nums()
	var clockBuf [32]uint64
	clocks := clockBuf[:0] // pairs: field, stamp index
	for _, n := range nums {
		if st, ok := s.Clocks[n]; ok {
			clocks = append(clocks, n, idx(st))
		}
	}
	opt := func(st hlc.Stamp) uint64 {
		if st.TS == 0 {
			return 0
		}
		return idx(st) + 1
	}
	del, era, last := opt(s.Deleted), opt(s.Erased), opt(s.Last)

	entries := 0
	for _, present := range []bool{len(s.Fields) > 0, len(devs) > 0, len(stamps) > 0, len(clocks) > 0, del != 0, era != 0, last != 0} {
		if present {
			entries++
		}
	}
	size := 16
	for _, v := range s.Fields {
		size += 9 + len(v)
	}
	b := make([]byte, 0, size+64+len(clocks)*4)
	b = cborx.AppendHead(b, cborx.Map, uint64(entries))
	if len(s.Fields) > 0 {
		// Not Fields.AppendEncode: it would sort the keys again, +30%.
		b = cborx.AppendHead(b, cborx.Uint, 1)
		b = cborx.AppendHead(b, cborx.Map, uint64(len(nums)))
		for _, n := range nums {
			b = cborx.AppendHead(b, cborx.Uint, n)
			b = append(b, s.Fields[n]...)
		}
	}
	if len(devs) > 0 {
		b = cborx.AppendHead(b, cborx.Uint, 2)
		b = cborx.AppendHead(b, cborx.Array, uint64(len(devs)))
		for _, d := range devs {
			b = cborx.AppendHead(b, cborx.Text, uint64(len(d)))
			b = append(b, d...)
		}
	}
	if len(stamps) > 0 {
		b = cborx.AppendHead(b, cborx.Uint, 3)
		b = cborx.AppendHead(b, cborx.Array, uint64(len(stamps)))
		for _, st := range stamps {
			b = cborx.AppendHead(b, cborx.Array, 2)
			b = cborx.AppendHead(b, cborx.Uint, uint64(st.TS))
			b = cborx.AppendHead(b, cborx.Uint, uint64(slices.Index(devs, st.Device)))
		}
	}
	if len(clocks) > 0 {
		b = cborx.AppendHead(b, cborx.Uint, 4)
		b = cborx.AppendHead(b, cborx.Map, uint64(len(clocks)/2))
		for i := 0; i < len(clocks); i += 2 {
			b = cborx.AppendHead(b, cborx.Uint, clocks[i])
			b = cborx.AppendHead(b, cborx.Uint, clocks[i+1])
		}
	}
	for _, e := range []struct{ key, v uint64 }{{5, del}, {6, era}, {7, last}} {
		if e.v != 0 {
			b = cborx.AppendHead(b, cborx.Uint, e.key)
			b = cborx.AppendHead(b, cborx.Uint, e.v)
		}
	}
	return b, nil
}

// Unmarshal decodes a stored state. The form Marshal writes is read by
// hand (decode.go); any other input goes to the library, as it always
// did, so that it gets the same state or the same error.
func Unmarshal(b []byte) (*State, error) {
	if s, ok := unmarshalFast(b); ok {
		return s, nil
	}
	return unmarshalLibrary(b)
}

// unmarshalLibrary is Unmarshal through the library and stateWire: the
// reference of the hand-written path, and its fallback.
func unmarshalLibrary(b []byte) (*State, error) {
	var w stateWire
	if err := change.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("decoding record state: %w", err)
	}
	stamp := func(i uint64) (hlc.Stamp, error) {
		if i >= uint64(len(w.Stamps)) || w.Stamps[i][1] >= uint64(len(w.Devices)) {
			return hlc.Stamp{}, fmt.Errorf("record state: stamp %d out of range", i)
		}
		return hlc.Stamp{TS: hlc.Timestamp(w.Stamps[i][0]), Device: w.Devices[w.Stamps[i][1]]}, nil
	}
	s := NewState()
	if w.Fields != nil {
		s.Fields = w.Fields
	}
	for n, i := range w.Clocks {
		st, err := stamp(i)
		if err != nil {
			return nil, err
		}
		s.Clocks[n] = st
	}
	for _, p := range []struct {
		dst *hlc.Stamp
		i   uint64
	}{{&s.Deleted, w.Deleted}, {&s.Erased, w.Erased}, {&s.Last, w.Last}} {
		if p.i == 0 {
			continue
		}
		st, err := stamp(p.i - 1)
		if err != nil {
			return nil, err
		}
		*p.dst = st
	}
	return s, nil
}

// PeekFields reads, from a stored state, the live value of each field of
// nums into out (nil where absent or cleared; sub-slices of b) and whether
// the record is deleted, without decoding the rest: what an index needs of
// every record, for a fraction of Unmarshal's cost. It checks less than
// Unmarshal does (not the stamps).
func PeekFields(b []byte, nums []uint64, out [][]byte) (deleted bool, err error) {
	var top [2][]byte // fields, deleted
	if err := change.MapValues(b, []uint64{1, 5}, top[:]); err != nil {
		return false, fmt.Errorf("decoding record state: %w", err)
	}
	clear(out)
	if top[0] != nil {
		if err := change.MapValues(top[0], nums, out); err != nil {
			return false, fmt.Errorf("decoding record state: %w", err)
		}
		for i, v := range out {
			if bytes.Equal(v, change.Null) {
				out[i] = nil
			}
		}
	}
	if top[1] == nil {
		return false, nil
	}
	d, ok := change.Uint(top[1])
	if !ok {
		return false, errors.New("decoding record state: deleted is not a stamp index")
	}
	return d != 0, nil
}

// MarshalCreated returns what Marshal returns for the state of a record
// created by one upsert alone — NewState, then Apply of a change stamped
// st setting the fields fields encodes — without building the state:
// most records of a backlog come in one change, and the state's maps
// were most of what the hub spent preparing them. fields must be the
// change's field map as change.Fields.Encode gives it (keys in
// increasing order), without the id field (Apply ignores it). The tests
// compare the bytes with Marshal's over every fixture record.
func MarshalCreated(fields []byte, st hlc.Stamp) ([]byte, error) {
	var keyBuf [32]uint64
	keys, err := change.AppendMapKeys(keyBuf[:0], fields)
	if err != nil {
		return nil, fmt.Errorf("encoding record state: %w", err)
	}
	for i, k := range keys {
		if k == domain.IDField || (i > 0 && k <= keys[i-1]) {
			return nil, errors.New("encoding record state: fields not as change.Fields.Encode gives them")
		}
	}
	// The one stamp is index 0: of every field, and of Last when set.
	stamped := len(keys) > 0 || st.TS != 0
	entries := 0
	if len(keys) > 0 {
		entries += 2 // fields, clocks
	}
	if stamped {
		entries += 2 // devices, stamps
	}
	if st.TS != 0 {
		entries++ // last
	}
	b := make([]byte, 0, len(fields)+len(st.Device)+2*len(keys)+40)
	b = cborx.AppendHead(b, cborx.Map, uint64(entries))
	if len(keys) > 0 {
		b = cborx.AppendHead(b, cborx.Uint, 1)
		b = append(b, fields...)
	}
	if stamped {
		b = cborx.AppendHead(b, cborx.Uint, 2)
		b = cborx.AppendHead(b, cborx.Array, 1)
		b = cborx.AppendHead(b, cborx.Text, uint64(len(st.Device)))
		b = append(b, st.Device...)
		b = cborx.AppendHead(b, cborx.Uint, 3)
		b = cborx.AppendHead(b, cborx.Array, 1)
		b = cborx.AppendHead(b, cborx.Array, 2)
		b = cborx.AppendHead(b, cborx.Uint, uint64(st.TS))
		b = cborx.AppendHead(b, cborx.Uint, 0)
	}
	if len(keys) > 0 {
		b = cborx.AppendHead(b, cborx.Uint, 4)
		b = cborx.AppendHead(b, cborx.Map, uint64(len(keys)))
		for _, k := range keys {
			b = cborx.AppendHead(b, cborx.Uint, k)
			b = cborx.AppendHead(b, cborx.Uint, 0)
		}
	}
	if st.TS != 0 {
		b = cborx.AppendHead(b, cborx.Uint, 7)
		b = cborx.AppendHead(b, cborx.Uint, 1)
	}
	return b, nil
}
