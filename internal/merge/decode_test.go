package merge

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"numeribus/internal/cborx"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// fixtureStates returns the stored states of fixture records of every
// kind pushed through the merge, in every shape a record's state takes:
// created by one device, edited by another (two stamps, two devices),
// fields cleared, deleted, erased, deleted and erased, a losing write,
// a tie broken by device id; every intermediate state too, and the empty
// one.
func fixtureStates(t testing.TB, n int) [][]byte {
	t.Helper()
	var out [][]byte
	add := func(s *State) {
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	add(NewState())
	devA, devB, devC := ident.New().String(), ident.New().String(), strings.Repeat("é", 20)
	for i, r := range fixture.Generate(fixture.Options{N: n, Seed: 11}).Records() {
		r.Normalize()
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		k, id := r.Kind(), r.RecordID()
		ts := hlc.Timestamp(1<<40 + uint64(i)*100)
		s := NewState()
		apply := func(op change.Op, f change.Fields, ts hlc.Timestamp, dev string) {
			Apply(s, k, &change.Change{Kind: k, ID: id, Op: op, Fields: f, HLC: ts, Device: dev})
			add(s)
		}
		apply(change.OpUpsert, f, ts, devA)
		nums := s.Fields.Nums()
		if i%3 == 1 && len(nums) > 1 {
			// A teammate edits one field and clears another.
			apply(change.OpUpsert, change.Fields{nums[0]: f[nums[len(nums)-1]], nums[len(nums)-1]: change.Null}, ts+5, devB)
		}
		if i%5 == 2 && len(nums) > 0 {
			// A write that loses, then a tie broken by the device id.
			apply(change.OpUpsert, change.Fields{nums[0]: change.Null}, ts-1, devB)
			apply(change.OpUpsert, change.Fields{nums[0]: change.Null}, ts, devC)
		}
		if i%7 == 3 {
			apply(change.OpErase, nil, ts+10, devC)
		}
		if i%4 == 0 {
			apply(change.OpDelete, nil, ts+20, devB)
		}
		if i%9 == 4 {
			// An erase stamped before the delete it follows.
			apply(change.OpDelete, nil, ts+30, devA)
			apply(change.OpErase, nil, ts+1, devB)
		}
	}
	return out
}

// errClass is an error's text with the stamp index of "stamp N out of
// range" left out: the library path reports the first bad index of a
// map it ranges over, which differs from call to call when there are
// several.
func errClass(err error) string {
	if err == nil {
		return "<nil>"
	}
	return outOfRange.ReplaceAllString(err.Error(), "stamp N out of range")
}

var outOfRange = regexp.MustCompile(`stamp \d+ out of range`)

// checkSame fails t unless Unmarshal gives for b what the library path
// gives (same state, or same error), and Peek, when it answers, what the
// state says. It reports whether the hand-written path answered.
func checkSame(t testing.TB, b []byte) (fast bool) {
	t.Helper()
	in := bytes.Clone(b)
	got, gerr := Unmarshal(in)
	want, werr := unmarshalLibrary(b)
	if errClass(gerr) != errClass(werr) {
		t.Fatalf("%x: Unmarshal error %v, the library's %v", b, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%x: Unmarshal\n %+v\nthe library\n %+v", b, got, want)
	}
	// The state owns its bytes: the caller's buffer may be reused.
	for i := range in {
		in[i] ^= 0xff
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%x: the state changed with the input buffer", b)
	}
	_, fast = unmarshalFast(b)
	v, ok := Peek(b)
	if ok != fast {
		t.Fatalf("%x: Peek ok %v, hand-written Unmarshal %v", b, ok, fast)
	}
	if ok {
		checkView(t, b, v, want)
	}
	return fast
}

// checkView fails t unless v says what state st says.
func checkView(t testing.TB, b []byte, v View, st *State) {
	t.Helper()
	fields := change.Fields{}
	if v.Fields != nil {
		var keys []uint64
		keys, err := change.AppendMapKeys(keys, v.Fields)
		if err != nil {
			t.Fatalf("%x: Peek's fields: %v", b, err)
		}
		vals := make([][]byte, len(keys))
		if err := change.MapValues(v.Fields, keys, vals); err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			fields[k] = vals[i]
		}
	}
	if !reflect.DeepEqual(fields, st.Fields) {
		t.Fatalf("%x: Peek's fields %v, the state's %v", b, fields, st.Fields)
	}
	_, hasID := st.Fields[domain.IDField]
	plain := !hasID && len(st.Live()) == len(st.Fields)
	if v.Plain != plain || v.Deleted != st.Deleted.TS || v.Erased != st.Erased.TS || v.Last != st.Last.TS {
		t.Fatalf("%x: Peek %+v, the state %+v", b, v, st)
	}
}

// Every stored state of a fixture backlog, in every shape, decodes by
// hand to exactly what the library gives.
func TestUnmarshalIsTheLibraryOnFixtures(t *testing.T) {
	states := fixtureStates(t, 1500)
	var deleted, erased, cleared, twoStamps, plain int
	for _, b := range states {
		if !checkSame(t, b) {
			t.Fatalf("%x: a state as Marshal writes it left to the library", b)
		}
		st, _ := Unmarshal(b)
		v, _ := Peek(b)
		count := func(n *int, yes bool) {
			if yes {
				*n++
			}
		}
		count(&deleted, st.IsDeleted())
		count(&erased, st.IsErased())
		count(&cleared, len(st.Live()) < len(st.Fields))
		count(&twoStamps, len(stampsOf(st)) > 1)
		count(&plain, v.Plain && len(stampsOf(st)) == 1)
	}
	// Not a vacuous agreement: every shape is there.
	for _, n := range []int{deleted, erased, cleared, twoStamps, plain} {
		if n == 0 {
			t.Fatalf("%d states: %d deleted, %d erased, %d with cleared fields, %d of two stamps or more, %d plain of one stamp",
				len(states), deleted, erased, cleared, twoStamps, plain)
		}
	}
}

// stampsOf returns the distinct stamps of st.
func stampsOf(st *State) map[hlc.Stamp]bool {
	m := map[hlc.Stamp]bool{}
	for _, s := range st.Clocks {
		m[s] = true
	}
	for _, s := range []hlc.Stamp{st.Deleted, st.Erased, st.Last} {
		if s.TS != 0 {
			m[s] = true
		}
	}
	return m
}

// mutations returns b with each byte in turn replaced by values that
// change its type, length or meaning, cut at each length, and with a byte
// inserted or removed at each position.
func mutations(b []byte) [][]byte {
	var out [][]byte
	for i := range b {
		for _, x := range []byte{b[i] ^ 1, b[i] + 1, b[i] - 1, b[i] ^ 0x20, b[i] ^ 0x80, 0x00, 0x17, 0x18, 0x1b, 0x1f, 0x20, 0x40, 0x5f, 0x60, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xd9, 0xf4, 0xf6, 0xf7, 0xf8, 0xf9, 0xfb, 0xff} {
			m := bytes.Clone(b)
			m[i] = x
			out = append(out, m)
		}
		out = append(out, bytes.Clone(b[:i]))
		out = append(out, append(append(bytes.Clone(b[:i]), 0x00), b[i:]...))
		out = append(out, append(bytes.Clone(b[:i]), b[i+1:]...))
	}
	return out
}

// Every mutation of stored states — truncated, types changed, lengths
// changed, bytes added or removed — gets from Unmarshal the library's
// state or error, and Peek answers only where the state is exact.
func TestUnmarshalIsTheLibraryOnMutations(t *testing.T) {
	states := fixtureStates(t, 60)
	var total, fast, failed int
	for i, b := range states {
		if i%40 != 0 {
			continue
		}
		for _, m := range mutations(b) {
			total++
			if checkSame(t, m) {
				fast++
			}
			if _, err := Unmarshal(m); err != nil {
				failed++
			}
		}
	}
	// Both paths are exercised: mutations the hand-written path reads
	// (a value's byte changed), others it leaves to the library, and
	// errors.
	if fast == 0 || fast == total || failed == 0 {
		t.Fatalf("%d mutations: %d by hand, %d errors", total, fast, failed)
	}
	t.Logf("%d mutations: %d read by hand, %d errors", total, fast, failed)
}

// enc builds CBOR from items: a byte slice as it is, a head as
// cborx.AppendHead writes it.
type head struct {
	major byte
	n     uint64
}

func enc(items ...any) []byte {
	var b []byte
	for _, it := range items {
		switch x := it.(type) {
		case []byte:
			b = append(b, x...)
		case string:
			b = cborx.AppendHead(b, cborx.Text, uint64(len(x)))
			b = append(b, x...)
		case head:
			b = cborx.AppendHead(b, x.major, x.n)
		case int:
			b = cborx.AppendHead(b, cborx.Uint, uint64(x))
		default:
			panic(fmt.Sprintf("enc: %T", it))
		}
	}
	return b
}

func mapOf(n uint64) head   { return head{cborx.Map, n} }
func arrayOf(n uint64) head { return head{cborx.Array, n} }

// nested returns a field value of arrays nested levels deep.
func nested(levels int) []byte {
	return append(bytes.Repeat([]byte{0x81}, levels), 0x00)
}

// A valid state of one field, one device, one stamp, then pieces of it.
var (
	oneField  = enc(1, mapOf(1), 2, "x")
	oneDevice = enc(2, arrayOf(1), "dev")
	oneStamp  = enc(3, arrayOf(1), arrayOf(2), 1000, 0)
	oneClock  = enc(4, mapOf(1), 2, 0)
	lastOne   = enc(7, 1)
)

func state(entries uint64, parts ...[]byte) []byte {
	b := enc(mapOf(entries))
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Inputs of every kind the hand-written path must read as the library
// does, or leave to it: variants the library accepts, malformed and
// hostile bytes (huge length claims, deep nesting, bad UTF-8).
func TestUnmarshalIsTheLibraryOnOddInputs(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		fast bool // read by hand
	}{
		{"plain", state(5, oneField, oneDevice, oneStamp, oneClock, lastOne), true},
		{"empty map", enc(mapOf(0)), true},
		{"empty field map", state(1, enc(1, mapOf(0))), true},
		{"stamps unreferenced", state(2, oneDevice, oneStamp), true},
		{"deleted erased last", state(5, oneDevice, oneStamp, enc(5, 1), enc(6, 1), enc(7, 1)), true},
		{"zero indexes written", state(3, enc(5, 0), enc(6, 0), enc(7, 0)), true},
		{"stamp with timestamp 0", state(4, oneDevice, enc(3, arrayOf(1), arrayOf(2), 0, 0), enc(5, 1), enc(7, 1)), true},
		{"long heads", append(enc(head{cborx.Map, 2}), 0x18, 0x01, 0xb9, 0x00, 0x01, 0x1a, 0x00, 0x00, 0x00, 0x02, 0x61, 'x', 0x18, 0x07, 0x00), true},
		{"null field", state(1, enc(1, mapOf(1), 2, []byte{0xf6})), true},
		{"id field", state(1, enc(1, mapOf(1), 1, "x")), true},
		{"values of every type", state(1, enc(1, mapOf(9), 2, []byte{0x38, 0x63}, 3, []byte{0xf9, 0x7e, 0x00}, 4, []byte{0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0},
			5, []byte{0xf4}, 6, []byte{0xf7}, 7, []byte{0xe0}, 8, []byte{0x43, 1, 2, 3}, 9, []byte{0xa1, 0x61, 'a', 0x80}, 10, []byte{0x62, 0xc3, 0x28})), true},
		{"value 29 levels deep", state(1, enc(1, mapOf(1), 2, nested(29))), true},
		{"value 30 levels deep", state(1, enc(1, mapOf(1), 2, nested(30))), true},
		{"value 31 levels deep", state(1, enc(1, mapOf(1), 2, nested(31))), false},
		{"value 40 levels deep", state(1, enc(1, mapOf(1), 2, nested(40))), false},
		{"duplicate key in a value's map", state(1, enc(1, mapOf(1), 2, []byte{0xa2, 0x01, 0x01, 0x01, 0x02})), true},
		{"device of many bytes", state(3, enc(2, arrayOf(1), strings.Repeat("é", 300)), oneStamp, lastOne), true},
		{"six stamps, six devices", state(4, enc(2, arrayOf(6), "a", "b", "c", "d", "e", "f"),
			enc(3, arrayOf(6), arrayOf(2), 1, 5, arrayOf(2), 2, 4, arrayOf(2), 3, 3, arrayOf(2), 4, 2, arrayOf(2), 5, 1, arrayOf(2), 6, 0),
			enc(4, mapOf(1), 2, 5), enc(7, 6)), true},

		{"empty", nil, false},
		{"null", []byte{0xf6}, false},
		{"not a map", []byte{0x80}, false},
		{"keys out of order", state(2, oneDevice, oneField), false},
		{"duplicate key", state(2, oneField, oneField), false},
		{"unknown key", state(2, oneField, enc(8, 1)), false},
		{"key 0", state(1, enc(0, 1)), false},
		{"text key", state(1, enc("1", mapOf(0))), false},
		{"eight entries", state(8, oneField, oneDevice, oneStamp, oneClock, enc(5, 0), enc(6, 0), lastOne, enc(8, 0)), false},
		{"indefinite map", []byte{0xbf, 0x01, 0xa0, 0xff}, false},
		{"indefinite field map", []byte{0xa1, 0x01, 0xbf, 0x02, 0x00, 0xff}, false},
		{"indefinite value", state(1, enc(1, mapOf(1), 2, []byte{0x7f, 0x61, 'x', 0xff})), false},
		{"tag on the state", append([]byte{0xd9, 0xd9, 0xf7}, state(1, oneField)...), false},
		{"tag on a value", state(1, enc(1, mapOf(1), 2, []byte{0xc1, 0x00})), false},
		{"bignum tag on a value", state(1, enc(1, mapOf(1), 2, []byte{0xc2, 0x00})), false},
		{"two-byte simple value", state(1, enc(1, mapOf(1), 2, []byte{0xf8, 0x20})), false},
		{"invalid simple value", state(1, enc(1, mapOf(1), 2, []byte{0xf8, 0x10})), false},
		{"break in a value", state(1, enc(1, mapOf(1), 2, []byte{0xff})), false},
		{"null fields", state(1, enc(1, []byte{0xf6})), false},
		{"fields not a map", state(1, enc(1, arrayOf(0))), false},
		{"duplicate field", state(1, enc(1, mapOf(2), 2, 0, 2, 1)), false},
		{"fields out of order", state(1, enc(1, mapOf(2), 3, 0, 2, 1)), false},
		{"negative field key", state(1, enc(1, mapOf(1), []byte{0x20}, 0)), false},
		{"device not text", state(1, enc(2, arrayOf(1), []byte{0x41, 'x'})), false},
		{"device null", state(3, enc(2, arrayOf(1), []byte{0xf6}), oneStamp, lastOne), false},
		{"device bad UTF-8", state(3, enc(2, arrayOf(1), []byte{0x62, 0xc3, 0x28}), oneStamp, lastOne), false},
		{"unreferenced device bad UTF-8", state(1, enc(2, arrayOf(1), []byte{0x62, 0xc3, 0x28})), false},
		{"stamp of three", state(3, oneDevice, enc(3, arrayOf(1), arrayOf(3), 1, 0, 9), lastOne), false},
		{"stamp of one", state(3, oneDevice, enc(3, arrayOf(1), arrayOf(1), 1), lastOne), false},
		{"stamp null", state(3, oneDevice, enc(3, arrayOf(1), arrayOf(2), []byte{0xf6}, 0), lastOne), false},
		{"stamp negative", state(3, oneDevice, enc(3, arrayOf(1), arrayOf(2), []byte{0x20}, 0), lastOne), false},
		{"clock out of range", state(4, oneField, oneDevice, oneStamp, enc(4, mapOf(1), 2, 1)), false},
		{"clocks out of range", state(4, oneField, oneDevice, oneStamp, enc(4, mapOf(3), 2, 1, 3, 2, 4, 3)), false},
		{"clock device out of range", state(4, oneField, oneDevice, enc(3, arrayOf(1), arrayOf(2), 1, 1), oneClock), false},
		{"clock without stamps", state(2, oneField, oneClock), false},
		{"duplicate clock", state(4, oneField, oneDevice, oneStamp, enc(4, mapOf(2), 2, 0, 2, 0)), false},
		{"clocks out of order", state(4, oneField, oneDevice, oneStamp, enc(4, mapOf(2), 3, 0, 2, 0)), false},
		{"clock null", state(4, oneField, oneDevice, oneStamp, enc(4, mapOf(1), 2, []byte{0xf6})), false},
		{"last out of range", state(3, oneDevice, oneStamp, enc(7, 2)), false},
		{"deleted out of range", state(3, oneDevice, oneStamp, enc(5, 9)), false},
		{"erased huge", state(3, oneDevice, oneStamp, enc(6, math.MaxInt64)), false},
		{"deleted null", state(1, enc(5, []byte{0xf6})), false},
		{"deleted negative", state(1, enc(5, []byte{0x20})), false},
		{"trailing byte", append(state(1, oneField), 0x00), false},
		{"truncated", state(1, oneField)[:4], false},
		{"field map claims 2^32 pairs", state(1, enc(1, mapOf(1<<32))), false},
		{"field map claims 2^64-1 pairs", state(1, enc(1, mapOf(math.MaxUint64))), false},
		{"value claims 2^63 bytes", state(1, enc(1, mapOf(1), 2, head{cborx.Bytes, 1 << 63})), false},
		{"value claims 2^64-1 elements", state(1, enc(1, mapOf(1), 2, arrayOf(math.MaxUint64))), false},
		{"devices claim 2^40", state(1, enc(2, arrayOf(1<<40))), false},
		{"device claims 2^64-1 bytes", state(1, enc(2, arrayOf(1), head{cborx.Text, math.MaxUint64})), false},
		{"stamps claim 2^40", state(1, enc(3, arrayOf(1<<40))), false},
		{"clocks claim 2^40", state(1, enc(4, mapOf(1<<40))), false},
		{"state claims 2^64-1 entries", enc(mapOf(math.MaxUint64)), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if fast := checkSame(t, c.b); fast != c.fast {
				t.Fatalf("read by hand: %v, want %v", fast, c.fast)
			}
		})
	}
}

// Unmarshal allocates according to the bytes there, not to the lengths
// they claim.
func TestUnmarshalAllocatesByTheInput(t *testing.T) {
	for _, b := range [][]byte{
		state(1, enc(1, mapOf(1<<20))),
		state(1, enc(4, mapOf(1<<20))),
		state(1, enc(2, arrayOf(1<<20))),
	} {
		allocs := testing.AllocsPerRun(10, func() { _, _ = unmarshalFast(b) })
		if allocs > 3 {
			t.Errorf("%x: %v allocations", b, allocs)
		}
	}
}

// The fuzzer's seeds: the odd inputs above and fixture states.
func FuzzUnmarshal(f *testing.F) {
	for i, b := range fixtureStates(f, 30) {
		if i%5 == 0 {
			f.Add(b)
		}
	}
	for _, b := range [][]byte{
		state(5, oneField, oneDevice, oneStamp, oneClock, lastOne),
		state(4, oneField, oneDevice, oneStamp, enc(4, mapOf(3), 2, 1, 3, 2, 4, 3)),
		state(1, enc(1, mapOf(1), 2, nested(30))),
		state(2, oneField, enc(8, 1)),
		{0xbf, 0x01, 0xa0, 0xff},
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSame(t, b)
	})
}
