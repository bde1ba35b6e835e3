package bundle

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"testing"

	"numeribus/internal/seal"
	"numeribus/internal/wire"
)

// FuzzRead feeds the readers any bytes, a bundle and a receipt to start
// from: they refuse or read, never panic, and what they read is within
// their limits.
func FuzzRead(f *testing.F) {
	hub, err := seal.HubKeyFrom(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		f.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))
	w, err := NewWriter(DeviceChanges, hub.Public())
	if err != nil {
		f.Fatal(err)
	}
	frame, err := wire.Encode(&wire.Push{Batch: 1, Changes: []wire.Change{{Kind: 1, ID: [16]byte{1}, Op: 1, HLC: 1 << 20, Seq: 1}}})
	if err != nil {
		f.Fatal(err)
	}
	w.Add(frame)
	var b bytes.Buffer
	sign := func(msg []byte) ([]byte, error) { return ed25519.Sign(priv, msg), nil }
	if _, err := w.Finish(&b, Manifest{Device: "d", Signer: SignerDevice, Hub: hub.Public(), To: 1}, sign); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	var rb bytes.Buffer
	if err := WriteReceipt(&rb, Receipt{Device: "d", Bundle: make([]byte, 32), Cert: []byte("c")}, sign); err != nil {
		f.Fatal(err)
	}
	f.Add(rb.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		if rc, _, err := ReadReceipt(bytes.NewReader(in)); err == nil && len(rc.Rejected) > MaxRejected {
			t.Fatalf("%d refusals", len(rc.Rejected))
		}
		r, err := Open(bytes.NewReader(in))
		if err != nil {
			return
		}
		defer r.Close()
		key, err := hub.OpenFor(r.Head().EPK, seal.PurposeBundle)
		if err != nil {
			return
		}
		m, err := r.Manifest(key)
		if err != nil {
			return
		}
		if len(m.Parts) > MaxParts {
			t.Fatalf("%d parts", len(m.Parts))
		}
		if r.Check() != nil {
			return
		}
		for {
			p, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("a part checked, then refused: %v", err)
			}
			wire.Decode(p)
		}
	})
}
