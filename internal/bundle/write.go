package bundle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"numeribus/internal/cborx"
	"numeribus/internal/seal"
	"numeribus/internal/wire"
)

// Writer makes a bundle: Add seals each part as it comes; Finish writes
// the head, the signed manifest and the parts. The sealed parts wait in
// memory, as the manifest that lists them comes first.
type Writer struct {
	kind   Kind
	head   []byte
	key    *seal.Key
	parts  [][]byte
	hashes [][]byte
}

// NewWriter starts a bundle of kind k sealed to the X25519 public key
// recipient.
func NewWriter(k Kind, recipient []byte) (*Writer, error) {
	if k != DeviceChanges && k != TeamChanges {
		return nil, fmt.Errorf("bundle: kind %d is not a bundle", k)
	}
	env, err := seal.NewEnvelopeFor(recipient, seal.PurposeBundle)
	if err != nil {
		return nil, err
	}
	head, err := encMode.Marshal(Head{Magic: Magic, Version: Version, Kind: k, Recipient: RecipientID(recipient), EPK: env.EPK})
	if err != nil {
		return nil, err
	}
	return &Writer{kind: k, head: head, key: env.Key}, nil
}

// Add seals one part: a frame of the sync protocol (wire.Encode), a Push
// in a DeviceChanges bundle, a Changes page in a TeamChanges one.
func (w *Writer) Add(frame []byte) error {
	if len(w.parts) == MaxParts {
		return fmt.Errorf("bundle: more than %d parts", MaxParts)
	}
	if len(frame) > wire.MaxFrame {
		return fmt.Errorf("bundle: a part of %d bytes, at most %d", len(frame), wire.MaxFrame)
	}
	sealed, err := w.key.Seal(nil, frame, ad(w.head, uint64(len(w.parts)+1)))
	if err != nil {
		return err
	}
	h := sha256.Sum256(frame)
	w.parts = append(w.parts, sealed)
	w.hashes = append(w.hashes, h[:])
	return nil
}

// Parts returns how many parts were added.
func (w *Writer) Parts() int { return len(w.parts) }

// Finish completes m with the parts' hashes, has sign sign it (the
// message covers the head, so the signature holds for this envelope
// only), and writes the bundle to dst. It returns the bundle's ID.
func (w *Writer) Finish(dst io.Writer, m Manifest, sign func(msg []byte) ([]byte, error)) ([]byte, error) {
	if w.key == nil {
		return nil, errors.New("bundle: finished already")
	}
	defer func() { w.key.Wipe(); w.key = nil }()
	m.Parts, m.Sig = w.hashes, nil
	msg, err := signedMessage(manifestContext, w.head, &m)
	if err != nil {
		return nil, err
	}
	if m.Sig, err = sign(msg); err != nil {
		return nil, fmt.Errorf("signing the bundle: %w", err)
	}
	if err := m.check(w.kind); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	body, err := encMode.Marshal(&m)
	if err != nil {
		return nil, err
	}
	sealed, err := w.key.Seal(nil, body, ad(w.head, 0))
	if err != nil {
		return nil, err
	}
	out := cborx.AppendBytes(nil, w.head)
	out = cborx.AppendBytes(out, sealed)
	if _, err := dst.Write(out); err != nil {
		return nil, err
	}
	for _, p := range w.parts {
		if _, err := dst.Write(cborx.AppendBytes(nil, p)); err != nil {
			return nil, err
		}
	}
	return id(msg), nil
}

// id is a bundle's ID: the SHA-256 of its signed message.
func id(msg []byte) []byte {
	s := sha256.Sum256(msg)
	return s[:]
}

// WriteReceipt signs r with sign and writes it to dst.
func WriteReceipt(dst io.Writer, r Receipt, sign func(msg []byte) ([]byte, error)) error {
	head, err := encMode.Marshal(Head{Magic: Magic, Version: Version, Kind: ReceiptFile})
	if err != nil {
		return err
	}
	r.Sig = nil
	msg, err := signedMessage(receiptContext, head, &r)
	if err != nil {
		return err
	}
	if r.Sig, err = sign(msg); err != nil {
		return fmt.Errorf("signing the receipt: %w", err)
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	body, err := encMode.Marshal(&r)
	if err != nil {
		return err
	}
	_, err = dst.Write(cborx.AppendBytes(cborx.AppendBytes(nil, head), body))
	return err
}
