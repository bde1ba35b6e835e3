package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/change"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
)

// The hand decoder of Push frames (fastpush.go) against the library's:
// over real frames and hostile ones, Decode must give the same message or
// the same error with the fast path as without it.

// fixturePushes returns Push frames of fixture records of every kind, in
// every op, with sealed bodies among them: what agents send.
func fixturePushes(tb testing.TB) [][]byte {
	tb.Helper()
	set := fixture.Generate(fixture.Options{N: 40, Seed: 7})
	stamp := hlc.FromTime(time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC))
	var frames [][]byte
	p := &Push{Batch: 1, Keys: map[uint64][]byte{3: seq(0x80, KeySize), 9: seq(0x90, KeySize)}}
	for i, r := range set.Records() {
		r.Normalize()
		f, err := change.Encode(r)
		if err != nil {
			tb.Fatal(err)
		}
		c := change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f, HLC: stamp + hlc.Timestamp(i), Seq: uint64(i + 1)}
		switch i % 7 {
		case 3:
			c.Op, c.Fields = change.OpDelete, nil
		case 5:
			c.Op, c.Fields = change.OpErase, nil
		}
		w, err := FromChange(&c)
		if err != nil {
			tb.Fatal(err)
		}
		if i%11 == 4 { // sealed to one of the push's keys
			w.Fields, w.Sealed, w.KeyID = nil, seq(byte(i), 40+i%30), 3+6*uint64(i%2)
		}
		p.Changes = append(p.Changes, w)
		if len(p.Changes) == 1+len(frames)*13%60 {
			frames = append(frames, encodeOf(tb, p))
			p = &Push{Batch: p.Batch + 1, Keys: p.Keys}
		}
	}
	if len(p.Changes) > 0 {
		frames = append(frames, encodeOf(tb, p))
	}
	return frames
}

func encodeOf(tb testing.TB, m Message) []byte {
	tb.Helper()
	b, err := Encode(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sameDecode fails t unless Decode gives the same over frame with the
// fast path as without it, and reports whether the fast path took it.
func sameDecode(t testing.TB, frame []byte) bool {
	t.Helper()
	fast, ferr := decode(bytes.Clone(frame), true)
	slow, serr := decode(bytes.Clone(frame), false)
	switch {
	case (ferr == nil) != (serr == nil):
		t.Fatalf("frame %x:\nfast: %v, %v\nlibrary: %v, %v", clipped(frame), fast, ferr, slow, serr)
	case ferr != nil:
		if ferr.Error() != serr.Error() {
			t.Fatalf("frame %x: errors differ:\nfast:    %v\nlibrary: %v", clipped(frame), ferr, serr)
		}
		for _, e := range []error{ErrMalformed, ErrTooLarge, ErrUnknownType} {
			if errors.Is(ferr, e) != errors.Is(serr, e) {
				t.Fatalf("frame %x: %v: wraps %v differently", clipped(frame), ferr, e)
			}
		}
	case !reflect.DeepEqual(fast, slow):
		t.Fatalf("frame %x: messages differ:\nfast:    %#v\nlibrary: %#v", clipped(frame), fast, slow)
	}
	_, took := fastPush(frame)
	return took
}

// withRawFields returns a push of one change whose Fields are raw, which
// the library's encoder need not accept.
func withRawFields(t testing.TB, raw []byte) []byte { return withRaw(t, 6, raw) }

// withRaw returns a push of one change whose value at key is raw (and
// without Fields, for another key).
func withRaw(t testing.TB, key byte, raw []byte) []byte {
	t.Helper()
	mark := []byte{key, 0xa1, 0x02, 0x18, 0x63}
	c := changeMap(6, cbor.RawMessage(mark[1:]))
	if key != 6 {
		c = changeMap(6, nil, int(key), cbor.RawMessage(mark[1:]))
	}
	f := enc(t, pushOf(c))
	if bytes.Count(f, mark) != 1 {
		t.Fatalf("no single mark in %x", f)
	}
	return bytes.Replace(f, mark, append([]byte{key}, raw...), 1)
}

func clipped(b []byte) []byte { return b[:min(len(b), 96)] }

// TestFastPushMatchesLibrary: every fixture push is taken by the fast path
// and decodes to the message it was encoded from, as the library decodes
// it; frames of the other types are left to the library, unchanged.
func TestFastPushMatchesLibrary(t *testing.T) {
	frames := fixturePushes(t)
	if len(frames) < 5 {
		t.Fatalf("only %d fixture pushes", len(frames))
	}
	for i, f := range frames {
		if !sameDecode(t, f) {
			t.Fatalf("push %d (%d bytes) was left to the library", i, len(f))
		}
		m, _ := Decode(f)
		if again := encodeOf(t, m); !bytes.Equal(again, f) {
			t.Fatalf("push %d does not encode back to its frame", i)
		}
	}
	for _, g := range golden(t) {
		f := encodeOf(t, g.msg)
		if took := sameDecode(t, f); took != (g.msg.Type() == TypePush) {
			t.Errorf("%s: taken by the fast path: %v", g.name, took)
		}
	}
}

// The decoded push owns its bytes: the hub reads frames into pooled
// buffers.
func TestFastPushOwnsItsBytes(t *testing.T) {
	f := fixturePushes(t)[1]
	m, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := encodeOf(t, m)
	for i := range f {
		f[i] = 0xee
	}
	if got := encodeOf(t, m); !bytes.Equal(got, want) {
		t.Fatal("the decoded push changed with the frame's bytes")
	}
}

// TestFastPushEdges: limits, types, repeats, indefinite lengths, tags,
// trailing bytes and huge lengths, each somewhere in a push: the same
// message or error either way, and the shapes the fast path must leave
// to the library are left to it.
func TestFastPushEdges(t *testing.T) {
	fields := cbor.RawMessage{0xa1, 0x02, 0x6a, 'i', 'n', 'd', 'i', 'v', 'i', 'd', 'u', 'e', 'l'}
	many := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = changeMap(5, i+1)
		}
		return out
	}
	keys := func(n int) m {
		out := m{}
		for i := range n {
			out[uint64(i)] = seq(0, KeySize)
		}
		return out
	}
	big := m{}
	for i := range MaxMapPairs + 1 {
		big[uint64(i+2)] = 0
	}
	base := enc(t, pushOf(changeMap()))
	// A change map with key 5 twice (the library's encoder will not write it).
	rep := enc(t, pushOf(changeMap(5, nil)))
	at := bytes.Index(rep, []byte{0xa5, 0x01, 0x01})
	rep[at] = 0xa7
	rep = append(rep, 0x05, 0x01, 0x05, 0x02)
	cases := []struct {
		name  string
		frame []byte
		taken bool // by the fast path
	}{
		{"base", base, true},
		{"keys and sealed", enc(t, with(pushOf(changeMap(6, nil, 7, []byte{1}, 8, 2)), 2, m{2: seq(0, 32)})), true},
		{"empty changes and keys", enc(t, m{0: 5, 1: 3, 2: m{}, 3: []any{}}), true},
		{"zero values present", enc(t, pushOf(changeMap(8, 0, 7, []byte{}))), true},
		{"fields unsorted", withRawFields(t, []byte{0xa2, 0x03, 0x01, 0x02, 0x01}), false},
		{"fields at the nesting limit", enc(t, pushOf(changeMap(6, nested(FieldsDepth)))), true},
		{"fields beyond the nesting limit", enc(t, pushOf(changeMap(6, nested(FieldsDepth+1)))), false},
		{"fields with floats, NaN, simple values", withRawFields(t, []byte{0xa6, 0x02, 0xf9, 0x7e, 0x00, 0x03, 0xfa, 0x7f, 0x80, 0, 0,
			0x04, 0xfb, 1, 2, 3, 4, 5, 6, 7, 8, 0x05, 0xf7, 0x06, 0xf0, 0x07, 0xf8, 0x20}), false},
		{"fields with an invalid simple value", withRawFields(t, []byte{0xa1, 0x02, 0xf8, 0x10}), false},
		{"fields with invalid UTF-8", withRawFields(t, []byte{0xa1, 0x02, 0x62, 0xc3, 0x28}), true},
		{"fields with a tag", withRawFields(t, []byte{0xa1, 0x02, 0xc1, 0x00}), false},
		{"fields with id", withRawFields(t, []byte{0xa1, 0x01, 0x00}), false},
		{"fields repeated", withRawFields(t, []byte{0xa2, 0x02, 0x01, 0x02, 0x02}), false},
		{"fields with a negative key", withRawFields(t, []byte{0xa1, 0x20, 0x00}), false},
		{"fields of 1025 pairs", enc(t, pushOf(changeMap(6, cbor.RawMessage(enc(t, big))))), false},
		{"fields holding an array of 10001", enc(t, pushOf(changeMap(6, cbor.RawMessage(enc(t, m{2: make([]int, MaxChanges+1)}))))), false},
		{"fields holding an array of 10000", enc(t, pushOf(changeMap(6, cbor.RawMessage(enc(t, m{2: make([]int, MaxChanges)}))))), true},
		{"fields not a map", withRawFields(t, []byte{0x82, 0x01, 0x02}), false},
		{"fields null", withRawFields(t, []byte{0xf6}), false},
		{"fields indefinite", withRawFields(t, []byte{0xbf, 0x02, 0x00, 0xff}), false},
		{"fields with an indefinite string", withRawFields(t, []byte{0xa1, 0x02, 0x7f, 0x61, 'x', 0xff}), false},
		{"10000 changes", enc(t, m{0: 5, 3: many(MaxChanges)}), true},
		{"10001 changes", enc(t, m{0: 5, 3: many(MaxChanges + 1)}), false},
		{"1024 keys", enc(t, m{0: 5, 2: keys(MaxMapPairs)}), true},
		{"1025 keys", enc(t, m{0: 5, 2: keys(MaxMapPairs + 1)}), false},
		{"key of 31 bytes", enc(t, with(pushOf(changeMap()), 2, m{1: seq(0, 31)})), true},
		{"key as text", enc(t, with(pushOf(changeMap()), 2, m{1: "x"})), false},
		{"key id negative", enc(t, with(pushOf(changeMap()), 2, map[int]any{-1: seq(0, 32)})), false},
		{"key null", enc(t, with(pushOf(changeMap()), 2, m{1: nil})), false},
		{"keys repeated", []byte{0xa2, 0x00, 0x05, 0x02, 0xa2, 0x01, 0x41, 0x00, 0x01, 0x41, 0x00}, false},
		{"batch negative", enc(t, with(pushOf(changeMap()), 1, -1)), false},
		{"batch text", enc(t, with(pushOf(changeMap()), 1, "1")), false},
		{"batch float", enc(t, with(pushOf(changeMap()), 1, 1.0)), false},
		{"batch null", enc(t, with(pushOf(changeMap()), 1, cbor.RawMessage{0xf6})), false},
		{"batch max", enc(t, with(pushOf(changeMap()), 1, uint64(1<<64-1))), true},
		{"batch not shortest", []byte{0xa2, 0x00, 0x05, 0x01, 0x1b, 0, 0, 0, 0, 0, 0, 0, 1}, true},
		{"batch cut", []byte{0xa2, 0x00, 0x05, 0x01, 0x1b, 0, 0, 0}, false},
		{"key 0 not first", []byte{0xa2, 0x01, 0x01, 0x00, 0x05}, true},
		{"key 0 twice", []byte{0xa2, 0x00, 0x05, 0x00, 0x05}, false},
		{"key 0 not shortest", []byte{0xa1, 0x18, 0x00, 0x05}, true},
		{"key 1 twice", []byte{0xa3, 0x00, 0x05, 0x01, 0x01, 0x01, 0x02}, false},
		{"unknown key", enc(t, with(pushOf(changeMap()), 4, 1)), false},
		{"text key", enc(t, map[any]any{0: 5, "1": 1}), false},
		{"trailing byte", append(bytes.Clone(base), 0x00), false},
		{"trailing item", append(bytes.Clone(base), base...), false},
		{"indefinite frame", []byte{0xbf, 0x00, 0x05, 0xff}, false},
		{"indefinite changes", []byte{0xa2, 0x00, 0x05, 0x03, 0x9f, 0xff}, false},
		{"indefinite change", []byte{0xa2, 0x00, 0x05, 0x03, 0x81, 0xbf, 0xff}, false},
		{"indefinite sealed", withRaw(t, 7, []byte{0x5f, 0x41, 0x00, 0xff}), false},
		{"tag on the id", enc(t, pushOf(changeMap(2, cbor.RawMessage(append([]byte{0xd8, 0x25}, enc(t, id1[:])...))))), false},
		{"tag on the frame", append([]byte{0xc1}, base...), false},
		{"tag on a change", []byte{0xa2, 0x00, 0x05, 0x03, 0x81, 0xc1, 0xa0}, false},
		{"changes of 2^32", []byte{0xa2, 0x00, 0x05, 0x03, 0x9a, 0xff, 0xff, 0xff, 0xff}, false},
		{"changes of 2^64-1", []byte{0xa2, 0x00, 0x05, 0x03, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false},
		{"sealed of 2^63", []byte{0xa2, 0x00, 0x05, 0x03, 0x81, 0xa1, 0x07, 0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x00}, false},
		{"fields string of 2^64-1", withRawFields(t, []byte{0xa1, 0x02, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), false},
		{"keys of 2^32 pairs", []byte{0xa2, 0x00, 0x05, 0x02, 0xba, 0xff, 0xff, 0xff, 0xff}, false},
		{"change not a map", []byte{0xa2, 0x00, 0x05, 0x03, 0x81, 0x01}, false},
		{"change null", []byte{0xa2, 0x00, 0x05, 0x03, 0x81, 0xf6}, false},
		{"change key repeated", rep, false},
		{"kind 256", enc(t, pushOf(changeMap(1, 256))), false},
		{"kind 255", enc(t, pushOf(changeMap(1, 255))), true},
		{"op 256", enc(t, pushOf(changeMap(3, 256))), false},
		{"op 0", enc(t, pushOf(changeMap(3, 0))), true},
		{"kind negative", enc(t, pushOf(changeMap(1, -1))), false},
		{"hlc text", enc(t, pushOf(changeMap(4, "x"))), false},
		{"seq float", enc(t, pushOf(changeMap(5, 1.5))), false},
		{"id of 15 bytes", enc(t, pushOf(changeMap(2, id1[:15]))), false},
		{"id of 17 bytes", enc(t, pushOf(changeMap(2, append(id1[:], 0)))), false},
		{"id as text", enc(t, pushOf(changeMap(2, id1.String()))), false},
		{"id null", enc(t, pushOf(changeMap(2, cbor.RawMessage{0xf6}))), false},
		{"nil id", enc(t, pushOf(changeMap(2, make([]byte, 16)))), true},
		{"no id", enc(t, pushOf(changeMap(2, nil))), true},
		{"sealed as text", enc(t, pushOf(changeMap(6, nil, 7, "x", 8, 1))), false},
		{"fields and sealed", enc(t, with(pushOf(changeMap(7, []byte{1}, 8, 1)), 2, m{1: seq(0, 32)})), true},
		{"sealed with a missing key", enc(t, pushOf(changeMap(6, nil, 7, []byte{1}, 8, 2))), true},
		{"key id without sealed", enc(t, pushOf(changeMap(8, 1))), true},
		{"device in a push", enc(t, pushOf(changeMap(9, deviceB))), false},
		{"empty device in a push", enc(t, pushOf(changeMap(9, ""))), false},
		{"hub seq in a push", enc(t, pushOf(changeMap(10, 5))), false},
		{"hub seq 0 in a push", enc(t, pushOf(changeMap(10, 0))), false},
		{"unknown change key", enc(t, pushOf(changeMap(11, 1))), false},
		{"change key 0", enc(t, pushOf(changeMap(0, 1))), false},
		{"second change bad", enc(t, pushOf(changeMap(), changeMap(1, 9))), true},
		{"fields map", enc(t, pushOf(changeMap(6, fields))), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if took := sameDecode(t, c.frame); took != c.taken {
				t.Errorf("taken by the fast path: %v, want %v", took, c.taken)
			}
		})
	}
}

// TestFastPushMutations: every byte of a real push replaced in turn by
// values that change its meaning (a type, a length, a tag, a break), and
// every cut of it: the same result either way.
func TestFastPushMutations(t *testing.T) {
	f := fixturePushes(t)[1] // 14 changes: upserts of several kinds, deletes, erases, a sealed one
	if len(f) > 2000 {
		t.Fatalf("push of %d bytes: too long for every mutation", len(f))
	}
	for i := range f {
		for _, v := range []byte{0x00, 0x17, 0x18, 0x1b, 0x1f, 0x20, 0x40, 0x5f, 0x60, 0x80, 0x9f, 0xa0, 0xbf, 0xc1, 0xf4, 0xf6, 0xf8, 0xf9, 0xff, f[i] + 1, f[i] - 1} {
			g := bytes.Clone(f)
			g[i] = v
			sameDecode(t, g)
		}
		sameDecode(t, f[:i])
	}
}

// The field maps fastScan takes are those the general walk takes, with
// the same fields.
func TestFastScanMatchesWalk(t *testing.T) {
	for _, f := range fixturePushes(t) {
		m, err := Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range m.(*Push).Changes {
			if len(c.Fields) == 0 {
				continue
			}
			if _, ok := fastScan(c.Fields, true); !ok {
				t.Fatalf("fields %x left to the walk", []byte(c.Fields))
			}
			sameFields(t, c.Fields)
			for i := range c.Fields {
				g := bytes.Clone(c.Fields)
				g[i] ^= 0x20
				sameFields(t, g)
			}
		}
	}
}

// sameFields fails t unless scanFields and walkFields agree on b.
func sameFields(t testing.TB, b []byte) {
	t.Helper()
	for _, collect := range []bool{false, true} {
		got, gerr := scanFields(b, collect)
		want, werr := walkFields(b, collect)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) || !reflect.DeepEqual(got, want) {
			t.Fatalf("fields %x (collect %v):\nfast: %v %v\nwalk: %v %v", clipped(b), collect, got, gerr, want, werr)
		}
	}
}

// FuzzFastPush compares Decode with and without the fast path, and the
// two scans of a field map, on any input.
//
//	go test ./internal/wire -run '^$' -fuzz FuzzFastPush -fuzztime 60s
func FuzzFastPush(f *testing.F) {
	for _, fr := range fixturePushes(f)[:3] {
		f.Add(fr)
	}
	f.Add(enc(f, pushOf(changeMap())))
	f.Add(enc(f, with(pushOf(changeMap(6, nil, 7, []byte{1}, 8, 2)), 2, m{2: seq(0, 32)})))
	f.Add(enc(f, pushOf(changeMap(6, nested(FieldsDepth)))))
	f.Add([]byte{0xa2, 0x00, 0x05, 0x03, 0x81, 0xa1, 0x06, 0xa1, 0x02, 0xf9, 0x7e, 0x00})
	f.Fuzz(func(t *testing.T, frame []byte) {
		sameDecode(t, frame)
		if len(frame) > 3 {
			sameFields(t, frame[3:])
		}
	})
}
