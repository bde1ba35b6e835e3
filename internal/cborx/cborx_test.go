package cborx

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// The heads are those of Core Deterministic Encoding, at every boundary
// of the shortest form, and HeadSize is their size.
func TestHeadMatchesLibrary(t *testing.T) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		want, err := em.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendHead([]byte{0xff}, Uint, n); !bytes.Equal(got[1:], want) || got[0] != 0xff {
			t.Errorf("uint %d: %x, want %x", n, got[1:], want)
		}
		if got := HeadSize(n); got != len(want) {
			t.Errorf("HeadSize(%d) = %d, want %d", n, got, len(want))
		}
		// The other major types differ only in the top 3 bits.
		for _, m := range []byte{Bytes, Text, Array, Map} {
			got := AppendHead(nil, m, n)
			if got[0]>>5 != m || got[0]&0x1f != want[0] || !bytes.Equal(got[1:], want[1:]) {
				t.Errorf("major %d, %d: %x", m, n, got)
			}
		}
	}
	for _, n := range []int{0, 23, 24, 300, 70000} {
		want, _ := em.Marshal(strings.Repeat("x", n))
		if got := AppendHead(nil, Text, uint64(n)); !bytes.HasPrefix(want, got) || len(want) != len(got)+n {
			t.Errorf("text of %d bytes: head %x, library %x…", n, got, want[:min(len(want), 10)])
		}
	}
}

// What each decoder refuses, on the smallest inputs that show it.
func TestDecoders(t *testing.T) {
	type s struct {
		A int `cbor:"1,keyasint"`
	}
	l := Limits{Depth: 4, Elements: 16, Pairs: 16} // the library's least
	strict := l
	strict.StrictKeys = true
	pairs := AppendHead(nil, Map, 17)
	for k := range 17 {
		pairs = append(pairs, byte(k+1), 0x00)
	}
	for _, c := range []struct {
		name                   string
		in                     []byte
		loose, strict, trusted bool // accepted
	}{
		{"plain", []byte{0xa1, 0x01, 0x05}, true, true, true},
		{"unknown key", []byte{0xa2, 0x01, 0x05, 0x02, 0x06}, true, false, true},
		{"duplicate key", []byte{0xa2, 0x01, 0x05, 0x01, 0x06}, false, false, false},
		{"indefinite map", []byte{0xbf, 0x01, 0x05, 0xff}, false, false, false},
		{"tag", []byte{0xa1, 0x01, 0xc1, 0x05}, false, false, true},
		{"17 pairs", pairs, false, false, true},
		{"5 levels", []byte{0xa1, 0x01, 0x81, 0x81, 0x81, 0x81, 0x00}, false, false, false}, // trusted: not an int
		{"5 levels, skipped", []byte{0xa1, 0x02, 0x81, 0x81, 0x81, 0x81, 0x00}, false, false, true},
	} {
		for i, d := range []struct {
			dm   cbor.DecMode
			want bool
		}{{Untrusted(l), c.loose}, {Untrusted(strict), c.strict}, {Trusted(), c.trusted}} {
			var v s
			if err := d.dm.Unmarshal(c.in, &v); (err == nil) != d.want {
				t.Errorf("%s, decoder %d: %v (want accepted %v)", c.name, i, err, d.want)
			}
		}
	}
	var text struct {
		S string `cbor:"1,keyasint"`
	}
	if err := Untrusted(l).Unmarshal([]byte{0xa1, 0x01, 0x41, 'x'}, &text); err == nil {
		t.Error("byte string decoded into a string field")
	}
	if err := Untrusted(l).Unmarshal([]byte{0xa1, 0x01, 0x62, 0xc3, 0x28}, &text); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}
