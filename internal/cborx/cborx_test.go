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
