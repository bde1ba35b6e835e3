// Package seal encrypts record payloads at rest, envelope style.
//
// A random 256-bit data key (DEK) seals every payload with
// XChaCha20-Poly1305; its random 24-byte nonces are safe to draw without a
// counter, which matters on a laptop whose state may be restored from an
// old copy. The associated data binds each ciphertext to where it belongs
// (table and record id), so a ciphertext copied into another row fails to
// open instead of silently showing someone else's data.
//
// The DEK itself is stored only wrapped in key slots (see slot.go), so that
// a passphrase can change without re-encrypting the database.
package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of a data key in bytes.
const KeySize = chacha20poly1305.KeySize

// Overhead is what sealing adds to a plaintext: nonce and tag.
const Overhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// ErrOpen is returned when a ciphertext does not authenticate: wrong key,
// corrupted bytes, or a ciphertext that belongs to another row.
var ErrOpen = errors.New("ciphertext does not authenticate (corrupted, or moved from another record)")

// ErrWiped is returned when a wiped (locked) key is used.
var ErrWiped = errors.New("data key is locked")

// Key is a data key held in memory only while the store is unlocked.
// Wipe zeroes it; the AEAD is built per call from the key bytes so that no
// copy of the key outlives Wipe in a cached cipher.
type Key struct {
	mu    sync.RWMutex
	b     [KeySize]byte
	wiped bool
}

// NewKey returns a random data key.
func NewKey() (*Key, error) {
	k := &Key{}
	if _, err := rand.Read(k.b[:]); err != nil {
		return nil, fmt.Errorf("seal: drawing a data key: %w", err)
	}
	return k, nil
}

// KeyFrom copies raw bytes into a Key. The caller should wipe b.
func KeyFrom(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("seal: key has %d bytes, want %d", len(b), KeySize)
	}
	k := &Key{}
	copy(k.b[:], b)
	return k, nil
}

// nonceSource is where nonces come from: the operating system's CSPRNG.
// XChaCha20's 24-byte random nonces make a collision negligible over any
// store's lifetime; a repeated nonce would reveal the XOR of two
// plaintexts. A variable only so that a test can prove the nonces are
// read from it.
var nonceSource io.Reader = rand.Reader

// Seal appends nonce‖ciphertext‖tag of plaintext, bound to ad, to dst.
func (k *Key) Seal(dst, plaintext, ad []byte) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.wiped {
		return nil, ErrWiped
	}
	aead, err := chacha20poly1305.NewX(k.b[:])
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	n := len(dst)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	nonce := dst[n:]
	if _, err := io.ReadFull(nonceSource, nonce); err != nil {
		return nil, fmt.Errorf("seal: drawing a nonce: %w", err)
	}
	return aead.Seal(dst, nonce, plaintext, ad), nil
}

// Open authenticates and decrypts sealed (as made by Seal with the same
// ad), appending the plaintext to dst.
func (k *Key) Open(dst, sealed, ad []byte) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.wiped {
		return nil, ErrWiped
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("seal: %d bytes is too short: %w", len(sealed), ErrOpen)
	}
	aead, err := chacha20poly1305.NewX(k.b[:])
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	ns := chacha20poly1305.NonceSizeX
	out, err := aead.Open(dst, sealed[:ns], sealed[ns:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Wipe zeroes the key; later Seal and Open return ErrWiped.
func (k *Key) Wipe() {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.b[:])
	k.wiped = true
}

// Wiped reports whether the key has been wiped.
func (k *Key) Wiped() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.wiped
}

// bytes exposes the key to the slot wrapper in this package only.
func (k *Key) bytes() []byte { return k.b[:] }
