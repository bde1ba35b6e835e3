package merge

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
)

// Stored states are read far more often than written: every record a
// batch touches on the hub, every change the facts follower covers,
// every pull and census on an agent. The library took 10 µs and 45
// allocations for a 17-field record (BenchmarkUnmarshalState), most of it
// reflection and one allocation per field value; readState reads the
// form Marshal writes in one pass instead.
//
// The rule that keeps it exact: readState answers only for input it is
// sure the library decodes, and to what; anything else — another key
// order, a duplicate key, a tag, a null where a number goes, an index
// out of range, limits approached, trailing bytes — makes it give up,
// and Unmarshal asks the library, whose state or error is the answer as
// before. So hostile bytes get the library's errors, and the library
// stays the reference the tests compare with (decode_test.go).

// Limits at or under the library's defaults (cborx.Trusted: 32 levels,
// 131,072 elements or pairs): readState gives up before the library would
// refuse, so an item at a limit is the library's to judge.
const (
	maxDepth = 32      // levels of nesting, the state's map counted
	maxCount = 1 << 16 // elements of an array, pairs of a map
)

// stateView is a stored state as readState read it. Stamps and device
// ids live in arrays of the view, with room for the usual record, so that
// a view on the stack holds no pointer into itself (which would move it
// to the heap).
type stateView struct {
	fields   []byte // the field map item, a sub-slice of the input; nil: none
	plain    bool   // no cleared value and no id field among the fields
	devices  uint64 // number of devices
	del, era uint64 // stamp index + 1; 0: none
	last     uint64 // stamp index + 1; 0: none

	nstamps    int
	stamps     [4][2]uint64 // {hlc, device index}: the first stamps
	moreStamps [][2]uint64  // the others
	devs       [4]string    // device ids when building a state: the first
	moreDevs   []string     // the others
}

// addStamp appends a stamp.
func (v *stateView) addStamp(s [2]uint64) {
	if v.nstamps < len(v.stamps) {
		v.stamps[v.nstamps] = s
	} else {
		v.moreStamps = append(v.moreStamps, s)
	}
	v.nstamps++
}

// stampAt returns stamp x (in range).
func (v *stateView) stampAt(x uint64) [2]uint64 {
	if x < uint64(len(v.stamps)) {
		return v.stamps[x]
	}
	return v.moreStamps[x-uint64(len(v.stamps))]
}

// addDevice appends device id d (when building a state).
func (v *stateView) addDevice(n uint64, d string) {
	if n < uint64(len(v.devs)) {
		v.devs[n] = d
	} else {
		v.moreDevs = append(v.moreDevs, d)
	}
}

// device returns device x (in range; "" when not building a state).
func (v *stateView) device(x uint64) string {
	if x < uint64(len(v.devs)) {
		return v.devs[x]
	}
	return v.moreDevs[x-uint64(len(v.devs))]
}

// readState reads b, a stored state in the form Marshal writes (a map of
// keys 1 to 7 in increasing order, each with the type stateWire gives
// it). When st is not nil it fills st as the library's decoding would,
// from b (field values are sub-slices of b: the caller passes its own
// copy). ok is false when b is in any other form, or the library would
// refuse it: st is then partly filled, to be thrown away.
func readState(b []byte, st *State, v *stateView) (ok bool) {
	v.plain = true
	n, i, ok := headOf(b, 0, majorMap)
	if !ok || n > 7 {
		return false
	}
	var prev uint64
	for range n {
		var key uint64
		if key, i, ok = headOf(b, i, majorUint); !ok || key <= prev || key > 7 {
			return false
		}
		prev = key
		switch key {
		case 1:
			i, ok = readFields(b, i, st, v)
		case 2:
			i, ok = readDevices(b, i, st != nil, v)
		case 3:
			i, ok = readStamps(b, i, v)
		case 4:
			i, ok = readClocks(b, i, st, v)
		default:
			var x uint64
			if x, i, ok = headOf(b, i, majorUint); !ok {
				return false
			}
			ok = setStamp(st, v, key, x)
		}
		if !ok {
			return false
		}
	}
	return i == len(b)
}

// readFields reads the field map at b[i] (key 1): unsigned keys in
// increasing order, any well-formed value.
func readFields(b []byte, i int, st *State, v *stateView) (int, bool) {
	start := i
	n, i, ok := headOf(b, i, majorMap)
	if !ok || n > maxCount || n > uint64(len(b)-i)/2 {
		return 0, false
	}
	if st != nil {
		st.Fields = make(change.Fields, n)
	}
	var prev uint64
	for e := range n {
		var key uint64
		if key, i, ok = headOf(b, i, majorUint); !ok || (e > 0 && key <= prev) {
			return 0, false
		}
		prev = key
		j, ok := skipValue(b, i, 2)
		if !ok {
			return 0, false
		}
		if key == domain.IDField || (j == i+1 && b[i] == change.Null[0]) {
			v.plain = false
		}
		if st != nil {
			st.Fields[key] = b[i:j:j]
		}
		i = j
	}
	v.fields = b[start:i:i]
	return i, true
}

// readDevices reads the device ids at b[i] (key 2): text strings of
// valid UTF-8, made strings when building a state.
func readDevices(b []byte, i int, build bool, v *stateView) (int, bool) {
	n, i, ok := headOf(b, i, majorArray)
	if !ok || n > maxCount || n > uint64(len(b)-i) {
		return 0, false
	}
	for x := range n {
		var l uint64
		if l, i, ok = headOf(b, i, majorText); !ok || l > uint64(len(b)-i) {
			return 0, false
		}
		d := b[i : i+int(l)]
		if !validUTF8(d) {
			return 0, false
		}
		if build {
			v.addDevice(x, string(d))
		}
		i += int(l)
	}
	v.devices = n
	return i, true
}

// readStamps reads the stamps at b[i] (key 3): arrays of exactly two
// unsigned integers, {hlc, device index}. (The library reads a longer
// or shorter array into [2]uint64 without a word: left to it.)
func readStamps(b []byte, i int, v *stateView) (int, bool) {
	n, i, ok := headOf(b, i, majorArray)
	if !ok || n > maxCount || n > uint64(len(b)-i) {
		return 0, false
	}
	for range n {
		var two, ts, dev uint64
		if two, i, ok = headOf(b, i, majorArray); !ok || two != 2 {
			return 0, false
		}
		if ts, i, ok = headOf(b, i, majorUint); !ok {
			return 0, false
		}
		if dev, i, ok = headOf(b, i, majorUint); !ok {
			return 0, false
		}
		v.addStamp([2]uint64{ts, dev})
	}
	return i, true
}

// readClocks reads the clocks at b[i] (key 4): field → stamp index, keys
// in increasing order, every index in range. The stamps and devices are
// read already: their keys come first.
func readClocks(b []byte, i int, st *State, v *stateView) (int, bool) {
	n, i, ok := headOf(b, i, majorMap)
	if !ok || n > maxCount || n > uint64(len(b)-i)/2 {
		return 0, false
	}
	if st != nil {
		st.Clocks = make(map[uint64]hlc.Stamp, n)
	}
	var prev uint64
	for e := range n {
		var key, x uint64
		if key, i, ok = headOf(b, i, majorUint); !ok || (e > 0 && key <= prev) {
			return 0, false
		}
		prev = key
		if x, i, ok = headOf(b, i, majorUint); !ok || !v.inRange(x) {
			return 0, false
		}
		if st != nil {
			st.Clocks[key] = v.stamp(x)
		}
	}
	return i, true
}

// setStamp records x, the value of key 5, 6 or 7 (stamp index + 1 of
// deleted, erased, last; 0: none).
func setStamp(st *State, v *stateView, key, x uint64) bool {
	if x != 0 && !v.inRange(x-1) {
		return false
	}
	var stamp hlc.Stamp
	if st != nil && x != 0 {
		stamp = v.stamp(x - 1)
	}
	switch key {
	case 5:
		v.del = x
		if st != nil {
			st.Deleted = stamp
		}
	case 6:
		v.era = x
		if st != nil {
			st.Erased = stamp
		}
	case 7:
		v.last = x
		if st != nil {
			st.Last = stamp
		}
	}
	return true
}

// inRange reports whether stamp index x names a stamp whose device
// index names a device: what Unmarshal's library path checks.
func (v *stateView) inRange(x uint64) bool {
	return x < uint64(v.nstamps) && v.stampAt(x)[1] < v.devices
}

// stamp returns stamp x (in range) with its device id, when building.
func (v *stateView) stamp(x uint64) hlc.Stamp {
	s := v.stampAt(x)
	return hlc.Stamp{TS: hlc.Timestamp(s[0]), Device: v.device(s[1])}
}

// ts returns the timestamp of stamp index + 1 x (0: none).
func (v *stateView) ts(x uint64) hlc.Timestamp {
	if x == 0 {
		return 0
	}
	return hlc.Timestamp(v.stampAt(x - 1)[0])
}

// Major types.
const (
	majorUint  = 0
	majorText  = 3
	majorArray = 4
	majorMap   = 5
	majorTag   = 6
	majorOther = 7
)

// headOf reads the head of a definite-length item of major type major at
// b[i]: its argument and where its content starts; ok false for another
// type, an indefinite length or too few bytes. Heads longer than needed
// are read as the library reads them: for their value.
func headOf(b []byte, i int, major byte) (uint64, int, bool) {
	if i >= len(b) || b[i]>>5 != major {
		return 0, 0, false
	}
	switch ai := b[i] & 0x1f; {
	case ai < 24:
		return uint64(ai), i + 1, true
	case ai == 24 && len(b)-i >= 2:
		return uint64(b[i+1]), i + 2, true
	case ai == 25 && len(b)-i >= 3:
		return uint64(binary.BigEndian.Uint16(b[i+1:])), i + 3, true
	case ai == 26 && len(b)-i >= 5:
		return uint64(binary.BigEndian.Uint32(b[i+1:])), i + 5, true
	case ai == 27 && len(b)-i >= 9:
		return binary.BigEndian.Uint64(b[i+1:]), i + 9, true
	}
	return 0, 0, false
}

// skipValue returns where the item at b[i], inside a container at level
// depth, ends, when the library's check of well-formedness passes it:
// integers, strings, arrays and maps of definite length, simple values
// and floats. Tags (the store writes none) and simple values the library
// might refuse are left to it. Strings are not checked for UTF-8: the
// library does not look inside a field value either (cbor.RawMessage).
func skipValue(b []byte, i int, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	major := b[i] >> 5
	if major == majorOther {
		return skipSimple(b, i)
	}
	if major == majorTag {
		return 0, false
	}
	arg, j, ok := headOf(b, i, major)
	if !ok {
		return 0, false
	}
	switch major {
	case 0, 1: // integers
		return j, true
	case 2, 3: // strings
		if arg > uint64(len(b)-j) {
			return 0, false
		}
		return j + int(arg), true
	}
	// An array or a map: one level more.
	if depth+1 > maxDepth || arg > maxCount {
		return 0, false
	}
	items := arg
	if major == majorMap {
		items *= 2
	}
	if items > uint64(len(b)-j) {
		return 0, false
	}
	for range items {
		if j, ok = skipValue(b, j, depth+1); !ok {
			return 0, false
		}
	}
	return j, true
}

// skipSimple returns where the simple value or float at b[i] ends:
// false, true, null, undefined and the other one-byte simple values, and
// floats of 2, 4 or 8 bytes (NaN and infinities: the library's defaults
// accept them). A two-byte simple value is left to the library.
func skipSimple(b []byte, i int) (int, bool) {
	switch ai := b[i] & 0x1f; {
	case ai < 24:
		return i + 1, true
	case ai == 25 && len(b)-i >= 3:
		return i + 3, true
	case ai == 26 && len(b)-i >= 5:
		return i + 5, true
	case ai == 27 && len(b)-i >= 9:
		return i + 9, true
	}
	return 0, false
}

// validUTF8 is utf8.Valid with a quick pass for ASCII, which device ids
// are.
func validUTF8(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return utf8.Valid(s)
		}
	}
	return true
}

// unmarshalFast is Unmarshal for the form Marshal writes; ok false: ask
// the library. Field values are sub-slices of one copy of b, so that
// they never alias the caller's buffer, as the library's copies do not.
func unmarshalFast(b []byte) (*State, bool) {
	var v stateView
	st := &State{}
	if !readState(bytes.Clone(b), st, &v) {
		return nil, false
	}
	// As NewState: maps even when the state has no such key.
	if st.Fields == nil {
		st.Fields = change.Fields{}
	}
	if st.Clocks == nil {
		st.Clocks = map[uint64]hlc.Stamp{}
	}
	return st, true
}

// View is what Peek reads of a stored state: what a scan of every record
// needs (the agent's retention census), without the state's maps.
type View struct {
	// Fields is the field map as stored, keys in increasing order: a
	// sub-slice of Peek's input, nil when the state has no field.
	Fields []byte
	// Plain says that no field is cleared (change.Null) and the id field
	// is not among them: Fields then decode into a record as they are,
	// as change.Decode decodes the state's Live fields.
	Plain bool
	// The timestamps of the state's Deleted, Erased and Last stamps; 0:
	// none.
	Deleted, Erased, Last hlc.Timestamp
}

// Peek reads b as Unmarshal's hand-written path reads it, without
// building the state: ok is true only for the form Marshal writes, when
// Unmarshal would decode b without error, and then v is what its state
// says (v.Deleted is its Deleted.TS, and so on). ok false says nothing
// of b: decode it with Unmarshal, which answers for every input.
func Peek(b []byte) (v View, ok bool) {
	var sv stateView
	if !readState(b, nil, &sv) {
		return View{}, false
	}
	return View{Fields: sv.fields, Plain: sv.plain, Deleted: sv.ts(sv.del), Erased: sv.ts(sv.era), Last: sv.ts(sv.last)}, true
}
