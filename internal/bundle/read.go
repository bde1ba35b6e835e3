package bundle

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"numeribus/internal/cborx"
	"numeribus/internal/seal"
)

// counter reads the items of a file and counts the bytes they took.
type counter struct {
	r *bufio.Reader
	n int64
}

func (c *counter) item(max int) ([]byte, error) {
	b, n, err := cborx.ReadBytes(c.r, max)
	c.n += int64(n)
	return b, err
}

// Reader reads a bundle: Open reads its head, which names the key it is
// sealed to; Manifest opens the manifest with that key; the caller then
// verifies the signature (Signed, Manifest.Sig) against the key the
// manifest's signer should have; Check reads every part once; Next gives
// them again, in order, for applying.
type Reader struct {
	src     io.ReadSeeker
	in      *counter
	head    Head
	raw     []byte // the head as written
	key     *seal.Key
	m       *Manifest
	msg     []byte
	partsAt int64 // offset of the first part
	next    int   // index of the next part Next gives
	checked bool
}

// Open reads the head of the bundle in src.
func Open(src io.ReadSeeker) (*Reader, error) {
	in := &counter{r: bufio.NewReaderSize(src, 64<<10)}
	h, raw, err := readHead(in)
	if err != nil {
		return nil, err
	}
	if h.Kind == ReceiptFile {
		return nil, ErrIsReceipt
	}
	return &Reader{src: src, in: in, head: h, raw: raw}, nil
}

// Head returns the head: the kind of bundle, the id of its recipient and
// the ephemeral key to derive the bundle's key from
// (seal.HubKey.OpenFor(Head.EPK, seal.PurposeBundle)).
func (r *Reader) Head() Head { return r.head }

// Manifest opens the manifest with key and checks its form. Its
// signature is the caller's to verify, over Signed.
func (r *Reader) Manifest(key *seal.Key) (*Manifest, error) {
	if r.m != nil {
		return r.m, nil
	}
	sealed, err := r.in.item(maxManifest)
	if err != nil {
		return nil, fmt.Errorf("%w (manifeste : %v)", ErrTampered, err)
	}
	body, err := key.Open(nil, sealed, ad(r.raw, 0))
	if err != nil {
		return nil, ErrTampered
	}
	var m Manifest
	if err := manifestDM.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w (manifeste illisible : %v)", ErrTampered, err)
	}
	if err := m.check(r.head.Kind); err != nil {
		return nil, fmt.Errorf("%w (manifeste : %v)", ErrTampered, err)
	}
	sig := m.Sig
	m.Sig = nil
	if r.msg, err = signedMessage(manifestContext, r.raw, &m); err != nil {
		return nil, err
	}
	m.Sig = sig
	r.key, r.m, r.partsAt = key, &m, r.in.n
	return r.m, nil
}

// Signed returns the message the manifest's signature covers.
func (r *Reader) Signed() []byte { return r.msg }

// ID returns the bundle's ID: the SHA-256 of its signed message, the same
// for every copy of the file.
func (r *Reader) ID() []byte { return id(r.msg) }

// Check reads every part once: each must open with the bundle's key at
// its place and match its hash in the manifest, none may be missing and
// nothing may follow the last. Then Next reads them again from the first.
func (r *Reader) Check() error {
	if r.m == nil {
		return errors.New("bundle: Check before Manifest")
	}
	for i := range r.m.Parts {
		if _, err := r.part(i); err != nil {
			return err
		}
	}
	if _, err := r.in.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w (des octets suivent la dernière partie)", ErrTampered)
	}
	if err := r.rewind(); err != nil {
		return err
	}
	r.checked = true
	return nil
}

// Rewind makes Next start again from the first part.
func (r *Reader) Rewind() error {
	if !r.checked {
		return errors.New("bundle: Rewind before Check")
	}
	return r.rewind()
}

func (r *Reader) rewind() error {
	if _, err := r.src.Seek(r.partsAt, io.SeekStart); err != nil {
		return fmt.Errorf("reading the bundle again: %w", err)
	}
	r.in = &counter{r: bufio.NewReaderSize(r.src, 64<<10), n: r.partsAt}
	r.next = 0
	return nil
}

// part reads part i (from 0), at the reader's position.
func (r *Reader) part(i int) ([]byte, error) {
	sealed, err := r.in.item(maxPart)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w (partie %d sur %d manquante)", ErrTampered, i+1, len(r.m.Parts))
	}
	if err != nil {
		return nil, fmt.Errorf("%w (partie %d : %v)", ErrTampered, i+1, err)
	}
	frame, err := r.key.Open(nil, sealed, ad(r.raw, uint64(i+1)))
	if err != nil {
		return nil, fmt.Errorf("%w (partie %d)", ErrTampered, i+1)
	}
	if h := sha256.Sum256(frame); !sameBytes(h[:], r.m.Parts[i]) {
		return nil, fmt.Errorf("%w (partie %d différente de celle signée)", ErrTampered, i+1)
	}
	return frame, nil
}

// Next returns the next part's frame, checked again against the signed
// manifest (the file may have changed since Check), or io.EOF after the
// last.
func (r *Reader) Next() ([]byte, error) {
	if !r.checked {
		return nil, errors.New("bundle: Next before Check")
	}
	if r.next == len(r.m.Parts) {
		return nil, io.EOF
	}
	f, err := r.part(r.next)
	if err != nil {
		return nil, err
	}
	r.next++
	return f, nil
}

// Close wipes the bundle's key.
func (r *Reader) Close() {
	if r.key != nil {
		r.key.Wipe()
	}
}

// ReadReceipt reads a receipt from src and returns it with the message its
// signature covers, which the caller verifies against the hub's
// certificate it pinned.
func ReadReceipt(src io.Reader) (*Receipt, []byte, error) {
	in := &counter{r: bufio.NewReader(src)}
	h, raw, err := readHead(in)
	if err != nil {
		return nil, nil, err
	}
	if h.Kind != ReceiptFile {
		return nil, nil, ErrIsBundle
	}
	body, err := in.item(maxReceipt)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%v)", ErrTampered, err)
	}
	if _, err := in.r.ReadByte(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w (des octets suivent le reçu)", ErrTampered)
	}
	var rc Receipt
	if err := receiptDM.Unmarshal(body, &rc); err != nil {
		return nil, nil, fmt.Errorf("%w (reçu illisible : %v)", ErrTampered, err)
	}
	if err := rc.check(); err != nil {
		return nil, nil, fmt.Errorf("%w (reçu : %v)", ErrTampered, err)
	}
	sig := rc.Sig
	rc.Sig = nil
	msg, err := signedMessage(receiptContext, raw, &rc)
	if err != nil {
		return nil, nil, err
	}
	rc.Sig = sig
	return &rc, msg, nil
}
