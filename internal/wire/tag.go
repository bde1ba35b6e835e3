package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"numeribus/internal/ident"
)

// ChangeTag identifies one change of a device: its seq, stamp, record and
// op. Agent and hub compute it from their own copies; equal tags at one
// seq mean both hold the same change there, different tags mean the
// agent's store went back in time and reused the seq for other work.
func ChangeTag(seq, hlc uint64, id ident.ID, op uint8) []byte {
	return tag("numeribus-change-tag-v1", id, seq, hlc, uint64(op))
}

// LogTag identifies one entry of the hub's change log: its hub seq and the
// change it holds. The hub gives it with each page's cursor and checks it
// when the cursor comes back, so an agent whose cursor points past a
// restored hub's log, or at an entry the restored hub now holds for other
// work, is told to start again (Changes.Reset).
func LogTag(hubSeq uint64, device string, seq, hlc uint64, id ident.ID, op uint8) []byte {
	return tag("numeribus-log-tag-v1\x00"+device, id, hubSeq, seq, hlc, uint64(op))
}

func tag(domainSep string, id ident.ID, ns ...uint64) []byte {
	h := sha256.New()
	h.Write([]byte(domainSep))
	h.Write([]byte{0})
	h.Write(id[:])
	var b [8]byte
	for _, n := range ns {
		binary.BigEndian.PutUint64(b[:], n)
		h.Write(b[:])
	}
	return h.Sum(nil)[:TagSize]
}

func checkTag(what string, t []byte) error {
	if len(t) != 0 && len(t) != TagSize {
		return fmt.Errorf("%s of %d bytes, %d expected", what, len(t), TagSize)
	}
	return nil
}
