package seal

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Envelopes let the agent seal outbox bodies to the hub's X25519 public
// key at write time, so that a locked agent — whose data key is not in
// memory — can still send pending changes without ever holding them in
// clear: the hub alone can open them.
//
// One ephemeral key pair per envelope; the ephemeral private key is
// dropped as soon as the symmetric key is derived, so the agent itself can
// no longer open what it sealed (it keeps its own copy under the data key).

// EnvelopeKeySize is the size of X25519 public keys.
const EnvelopeKeySize = 32

// Envelope is a symmetric key derived for the hub, with the ephemeral
// public key the hub needs to derive it too.
type Envelope struct {
	EPK []byte // ephemeral X25519 public key
	Key *Key
}

// Purposes of envelopes: the HKDF info of the derived key, so that an
// envelope made for one use never opens as another's.
const (
	// PurposeOutbox: outbox bodies sealed to the hub, and the agent's
	// drafts sealed to its own key.
	PurposeOutbox = "numeribus-outbox-envelope-v1"
	// PurposeBundle: a bundle carried on a USB stick (internal/bundle).
	PurposeBundle = "numeribus-bundle-envelope-v1"
)

func deriveEnvelope(shared, epk, hubPub []byte, purpose string) (*Key, error) {
	salt := make([]byte, 0, 64)
	salt = append(append(salt, epk...), hubPub...)
	k, err := hkdf.Key(sha256.New, shared, salt, purpose, KeySize)
	if err != nil {
		return nil, fmt.Errorf("seal: deriving envelope key: %w", err)
	}
	defer clear(k)
	return KeyFrom(k)
}

// NewEnvelope makes an envelope for the hub public key hubPub.
func NewEnvelope(hubPub []byte) (*Envelope, error) { return NewEnvelopeFor(hubPub, PurposeOutbox) }

// NewEnvelopeFor makes an envelope for the X25519 public key hubPub, for
// purpose (PurposeOutbox, PurposeBundle).
func NewEnvelopeFor(hubPub []byte, purpose string) (*Envelope, error) {
	pub, err := ecdh.X25519().NewPublicKey(hubPub)
	if err != nil {
		return nil, fmt.Errorf("seal: hub key: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: ephemeral key: %w", err)
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("seal: key agreement: %w", err)
	}
	defer clear(shared)
	epk := eph.PublicKey().Bytes()
	k, err := deriveEnvelope(shared, epk, hubPub, purpose)
	if err != nil {
		return nil, err
	}
	return &Envelope{EPK: epk, Key: k}, nil
}

// HubKey is an X25519 key pair: the hub's, the agent's for its drafts, or
// a device's derived from its Ed25519 key (FromEd25519, for bundles).
type HubKey struct{ priv *ecdh.PrivateKey }

// NewHubKey draws a hub key.
func NewHubKey() (*HubKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: hub key: %w", err)
	}
	return &HubKey{k}, nil
}

// HubKeyFrom loads a hub key from its 32 private bytes.
func HubKeyFrom(b []byte) (*HubKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("seal: hub key: %w", err)
	}
	return &HubKey{k}, nil
}

// Bytes returns the private key bytes, for storing.
func (h *HubKey) Bytes() []byte { return h.priv.Bytes() }

// Public returns the public key agents seal to.
func (h *HubKey) Public() []byte { return h.priv.PublicKey().Bytes() }

// Open derives the symmetric key of the outbox envelope whose ephemeral
// public key is epk.
func (h *HubKey) Open(epk []byte) (*Key, error) { return h.OpenFor(epk, PurposeOutbox) }

// OpenFor derives the symmetric key of the envelope for purpose whose
// ephemeral public key is epk.
func (h *HubKey) OpenFor(epk []byte, purpose string) (*Key, error) {
	pub, err := ecdh.X25519().NewPublicKey(epk)
	if err != nil {
		return nil, fmt.Errorf("seal: envelope key: %w", err)
	}
	shared, err := h.priv.ECDH(pub)
	if err != nil {
		return nil, errors.New("seal: envelope key agreement failed")
	}
	defer clear(shared)
	return deriveEnvelope(shared, epk, h.Public(), purpose)
}

// OutboxAD is the associated data of an outbox body sealed to the hub:
// kind, record id and device sequence number, so a body cannot be passed
// off as another change.
func OutboxAD(kind string, id [16]byte, seq uint64) []byte {
	b := make([]byte, 0, 8+len(kind)+1+16+8)
	b = append(b, "outbox\x00"...)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, id[:]...)
	return binary.BigEndian.AppendUint64(b, seq)
}
