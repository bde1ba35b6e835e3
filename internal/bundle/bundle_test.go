package bundle

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"numeribus/internal/apperr"
	"numeribus/internal/seal"
	"numeribus/internal/wire"
)

// fixture is a hub key and a device key, and a bundle of three Push parts
// from the device to the hub.
type fixture struct {
	hub     *seal.HubKey
	devPub  ed25519.PublicKey
	devPriv ed25519.PrivateKey
	frames  [][]byte
	file    []byte
	id      []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	hub, err := seal.NewHubKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	f := &fixture{hub: hub, devPub: pub, devPriv: priv}
	w, err := NewWriter(DeviceChanges, hub.Public())
	if err != nil {
		t.Fatal(err)
	}
	for b := range 3 {
		p := &wire.Push{Batch: uint64(b + 1)}
		for i := range 4 {
			seq := uint64(b*4 + i + 1)
			p.Changes = append(p.Changes, wire.Change{Kind: 1, ID: [16]byte{1, byte(seq)}, Op: 1, HLC: 1 << 20, Seq: seq,
				Fields: wire.RawCBOR([]byte{0xa1, 0x02, 0x63, 'a', 'b', 'c'})})
		}
		frame, err := wire.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		f.frames = append(f.frames, frame)
		if err := w.Add(frame); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	m := Manifest{Device: "0190a1b2-0000-7000-8000-000000000001", Signer: SignerDevice, Created: 1700000000000,
		Hub: hub.Public(), From: 0, To: 12, Cursor: 42, CursorTag: bytes.Repeat([]byte{3}, 16)}
	f.id, err = w.Finish(&buf, m, func(msg []byte) ([]byte, error) { return ed25519.Sign(priv, msg), nil })
	if err != nil {
		t.Fatal(err)
	}
	f.file = buf.Bytes()
	return f
}

// read runs what an importer does: head, recipient, manifest, signature,
// every part checked, then the parts given again.
func (f *fixture) read(file []byte) ([][]byte, *Manifest, error) {
	r, err := Open(bytes.NewReader(file))
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	h := r.Head()
	if !bytes.Equal(h.Recipient, RecipientID(f.hub.Public())) {
		return nil, nil, ErrNotForYou
	}
	key, err := f.hub.OpenFor(h.EPK, seal.PurposeBundle)
	if err != nil {
		return nil, nil, err
	}
	m, err := r.Manifest(key)
	if err != nil {
		return nil, nil, err
	}
	if !ed25519.Verify(f.devPub, r.Signed(), m.Sig) {
		return nil, nil, errors.New("signature")
	}
	if err := r.Check(); err != nil {
		return nil, nil, err
	}
	var out [][]byte
	for {
		fr, err := r.Next()
		if err == io.EOF {
			return out, m, nil
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, fr)
	}
}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t)
	got, m, err := f.read(f.file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(f.frames) {
		t.Fatalf("%d parts, want %d", len(got), len(f.frames))
	}
	for i := range got {
		if !bytes.Equal(got[i], f.frames[i]) {
			t.Fatalf("part %d differs", i)
		}
		if _, err := wire.Decode(got[i]); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	if m.To != 12 || m.Cursor != 42 || m.Device == "" || m.Signer != SignerDevice {
		t.Fatalf("manifest %+v", m)
	}
	r, _ := Open(bytes.NewReader(f.file))
	key, _ := f.hub.OpenFor(r.Head().EPK, seal.PurposeBundle)
	if _, err := r.Manifest(key); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.ID(), f.id) {
		t.Fatal("the reader's ID is not the writer's")
	}
}

// One byte changed anywhere in the file — head, manifest, any part, any
// length — and the bundle is refused before anything is given to apply.
func TestEveryByteMatters(t *testing.T) {
	f := newFixture(t)
	for i := range f.file {
		bad := bytes.Clone(f.file)
		bad[i] ^= 0x01
		if _, _, err := f.read(bad); err == nil {
			t.Fatalf("byte %d of %d changed: bundle taken", i, len(f.file))
		}
	}
}

func TestRefused(t *testing.T) {
	f := newFixture(t)
	other, _ := seal.NewHubKey()
	parts := splitItems(t, f.file)
	for _, tc := range []struct {
		name string
		file []byte
		read func([]byte) error
		want error
	}{
		{"cut in the last part", f.file[:len(f.file)-10], nil, ErrTampered},
		{"last part missing", join(parts[:len(parts)-1]), nil, ErrTampered},
		{"bytes after the end", append(bytes.Clone(f.file), 0x40), nil, ErrTampered},
		{"two parts swapped", join(append(parts[:2:2], parts[3], parts[2], parts[4])), nil, ErrTampered},
		{"a part of another bundle", join(append(parts[:4:4], splitItems(t, newFixture(t).file)[4])), nil, ErrTampered},
		{"empty file", nil, nil, ErrNotOurs},
		{"text file", []byte("prenom;nom\nJeanne;Martin\n"), nil, ErrNotOurs},
		{"another hub's", f.file, func(b []byte) error {
			r, err := Open(bytes.NewReader(b))
			if err != nil {
				return err
			}
			if !bytes.Equal(r.Head().Recipient, RecipientID(other.Public())) {
				return ErrNotForYou
			}
			return nil
		}, ErrNotForYou},
		{"opened with another key", f.file, func(b []byte) error {
			r, err := Open(bytes.NewReader(b))
			if err != nil {
				return err
			}
			key, _ := other.OpenFor(r.Head().EPK, seal.PurposeBundle)
			_, err = r.Manifest(key)
			return err
		}, ErrTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := tc.read
			if read == nil {
				read = func(b []byte) error { _, _, err := f.read(b); return err }
			}
			err := read(tc.file)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("code %s, want invalid", apperr.CodeOf(err))
			}
		})
	}
}

// A forged manifest — sealed to the hub, which anyone can do, but signed
// by another key — fails the signature check the importer makes.
func TestForgedSignature(t *testing.T) {
	f := newFixture(t)
	_, thief, _ := ed25519.GenerateKey(rand.Reader)
	w, _ := NewWriter(DeviceChanges, f.hub.Public())
	w.Add(f.frames[0])
	var buf bytes.Buffer
	m := Manifest{Device: "0190a1b2-0000-7000-8000-000000000001", Signer: SignerDevice, Hub: f.hub.Public(), To: 4}
	if _, err := w.Finish(&buf, m, func(msg []byte) ([]byte, error) { return ed25519.Sign(thief, msg), nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.read(buf.Bytes()); err == nil || err.Error() != "signature" {
		t.Fatalf("forged bundle: %v", err)
	}
}

// The file may change between Check and the reading that applies: each
// part is checked again against the signed manifest.
func TestChangedBetweenCheckAndApply(t *testing.T) {
	f := newFixture(t)
	src := &swappable{b: bytes.Clone(f.file)}
	r, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := f.hub.OpenFor(r.Head().EPK, seal.PurposeBundle)
	if _, err := r.Manifest(key); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	src.b[len(src.b)-5] ^= 1 // in the last part
	var err2 error
	for err2 == nil {
		_, err2 = r.Next()
	}
	if !errors.Is(err2, ErrTampered) {
		t.Fatalf("got %v, want ErrTampered", err2)
	}
}

func TestReceipt(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub := priv.Public().(ed25519.PublicKey)
	rc := Receipt{Device: "0190a1b2-0000-7000-8000-000000000001", Bundle: bytes.Repeat([]byte{9}, 32), HWM: 12,
		Tag: bytes.Repeat([]byte{4}, 16), Applied: 11, Created: 1700000000000, Cert: []byte("certificat"),
		Rejected: []wire.Rejection{{Seq: 5, Code: wire.CodeNoConsent, Reason: "identifying fields (nom) without an active consent"}}}
	var buf bytes.Buffer
	if err := WriteReceipt(&buf, rc, func(msg []byte) ([]byte, error) { return ed25519.Sign(priv, msg), nil }); err != nil {
		t.Fatal(err)
	}
	got, msg, err := ReadReceipt(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, msg, got.Sig) {
		t.Fatal("receipt signature does not verify")
	}
	if got.HWM != 12 || len(got.Rejected) != 1 || got.Rejected[0].Code != wire.CodeNoConsent {
		t.Fatalf("receipt %+v", got)
	}
	for i := range buf.Len() {
		bad := bytes.Clone(buf.Bytes())
		bad[i] ^= 0x01
		got, msg, err := ReadReceipt(bytes.NewReader(bad))
		if err == nil && ed25519.Verify(pub, msg, got.Sig) {
			t.Fatalf("byte %d changed: receipt taken", i)
		}
	}
	// A bundle given as a receipt, and the reverse.
	f := newFixture(t)
	if _, _, err := ReadReceipt(bytes.NewReader(f.file)); !errors.Is(err, ErrIsBundle) {
		t.Errorf("bundle read as a receipt: %v", err)
	}
	if _, err := Open(bytes.NewReader(buf.Bytes())); !errors.Is(err, ErrIsReceipt) {
		t.Errorf("receipt opened as a bundle: %v", err)
	}
}

// The writers refuse what readers would: a receipt listing a refusal
// beyond its mark is a bug at the hub, caught before the file is written.
func TestWriterChecks(t *testing.T) {
	sign := func(msg []byte) ([]byte, error) { return []byte("s"), nil }
	rc := Receipt{Device: "d", Bundle: make([]byte, 32), HWM: 3, Tag: make([]byte, 16), Cert: []byte("c"),
		Rejected: []wire.Rejection{{Seq: 4, Code: wire.CodeInvalid}}}
	if err := WriteReceipt(io.Discard, rc, sign); err == nil {
		t.Error("receipt with a refusal beyond its mark written")
	}
	hub, _ := seal.NewHubKey()
	w, _ := NewWriter(TeamChanges, hub.Public())
	if _, err := w.Finish(io.Discard, Manifest{Device: "d", Signer: SignerDevice, Hub: []byte("cert")}, sign); err == nil {
		t.Error("team bundle signed by a device written")
	}
}

// splitItems cuts a file into its items (head, manifest, parts).
func splitItems(t *testing.T, b []byte) [][]byte {
	t.Helper()
	in := &counter{r: bufioReader(b)}
	var out [][]byte
	for {
		start := in.n
		_, err := in.item(maxPart)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[start:in.n])
	}
}

func join(items [][]byte) []byte { return bytes.Join(items, nil) }

// swappable is a file whose bytes a test changes while it is read.
type swappable struct {
	b   []byte
	off int64
}

func (s *swappable) Read(p []byte) (int, error) {
	if s.off >= int64(len(s.b)) {
		return 0, io.EOF
	}
	n := copy(p, s.b[s.off:])
	s.off += int64(n)
	return n, nil
}

func (s *swappable) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart {
		return 0, fmt.Errorf("whence %d", whence)
	}
	s.off = off
	return off, nil
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

var update = flag.Bool("update", false, "rewrite the golden receipt in testdata/")

// A receipt is deterministic (Ed25519 signs deterministically): its bytes
// are kept in testdata/, so that a key changed by accident in a struct
// tag shows here, against schema/bundle.cddl.
func TestGoldenReceipt(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	rc := Receipt{Device: "0190a1b2-0000-7000-8000-000000000001", Bundle: bytes.Repeat([]byte{9}, 32), HWM: 12,
		Tag: bytes.Repeat([]byte{4}, 16), Applied: 11, Created: 1700000000000, Cert: []byte("certificat"),
		Rejected: []wire.Rejection{{Seq: 5, Code: wire.CodeClockAhead, Reason: "stamped ahead", Ahead: 90000}}}
	var buf bytes.Buffer
	if err := WriteReceipt(&buf, rc, func(msg []byte) ([]byte, error) { return ed25519.Sign(priv, msg), nil }); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "receipt.cbor")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("the receipt's encoding changed:\n got %x\nwant %x\n(if intended, bump bundle.Version, update schema/bundle.cddl and run go test -update)", buf.Bytes(), want)
	}
}
