package wire

import (
	"bytes"
	"compress/flate"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata/")

const device = "019ab3c4-5d6e-7f80-9a1b-2c3d4e5f6071"

var (
	deviceB = "019ab3c4-5d6e-7f80-9a1b-2c3d4e5f6072"
	id1     = mustID("019ab3c4-0000-7001-8000-00000000a001")
	id2     = mustID("019ab3c4-0000-7002-8000-00000000a002")
	ts      = uint64(hlc.FromTime(time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC))) + 3
)

func mustID(s string) ident.ID {
	id, err := ident.Parse(s)
	if err != nil {
		panic(err)
	}
	return id
}

// seq returns n bytes 0, 1, 2, … starting at from.
func seq(from byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// fieldsOf encodes a small field map of plain values.
func fieldsOf(t testing.TB, m map[uint64]any) RawCBOR {
	t.Helper()
	f := change.Fields{}
	for n, v := range m {
		b, err := change.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		f[n] = b
	}
	b, err := EncodeFields(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden returns one message of each type, from fixed values. Their
// frames are testdata/NAME.cbor (and NAME.diag, the same in diagnostic
// notation, for reading).
func golden(t testing.TB) []struct {
	name string
	msg  Message
} {
	act := fieldsOf(t, map[uint64]any{2: "individuel", 3: "2026-11-23", 4: 45, 8: []string{"aide_aux_demarches_administratives"},
		22: map[uint64]any{2: 12, 4: map[string]int{"feminin": 7, "masculin": 5}}})
	return []struct {
		name string
		msg  Message
	}{
		{"hello", &Hello{Proto: 1, AgentVersion: "0.9.1", Device: device, AgentTime: 1795422600123, Mode: ModeFull}},
		{"challenge", &Challenge{Nonce: seq(0x10, NonceSize), HubTime: 1795422600456}},
		{"auth", &Auth{Sig: seq(0x40, SigSize)}},
		{"welcome", &Welcome{HWM: 41, HubTime: 1795422600789, ClockOffset: -333, Team: "cd88", Name: "Numéribus 1 — portable A"}},
		{"welcome-open", &Welcome{HWM: 41, HubTime: 1795422600789, ClockOffset: -333, Team: "cd88", Name: "Numéribus 1 — portable A",
			LastTag: seq(0x30, TagSize), Early: true, Retention: map[string]uint32{"identite": 24, "diagnostics": 24, "notes": 18, "journal": 12}}},
		{"push", &Push{Batch: 7, Keys: map[uint64][]byte{1: seq(0x80, KeySize)}, Changes: []Change{
			{Kind: 1, ID: id1, Op: 1, HLC: ts, Seq: 42, Fields: act},
			{Kind: 2, ID: id2, Op: 1, HLC: ts + 1, Seq: 43, Sealed: seq(0xa0, 48), KeyID: 1},
			{Kind: 1, ID: id1, Op: 2, HLC: ts + 2, Seq: 44},
		}}},
		{"ack", &Ack{Batch: 7, HWM: 44, Applied: 3}},
		{"ack-rejected", &Ack{Batch: 8, HWM: 46, Applied: 1, Rejected: []Rejection{
			{Seq: 45, Code: CodeClockAhead, Reason: "stamped 2076-01-01T00:00:00Z, beyond the hub's clock + 24h", Ahead: 1577836800000},
			{Seq: 46, Code: CodeInvalid, Reason: "activity has no field 99"},
		}}},
		{"pull", &Pull{Cursor: 1000, Budget: 1 << 20}},
		{"changes", &Changes{Changes: []Change{
			{Kind: 5, ID: id2, Op: 1, HLC: ts, Seq: 9, Fields: fieldsOf(t, map[uint64]any{2: "Numéribus 2", 7: "88160"}), Device: deviceB, HubSeq: 1001},
			{Kind: 3, ID: id1, Op: 3, HLC: ts + 5, Seq: 10, Device: deviceB, HubSeq: 1002},
		}, Next: 1002, More: true}},
		{"error", &Error{Code: CodeProtocolTooOld, Message: "mettez l'agent à jour (protocole 1 requis)"}},
		{"error-busy", &Error{Code: CodeBusy, Message: "occupé, réessayez dans 3 s", RetryAfter: 3000}},
		{"enroll", &Enroll{Proto: 1, Token: []byte("K7QF-2M9D-XR4T"), Device: device, DeviceKey: seq(0x20, KeySize), PushKey: seq(0x60, KeySize), AgentVersion: "0.9.1"}},
		{"deflated", deflated(t, &Ack{Batch: 7, HWM: 44, Applied: 3})},
		{"open", &Open{Proto: 5, AgentVersion: "0.9.1", Device: device, AgentTime: 1795422600123, Mode: ModeFull,
			Acked: 41, AckedTag: seq(0x30, TagSize), Offset: -333, Early: 2, Sig: seq(0x40, SigSize)}},
		{"enrolled", &Enrolled{Name: "Numéribus 1 — portable A", Team: "cd88", HubKey: seq(0xc0, KeySize)}},
	}
}

func TestGoldenCoversEveryType(t *testing.T) {
	seen := map[Type]bool{}
	for _, g := range golden(t) {
		seen[g.msg.Type()] = true
		if name, _, _ := strings.Cut(g.name, "-"); name != g.msg.Type().String() {
			t.Errorf("golden %s holds a %s", g.name, g.msg.Type())
		}
	}
	for ty := Type(0); ty < 255; ty++ {
		if ty.Valid() != seen[ty] {
			t.Errorf("type %d (%s): valid %v, golden %v", ty, ty, ty.Valid(), seen[ty])
		}
	}
}

func TestRoundTrip(t *testing.T) {
	msgs := []Message{
		// zero-ish values: everything optional absent
		&Welcome{}, &Ack{}, &Pull{}, &Changes{}, &Push{},
		&Error{Code: CodeInternal},
		&Hello{Device: device, Mode: ModePush, AgentTime: -1},
		&Changes{Changes: []Change{{Kind: 4, ID: id1, Op: 1, HLC: 1, Device: "hub", HubSeq: 1 << 40}}, Next: 1 << 40},
		&Push{Keys: map[uint64][]byte{0: seq(1, 32), 1 << 60: seq(2, 32)}, Changes: []Change{{Kind: 3, ID: id2, Op: 3, HLC: 2, Sealed: []byte{0}}}},
	}
	for _, g := range golden(t) {
		msgs = append(msgs, g.msg)
	}
	for _, m := range msgs {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%#v): %v", m, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(%#v)): %v\n%x", m, err, b)
		}
		if want := decodedOf(t, m); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", m.Type(), got, want)
		}
	}
}

func TestGolden(t *testing.T) {
	for _, g := range golden(t) {
		t.Run(g.name, func(t *testing.T) {
			b, err := Encode(g.msg)
			if err != nil {
				t.Fatal(err)
			}
			diag, err := cbor.Diagnose(b)
			if err != nil {
				t.Fatal(err)
			}
			diag += "\n"
			path := filepath.Join("testdata", g.name+".cbor")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(strings.TrimSuffix(path, ".cbor")+".diag", []byte(diag), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create the golden files)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("Encode(%s) changed the wire:\n got %x\nwant %x\n(if intended, bump ProtocolVersion where incompatible, update schema/sync.cddl and run go test -update)", g.name, b, want)
			}
			wantDiag, err := os.ReadFile(strings.TrimSuffix(path, ".cbor") + ".diag")
			if err != nil {
				t.Fatal(err)
			}
			if diag != string(wantDiag) {
				t.Errorf("%s.diag out of date:\n got %s\nwant %s", g.name, diag, wantDiag)
			}
			got, err := Decode(want)
			if err != nil {
				t.Fatalf("Decode(%s): %v", path, err)
			}
			if want := decodedOf(t, g.msg); !reflect.DeepEqual(got, want) {
				t.Errorf("Decode(%s):\n got %#v\nwant %#v", path, got, want)
			}
		})
	}
}

// decodedOf returns what Decode gives for m: m, or the message a
// Deflated frame carries.
func decodedOf(t testing.TB, m Message) Message {
	t.Helper()
	d, ok := m.(*Deflated)
	if !ok {
		return m
	}
	inner, err := inflate(d)
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

// enc encodes any value in deterministic CBOR, to craft frames.
func enc(t testing.TB, v any) []byte {
	t.Helper()
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := em.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type m = map[uint64]any

func helloMap() m { return m{0: 1, 1: 1, 2: "0.9.1", 3: device, 4: 1795422600123, 5: 1} }

func with(base m, kv ...any) m {
	out := m{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(int)
		if kv[i+1] == nil {
			delete(out, uint64(k))
		} else {
			out[uint64(k)] = kv[i+1]
		}
	}
	return out
}

// changeMap is a valid pushed change as a map; cbor.RawMessage values go
// in as they are.
func changeMap(kv ...any) m {
	return with(m{1: 1, 2: id1[:], 3: 1, 4: ts, 5: 42, 6: cbor.RawMessage{0xa1, 0x02, 0x6a, 'i', 'n', 'd', 'i', 'v', 'i', 'd', 'u', 'e', 'l'}}, kv...)
}

func pushOf(changes ...m) m {
	cs := make([]any, len(changes))
	for i, c := range changes {
		cs[i] = c
	}
	return m{0: 5, 1: 1, 3: cs}
}

// nested returns a CBOR map nesting depth maps in all ({2: {2: … {}}}).
func nested(depth int) cbor.RawMessage {
	b := []byte{0xa0}
	for range depth - 1 {
		b = append([]byte{0xa1, 0x02}, b...)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	hello := enc(t, helloMap())
	if _, err := Decode(hello); err != nil {
		t.Fatalf("the base hello does not decode: %v", err)
	}
	if _, err := Decode(enc(t, pushOf(changeMap()))); err != nil {
		t.Fatalf("the base push does not decode: %v", err)
	}
	huge := make([]byte, MaxFrame+1)
	copy(huge, hello)
	cases := []struct {
		name  string
		frame []byte
		is    error
		says  string
	}{
		{"empty", nil, ErrMalformed, "empty frame"},
		{"not a map", enc(t, []int{1, 2}), ErrMalformed, "the frame is an array, not a map"},
		{"trailing bytes", append(bytes.Clone(hello), 0x00), ErrMalformed, "extraneous data"},
		{"unknown type", enc(t, m{0: 99}), ErrUnknownType, "99"},
		{"type 0", enc(t, m{0: 0, 1: 1}), ErrUnknownType, "0"},
		{"type beyond a byte", enc(t, m{0: 1 << 20}), ErrUnknownType, "1048576"},
		{"no type", enc(t, m{1: 1}), ErrMalformed, "no message type (key 0)"},
		{"type not an integer", enc(t, m{0: "hello"}), ErrMalformed, "message type (key 0): UTF-8 text string where an unsigned integer was expected"},
		{"unknown key", enc(t, with(helloMap(), 9, 1)), ErrMalformed, "hello: unknown key 9"},
		{"text key", enc(t, map[any]any{0: 1, 1: 1, 3: device, 5: 1, "foo": 1}), ErrMalformed, `hello: unknown key "foo"`},
		{"unknown key in a change", enc(t, pushOf(changeMap(), changeMap(11, 1))), ErrMalformed, "push: changes[1]: unknown key 11"},
		{"duplicate key", []byte{0xa3, 0x00, 0x06, 0x01, 0x01, 0x01, 0x02}, ErrMalformed, "duplicate map key 1 at map element index 2"},
		{"duplicate type key", []byte{0xa2, 0x00, 0x06, 0x00, 0x07}, ErrMalformed, "duplicate map key 0 at map element index 1"},
		{"indefinite map", []byte{0xbf, 0x00, 0x06, 0xff}, ErrMalformed, "indefinite-length map isn't allowed"},
		{"indefinite string", append(enc(t, m{0: 9, 2: "x"})[:len(enc(t, m{0: 9, 2: "x"}))-2], 0x7f, 0x61, 'x', 0xff), ErrMalformed, "indefinite-length UTF-8 text string isn't allowed"},
		{"indefinite array", []byte{0xa2, 0x00, 0x05, 0x03, 0x9f, 0xff}, ErrMalformed, "indefinite-length array isn't allowed"},
		{"tag", enc(t, with(helloMap(), 3, cbor.RawMessage(append([]byte{0xd8, 0x25}, enc(t, device)...)))), ErrMalformed, "CBOR tag isn't allowed"},
		{"tag in fields", enc(t, pushOf(changeMap(6, cbor.RawMessage{0xa1, 0x02, 0xc1, 0x00}))), ErrMalformed, "CBOR tag isn't allowed"},
		{"nesting beyond the limit", enc(t, pushOf(changeMap(6, nested(FieldsDepth+1)))), ErrMalformed, "exceeded max nested level 7"},
		{"array of 10^6 elements", []byte{0xa2, 0x00, 0x05, 0x03, 0x9a, 0x00, 0x0f, 0x42, 0x40, 0xa0}, ErrMalformed, "exceeded max number of elements 10000 for CBOR array"},
		{"map of 10^6 pairs", []byte{0xa2, 0x00, 0x05, 0x02, 0xba, 0x00, 0x0f, 0x42, 0x40, 0x01}, ErrMalformed, "exceeded max number of key-value pairs 1024 for CBOR map"},
		{"byte string of 4 GiB", []byte{0xa2, 0x00, 0x03, 0x01, 0x5a, 0xff, 0xff, 0xff, 0xff, 0x00}, ErrMalformed, "unexpected EOF"},
		{"frame > MaxFrame", huge, ErrTooLarge, "4194305 bytes, the limit is 4194304"},
		{"id of 15 bytes", enc(t, pushOf(changeMap(2, id1[:15]))), ErrMalformed, "binary id has 15 bytes, want 16"},
		{"id of 17 bytes", enc(t, pushOf(changeMap(2, append(id1[:], 0)))), ErrMalformed, "binary id has 17 bytes, want 16"},
		{"id as text", enc(t, pushOf(changeMap(2, id1.String()))), ErrMalformed, "push: in key 3 (Changes): UTF-8 text string where ident.ID was expected"},
		{"no id", enc(t, pushOf(changeMap(2, nil))), ErrMalformed, "changes[0] (seq 42): nil id"},
		{"nil id", enc(t, pushOf(changeMap(2, make([]byte, 16)))), ErrMalformed, "changes[0] (seq 42): nil id"},
		{"unknown kind", enc(t, pushOf(changeMap(), changeMap(1, 9))), ErrMalformed, "push: changes[1] (seq 42): unknown kind 9"},
		{"no kind", enc(t, pushOf(changeMap(1, nil))), ErrMalformed, "unknown kind 0"},
		{"op 0", enc(t, pushOf(changeMap(3, 0))), ErrMalformed, "op 0 is not upsert (1), delete (2) or erase (3)"},
		{"op 9", enc(t, pushOf(changeMap(3, 9))), ErrMalformed, "op 9 is not upsert (1), delete (2) or erase (3)"},
		{"no hlc", enc(t, pushOf(changeMap(4, nil))), ErrMalformed, "no HLC timestamp"},
		{"field number 1", enc(t, pushOf(changeMap(6, cbor.RawMessage(enc(t, m{1: id1[:], 2: "individuel"}))))), ErrMalformed, "field number 1 (the id) among the fields"},
		{"fields not a map", enc(t, pushOf(changeMap(6, cbor.RawMessage{0x82, 0x01, 0x02}))), ErrMalformed, "fields are an array, not a map"},
		{"fields with a text key", enc(t, pushOf(changeMap(6, cbor.RawMessage(enc(t, map[string]int{"type": 1}))))), ErrMalformed, "fields: a key is a text string, not a field number"},
		{"fields with a duplicate number", enc(t, pushOf(changeMap(6, cbor.RawMessage{0xa2, 0x02, 0x01, 0x02, 0x02}))), ErrMalformed, "fields: field number 2 repeated"},
		{"fields and sealed", enc(t, with(pushOf(changeMap(7, []byte{1}, 8, 1)), 2, m{1: seq(0, 32)})), ErrMalformed, "both fields and sealed fields"},
		{"sealed with a missing key", enc(t, pushOf(changeMap(6, nil, 7, []byte{1}, 8, 2))), ErrMalformed, "sealed with key 2, which the push's keys lack"},
		{"key id without sealed", enc(t, pushOf(changeMap(8, 1))), ErrMalformed, "key id without sealed fields"},
		{"push key of 31 bytes", enc(t, with(pushOf(changeMap()), 2, m{1: seq(0, 31)})), ErrMalformed, "keys[1] has 31 bytes, want 32"},
		{"device in a push", enc(t, pushOf(changeMap(9, deviceB))), ErrMalformed, "device is set in a push"},
		{"hub seq in a push", enc(t, pushOf(changeMap(10, 5))), ErrMalformed, "hub seq is set in a push"},
		{"pulled change without device", enc(t, m{0: 8, 1: []any{changeMap(10, 5)}}), ErrMalformed, "changes: changes[0] (hub seq 5): no origin device"},
		{"pulled change without hub seq", enc(t, m{0: 8, 1: []any{changeMap(9, deviceB)}}), ErrMalformed, "no hub seq"},
		{"sealed in a pull reply", enc(t, m{0: 8, 1: []any{changeMap(6, nil, 7, []byte{1}, 9, deviceB, 10, 5)}}), ErrMalformed, "sealed fields in a pull reply"},
		{"device not a UUID", enc(t, with(helloMap(), 3, "laptop-1")), ErrMalformed, `device "laptop-1" is not a UUID in canonical lower-case form`},
		{"device in upper case", enc(t, with(helloMap(), 3, strings.ToUpper(device))), ErrMalformed, "not a UUID in canonical lower-case form"},
		{"mode 3", enc(t, with(helloMap(), 5, 3)), ErrMalformed, "mode 3 is neither full (1) nor push (2)"},
		{"no mode", enc(t, with(helloMap(), 5, nil)), ErrMalformed, "mode 0 is neither"},
		{"mode beyond a byte", enc(t, with(helloMap(), 5, 257)), ErrMalformed, "hello: key 5 (Mode): positive integer where uint8 was expected (257 overflows uint8)"},
		{"text for an integer", enc(t, with(helloMap(), 1, "1")), ErrMalformed, "hello: key 1 (Proto): UTF-8 text string where uint32 was expected"},
		{"negative for unsigned", enc(t, with(helloMap(), 1, -1)), ErrMalformed, "hello: key 1 (Proto): negative integer where uint32 was expected"},
		{"byte string for text", enc(t, with(helloMap(), 2, []byte("0.9.1"))), ErrMalformed, "hello: key 2 (AgentVersion): byte string where string was expected"},
		{"invalid UTF-8", enc(t, with(helloMap(), 2, cbor.RawMessage{0x62, 0xc3, 0x28})), ErrMalformed, "invalid UTF-8 string"},
		{"float for an integer", enc(t, m{0: 6, 1: 1.5}), ErrMalformed, "ack: key 1 (Batch): float or simple value where uint64 was expected"},
		{"nonce of 31 bytes", enc(t, m{0: 2, 1: seq(0, 31)}), ErrMalformed, "challenge: nonce has 31 bytes, want 32"},
		{"signature of 63 bytes", enc(t, m{0: 3, 1: seq(0, 63)}), ErrMalformed, "auth: signature has 63 bytes, want 64"},
		{"enroll without token", enc(t, m{0: 10, 1: 1, 3: device, 4: seq(0, 32), 5: seq(0, 32)}), ErrMalformed, "enroll: no token"},
		{"enroll push key of 33 bytes", enc(t, m{0: 10, 1: 1, 2: []byte("t"), 3: device, 4: seq(0, 32), 5: seq(0, 33)}), ErrMalformed, "push key has 33 bytes, want 32"},
		{"hub key missing", enc(t, m{0: 11, 1: "x"}), ErrMalformed, "enrolled: hub key has 0 bytes, want 32"},
		{"error without code", enc(t, m{0: 9, 2: "?"}), ErrMalformed, "error without a code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, err := Decode(c.frame)
			if err == nil {
				t.Fatalf("Decode accepted %x as %#v", c.frame[:min(len(c.frame), 64)], msg)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %q does not wrap %q", err, c.is)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
		})
	}
}

// TestFieldsInAnyOrder: field maps from a peer need not be sorted.
func TestFieldsInAnyOrder(t *testing.T) {
	for _, f := range []cbor.RawMessage{
		{0xa3, 0x04, 0x01, 0x03, 0x80, 0x02, 0x60},                         // {4: 1, 3: [], 2: ""}
		{0xa2, 0x19, 0x01, 0x00, 0xa1, 0x02, 0x81, 0xf6, 0x18, 0x18, 0xf5}, // {256: {2: [null]}, 24: true}
		{0xa0},
	} {
		if _, err := Decode(enc(t, pushOf(changeMap(6, f)))); err != nil {
			t.Errorf("fields %x: %v", []byte(f), err)
		}
	}
}

func TestNestingAtTheLimit(t *testing.T) {
	if _, err := Decode(enc(t, pushOf(changeMap(6, nested(FieldsDepth))))); err != nil {
		t.Fatalf("fields nesting %d deep: %v", FieldsDepth, err)
	}
	if _, err := DecodeFields(nested(FieldsDepth)); err != nil {
		t.Fatalf("DecodeFields at the limit: %v", err)
	}
	if _, err := DecodeFields(nested(FieldsDepth + 1)); err == nil || !strings.Contains(err.Error(), "exceeded max nested level") {
		t.Fatalf("DecodeFields beyond the limit: %v", err)
	}
}

func TestTruncated(t *testing.T) {
	for _, g := range golden(t) {
		b, err := Encode(g.msg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(b) {
			if _, err := Decode(b[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s cut to %d of %d bytes: error %v, want ErrMalformed", g.name, i, len(b), err)
			}
		}
	}
}

// TestLongArrayFailsFast: a header announcing 10^6 changes in a few bytes
// is refused before anything is allocated for them.
func TestLongArrayFailsFast(t *testing.T) {
	// No collection while counting: one empties the decoders' pools, and
	// the runs after it allocate what they would have reused (13 instead
	// of 12 on a loaded machine under -race).
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, frame := range [][]byte{
		{0xa2, 0x00, 0x05, 0x03, 0x9a, 0x00, 0x0f, 0x42, 0x40},                   // push, 10^6 changes, none there
		{0xa2, 0x00, 0x05, 0x03, 0x9a, 0x00, 0x0f, 0x42, 0x40, 0xa0, 0xa0, 0xa0}, // a few there
		{0xa2, 0x00, 0x05, 0x03, 0x99, 0x27, 0x10},                               // 10^4 announced, none there
		{0xa2, 0x00, 0x05, 0x02, 0xb9, 0x27, 0x10},                               // 10^4 keys announced, none there
		{0xa2, 0x00, 0x05, 0x03, 0x99, 0x27, 0x10, 0xa0},                         // 10^4 announced, within the limit, one there
		{0xa2, 0x00, 0x05, 0x02, 0xba, 0x00, 0x0f, 0x42, 0x40},                   // 10^6 keys
		{0xa2, 0x00, 0x03, 0x01, 0x5a, 0x7f, 0xff, 0xff, 0xff},                   // a 2 GiB signature
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Decode(frame); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%x): %v", frame, err)
			}
		})
		if allocs > 12 {
			t.Errorf("Decode(%x): %.0f allocations", frame, allocs)
		}
		// Nor a large allocation sized by the count (the hand-written
		// decoder of pushes sized its changes by it: 1.2 MB for 7 bytes).
		var ms0, ms1 testingMemStats
		ms0.read()
		for range 100 {
			Decode(frame)
		}
		ms1.read()
		if d := ms1.total - ms0.total; d > 100*4096 {
			t.Errorf("100 decodes of %x allocated %d bytes", frame, d)
		}
	}
}

// TestKeyZeroNotFirst: a peer encoding the map in another order, or the
// type in a longer form, is understood (Decode accepts any valid CBOR; only
// Encode is deterministic).
func TestKeyZeroNotFirst(t *testing.T) {
	for _, frame := range [][]byte{
		{0xa2, 0x01, 0x05, 0x00, 0x06},       // {1: 5, 0: 6}
		{0xa2, 0x00, 0x18, 0x06, 0x01, 0x05}, // {0: 6 in two bytes, 1: 5}
		{0xb8, 0x02, 0x00, 0x06, 0x01, 0x05}, // map length in two bytes
		{0xa2, 0x00, 0x19, 0x00, 0x06, 0x01, 0x18, 0x05},
	} {
		msg, err := Decode(frame)
		if err != nil {
			t.Fatalf("Decode(%x): %v", frame, err)
		}
		if !reflect.DeepEqual(msg, &Ack{Batch: 5}) {
			t.Fatalf("Decode(%x) = %#v", frame, msg)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	var nilHello *Hello
	cases := []struct {
		msg  Message
		is   error
		says string
	}{
		{nil, ErrMalformed, "nil message"},
		{nilHello, ErrMalformed, "nil hello"},
		{&Hello{Device: device}, ErrMalformed, "mode 0"},
		{&Push{Changes: []Change{{Kind: 1, ID: id1, Op: 1, HLC: 1, Fields: RawCBOR{0xa1, 0x02}}}}, ErrMalformed, "unexpected EOF"},
		{&Push{Changes: []Change{{Kind: 7, ID: id1, Op: 1, HLC: 1}}}, ErrMalformed, "push: changes[0] (seq 0): unknown kind 7"},
		{&Push{Changes: make([]Change, MaxChanges+1)}, ErrMalformed, "10001 changes, the limit is 10000"},
		{&Error{Code: "x", Message: strings.Repeat("x", MaxFrame)}, ErrTooLarge, "the limit is 4194304"},
		{&Welcome{Retention: map[string]uint32{"notes": 0}}, ErrMalformed, `retention: 0 months for "notes"`},
		{&Welcome{Retention: map[string]uint32{"notes": 1201}}, ErrMalformed, `retention: 1201 months for "notes" (1 to 1200)`},
		{&Welcome{Retention: map[string]uint32{strings.Repeat("x", 33): 12}}, ErrMalformed, "retention: a kind name of 33 bytes"},
		{foreign{}, ErrUnknownType, "wire.foreign is not a message of this package"},
	}
	for _, c := range cases {
		_, err := Encode(c.msg)
		if !errors.Is(err, c.is) || !strings.Contains(fmt.Sprint(err), c.says) {
			t.Errorf("Encode(%T): error %v, want %v saying %q", c.msg, err, c.is, c.says)
		}
	}
}

type foreign struct{}

func (foreign) Type() Type { return TypeAck }

func TestKindCodes(t *testing.T) {
	want := map[domain.Kind]uint8{domain.KindActivity: 1, domain.KindBeneficiary: 2, domain.KindConsent: 3,
		domain.KindAssessment: 4, domain.KindTourStop: 5}
	if len(want) != len(domain.Kinds) {
		t.Fatalf("domain has %d kinds, the wire codes %d", len(domain.Kinds), len(want))
	}
	for _, k := range domain.Kinds {
		if got := KindCode(k); got != want[k] {
			t.Errorf("KindCode(%s) = %d, want %d", k, got, want[k])
		}
		if got, ok := KindOf(want[k]); !ok || got != k {
			t.Errorf("KindOf(%d) = %q, %v", want[k], got, ok)
		}
	}
	for _, code := range []uint8{0, 6, 255} {
		if k, ok := KindOf(code); ok {
			t.Errorf("KindOf(%d) = %s", code, k)
		}
	}
	if KindCode("") != 0 || KindCode("person") != 0 {
		t.Error("unknown kinds have a code")
	}
}

// sample returns realistic changes: every record of a small fixture set,
// as upserts from one device.
func sample(t testing.TB, activities int) []change.Change {
	t.Helper()
	set := fixture.Generate(fixture.Options{N: activities, Seed: 7})
	clock := hlc.New(func() time.Time { return time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC) }, 0)
	var out []change.Change
	for i, r := range set.Records() {
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f,
			HLC: clock.Now(), Device: device, Seq: uint64(i + 1)})
	}
	return out
}

func TestConversions(t *testing.T) {
	for _, c := range sample(t, 200) {
		w, err := FromChange(&c)
		if err != nil {
			t.Fatal(err)
		}
		if w.Device != "" || w.HubSeq != 0 {
			t.Fatalf("FromChange set device %q, hub seq %d", w.Device, w.HubSeq)
		}
		back, err := w.ToChange()
		if err != nil {
			t.Fatalf("ToChange(%s %s): %v", c.Kind, c.ID, err)
		}
		want := c
		want.Device = ""
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("conversion round trip:\n got %#v\nwant %#v", back, want)
		}
		w.Device, w.HubSeq = device, 77
		if back, err = w.ToChange(); err != nil || back.Device != device {
			t.Fatalf("pulled change: %v, device %q", err, back.Device)
		}
		if _, err := change.Decode(back.Kind, back.ID, back.Fields); err != nil {
			t.Fatalf("fields of %s %s do not decode to a record: %v", c.Kind, c.ID, err)
		}
	}
	sealed := Change{Kind: 2, ID: id1, Op: 1, HLC: 9, Sealed: []byte{1, 2, 3}, KeyID: 4}
	if c, err := sealed.ToChange(); err != nil || c.Fields != nil {
		t.Errorf("sealed change: %v, fields %v", err, c.Fields)
	}
	bad := []struct {
		c    change.Change
		says string
	}{
		{change.Change{Kind: "person", ID: id1, Op: 1, HLC: 1}, `unknown kind "person"`},
		{change.Change{Kind: domain.KindActivity, ID: id1, Op: 7, HLC: 1}, "op 7 is not"},
		{change.Change{Kind: domain.KindActivity, ID: id1, Op: 1}, "no HLC timestamp"},
		{change.Change{Kind: domain.KindActivity, ID: id1, Op: 1, HLC: 1, Fields: change.Fields{1: enc(t, id1[:])}}, "field number 1 (the id)"},
		{change.Change{Kind: domain.KindActivity, ID: id1, Op: 1, HLC: 1, Fields: change.Fields{2: {0x61}}}, "unexpected EOF"},
	}
	for _, b := range bad {
		if _, err := FromChange(&b.c); err == nil || !strings.Contains(err.Error(), b.says) {
			t.Errorf("FromChange(%+v): %v, want %q", b.c, err, b.says)
		}
	}
	for _, w := range []Change{
		{Kind: 6, ID: id1, Op: 1, HLC: 1},
		{Kind: 1, ID: id1, Op: 0, HLC: 1},
		{Kind: 1, ID: id1, Op: 1, HLC: 1, Fields: RawCBOR(enc(t, m{1: "x"}))},
		{Kind: 1, ID: id1, Op: 1, HLC: 1, Fields: RawCBOR{0x01}},
		{Kind: 1, ID: id1, Op: 1, HLC: 1, Fields: RawCBOR(enc(t, m{2: "x"})), Sealed: []byte{1}},
	} {
		if _, err := w.ToChange(); !errors.Is(err, ErrMalformed) {
			t.Errorf("ToChange(%+v): %v", w, err)
		}
	}
}

func TestEncodedSize(t *testing.T) {
	var changes []Change
	for _, c := range sample(t, 100) {
		w, err := FromChange(&c)
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, w)
	}
	big := Change{Kind: 5, ID: id2, Op: 3, HLC: 1<<63 + 5, Seq: 1 << 33, Sealed: make([]byte, 70000), KeyID: 300,
		Device: strings.Repeat("d", 24), HubSeq: 65536}
	changes = append(changes, big, Change{ID: id1}, Change{Kind: 1, ID: id1, Op: 1, HLC: 23, Seq: 24, Fields: RawCBOR{0xa0}})
	for i := range changes {
		c := &changes[i]
		b, err := encMode.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := EncodedSize(c); got != len(b) {
			t.Errorf("EncodedSize(%d) = %d, encoded %d bytes", i, got, len(b))
		}
	}
	changes = changes[:100]
	p := &Push{Batch: 300, Keys: map[uint64][]byte{1: seq(0, 32)}}
	empty, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for i := range changes {
		sum += EncodedSize(&changes[i])
	}
	p.Changes = changes
	full, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(empty) + 1 + ArrayHeadSize(len(changes)) + sum; len(full) != want {
		t.Errorf("push of %d changes: %d bytes, the size helpers say %d", len(changes), len(full), want)
	}
}

func TestAuthMessage(t *testing.T) {
	nonce, fp := seq(0, 32), seq(0x80, 32)
	got := AuthMessage(nonce, fp, device, ModeFull)
	want := "0000000000000016" + hex.EncodeToString([]byte("numeribus-sync-auth-v1")) +
		"0000000000000020" + hex.EncodeToString(nonce) +
		"0000000000000020" + hex.EncodeToString(fp) +
		"0000000000000024" + hex.EncodeToString([]byte(device)) +
		"0000000000000001" + "01"
	if hex.EncodeToString(got) != want {
		t.Fatalf("AuthMessage changed:\n got %x\nwant %s", got, want)
	}
	// Moving bytes from one part to the next changes the message.
	seen := map[string]bool{}
	for _, in := range []struct {
		nonce, fp []byte
		device    string
		mode      uint8
	}{
		{[]byte("ab"), []byte("c"), "d", 1},
		{[]byte("a"), []byte("bc"), "d", 1},
		{[]byte("a"), []byte("b"), "cd", 1},
		{[]byte("ab"), nil, "cd", 1},
		{[]byte("ab"), []byte("c"), "d", 2},
		{nil, []byte("abc"), "d", 1},
	} {
		s := string(AuthMessage(in.nonce, in.fp, in.device, in.mode))
		if seen[s] {
			t.Errorf("AuthMessage collides for %q", in)
		}
		seen[s] = true
	}
}

// jsonChange is how the same change would travel as JSON: names for keys,
// text for the kind, op, id and timestamp.
type jsonChange struct {
	Kind   domain.Kind     `json:"kind"`
	Op     string          `json:"op"`
	HLC    string          `json:"hlc"`
	Seq    uint64          `json:"seq"`
	Record json.RawMessage `json:"record"` // the record as its JSON, id included
}

func TestSize(t *testing.T) {
	set := fixture.Generate(fixture.Options{N: 100, Seed: 11})
	clock := hlc.New(func() time.Time { return time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC) }, 0)
	p := &Push{Batch: 1}
	var js []jsonChange
	for i, a := range set.Activities {
		f, err := change.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		c := change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f, HLC: clock.Now(), Seq: uint64(i + 1)}
		w, err := FromChange(&c)
		if err != nil {
			t.Fatal(err)
		}
		p.Changes = append(p.Changes, w)
		rec, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		js = append(js, jsonChange{Kind: c.Kind, Op: c.Op.String(), HLC: c.HLC.String(), Seq: c.Seq, Record: rec})
	}
	frame, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	jframe, err := json.Marshal(struct {
		Type    string       `json:"type"`
		Batch   uint64       `json:"batch"`
		Changes []jsonChange `json:"changes"`
	}{"push", 1, js})
	if err != nil {
		t.Fatal(err)
	}
	n := len(p.Changes)
	sum, fsum := 0, 0
	for i := range p.Changes {
		sum += EncodedSize(&p.Changes[i])
		fsum += len(p.Changes[i].Fields)
	}
	jsum := 0
	for _, c := range js {
		b, _ := json.Marshal(c)
		jsum += len(b)
	}
	t.Logf("push of %d activities: CBOR %d bytes (%.0f per change, of which fields %.0f), JSON %d bytes (%.0f per change): ratio %.2f",
		n, len(frame), float64(sum)/float64(n), float64(fsum)/float64(n), len(jframe), float64(jsum)/float64(n), float64(len(frame))/float64(len(jframe)))
	if float64(len(frame)) > 0.6*float64(len(jframe)) {
		t.Errorf("CBOR push %d bytes > 0.6 × JSON %d bytes", len(frame), len(jframe))
	}
}

func pushSample(b testing.TB) *Push {
	set := fixture.Generate(fixture.Options{N: 100, Seed: 11})
	clock := hlc.New(func() time.Time { return time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC) }, 0)
	p := &Push{Batch: 1}
	for i, a := range set.Activities {
		f, err := change.Encode(a)
		if err != nil {
			b.Fatal(err)
		}
		w, err := FromChange(&change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f, HLC: clock.Now(), Seq: uint64(i + 1)})
		if err != nil {
			b.Fatal(err)
		}
		p.Changes = append(p.Changes, w)
	}
	return p
}

func BenchmarkEncodePush(b *testing.B) {
	p := pushSample(b)
	frame, _ := Encode(p)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePush(b *testing.B) {
	frame, err := Encode(pushSample(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePushToChanges adds the conversion of every change to
// change.Change, as the hub does after Decode.
func BenchmarkDecodePushToChanges(b *testing.B) {
	frame, err := Encode(pushSample(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		for i := range m.(*Push).Changes {
			if _, err := m.(*Push).Changes[i].ToChange(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, g := range golden(f) {
		b, err := os.ReadFile(filepath.Join("testdata", g.name+".cbor"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa2, 0x01, 0x05, 0x00, 0x06})
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownType) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps none of the package's errors", err)
			}
			return
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", m, err)
		}
		m2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", b, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-decoding differs:\n%#v\n%#v", m, m2)
		}
		b2, err := Encode(m2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable: %v\n%x\n%x", err, b, b2)
		}
		if p, ok := m.(*Push); ok {
			for i := range p.Changes {
				if _, err := p.Changes[i].ToChange(); err != nil {
					t.Fatalf("a decoded change does not convert: %v", err)
				}
			}
		}
	})
}

type testingMemStats struct{ total uint64 }

func (s *testingMemStats) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.total = ms.TotalAlloc
}

// TestCDDL checks that schema/sync.cddl lists exactly the keys of each
// message and change struct, and the type number of each message.
func TestCDDL(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "schema", "sync.cddl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if i := strings.IndexByte(l, ';'); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	text := strings.Join(lines, "\n")
	rule := regexp.MustCompile(`(?ms)^([a-z-]+) = ([{(])(.*?)^[})]`)
	key := regexp.MustCompile(`(?:^|[\s(,])(\d+):`)
	rules := map[string][]uint64{}
	for _, r := range rule.FindAllStringSubmatch(text, -1) {
		var keys []uint64
		for _, k := range key.FindAllStringSubmatch(r[3], -1) {
			n, _ := strconv.ParseUint(k[1], 10, 64)
			keys = append(keys, n)
		}
		rules[r[1]] = keys
	}
	sorted := func(m map[uint64]reflect.Type) []uint64 {
		var out []uint64
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	typeOf := regexp.MustCompile(`(?m)^\s*0: (\d+),`)
	for ty := TypeHello; ty.Valid(); ty++ {
		got := slices.Clone(rules[ty.String()])
		slices.Sort(got)
		if want := sorted(keyFields(frameTypes[ty])); !slices.Equal(got, want) {
			t.Errorf("cddl %s has keys %v, the struct %v", ty, got, want)
		}
		body := rule.FindStringSubmatch(text[strings.Index(text, "\n"+ty.String()+" = "):])
		if m := typeOf.FindStringSubmatch(body[3]); m == nil || m[1] != strconv.Itoa(int(ty)) {
			t.Errorf("cddl %s: type %v, want 0: %d", ty, m, ty)
		}
	}
	var got []uint64
	for _, r := range []string{"change-head", "pushed-change", "pulled-change"} {
		if rules[r] == nil {
			t.Fatalf("cddl has no rule %s", r)
		}
		got = append(got, rules[r]...)
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if want := sorted(keyFields(reflect.TypeFor[Change]())); !slices.Equal(got, want) {
		t.Errorf("cddl changes have keys %v, the struct %v", got, want)
	}
	for k, code := range map[string]uint8{"activity": 1, "beneficiary": 2, "consent": 3, "assessment": 4, "tourstop": 5} {
		if !strings.Contains(text, fmt.Sprintf("%s: %d", k, code)) {
			t.Errorf("cddl lacks kind %s: %d", k, code)
		}
	}
	for _, code := range []string{CodeProtocolTooOld, CodeMalformed, CodeTooLarge, CodeUnauthorized, CodeRevoked,
		CodeUnknownDevice, CodeBadToken, CodeTokenUsed, CodeTokenExpired, CodeReplay, CodeOutOfOrder, CodeInternal, CodeForbidden} {
		if !strings.Contains(text, `"`+code+`"`) {
			t.Errorf("cddl lacks error code %q", code)
		}
	}
}

// deflated returns m wrapped in a Deflated frame, compressed at
// flate.BestSpeed: the same bytes every time.
func deflated(t testing.TB, m Message) *Deflated {
	t.Helper()
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return &Deflated{Frame: buf.Bytes()}
}
