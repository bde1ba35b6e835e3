package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"numeribus/internal/apperr"
)

// Slot kinds.
const (
	SlotPassphrase = "passphrase"
	SlotRecovery   = "recovery"
)

// KDFParams are the Argon2id costs of one slot. They are stored with the
// slot so that defaults can rise with hardware without locking out old
// stores.
type KDFParams struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultParams cost about 90 ms on the 2-core reference machine
// (shared/TECH-NOTES.md): slow for a guesser, quick for a mediator.
var DefaultParams = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}

// RecoveryParams are cheaper: a recovery code carries 160 random bits, so
// stretching it adds nothing against guessing.
var RecoveryParams = KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

// Slot is the data key wrapped by a key derived from one secret.
type Slot struct {
	Kind    string
	Salt    []byte
	Params  KDFParams
	Wrapped []byte // XChaCha20-Poly1305 of the DEK, ad = "numeribus-keyslot:"+Kind
}

// ErrWrongSecret is returned when a secret does not unwrap a slot.
var ErrWrongSecret = apperr.New(apperr.Auth, "wrong passphrase or recovery code")

func (s *Slot) kek(secret []byte) []byte {
	p := s.Params
	prefault(int(p.MemoryKiB) << 10)
	defer collect()
	return argon2.IDKey(secret, s.Salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
}

func slotAD(kind string) []byte { return []byte("numeribus-keyslot:" + kind) }

// Wrap makes a slot holding dek under secret.
func Wrap(dek *Key, secret []byte, kind string, p KDFParams) (Slot, error) {
	if len(secret) == 0 {
		return Slot{}, errors.New("seal: empty secret")
	}
	s := Slot{Kind: kind, Params: p, Salt: make([]byte, 16)}
	if _, err := rand.Read(s.Salt); err != nil {
		return Slot{}, fmt.Errorf("seal: drawing a salt: %w", err)
	}
	kek := s.kek(secret)
	defer clear(kek)
	k, err := KeyFrom(kek)
	if err != nil {
		return Slot{}, err
	}
	defer k.Wipe()
	dek.mu.RLock()
	defer dek.mu.RUnlock()
	if dek.wiped {
		return Slot{}, ErrWiped
	}
	w, err := k.Seal(nil, dek.bytes(), slotAD(kind))
	if err != nil {
		return Slot{}, err
	}
	s.Wrapped = w
	return s, nil
}

// Unwrap derives the slot key from secret and returns the data key, or
// ErrWrongSecret.
func (s *Slot) Unwrap(secret []byte) (*Key, error) {
	if s.Params.Time == 0 || s.Params.MemoryKiB == 0 || s.Params.Threads == 0 {
		return nil, fmt.Errorf("seal: key slot has invalid parameters %+v", s.Params)
	}
	kek := s.kek(secret)
	defer clear(kek)
	k, err := KeyFrom(kek)
	if err != nil {
		return nil, err
	}
	defer k.Wipe()
	raw, err := k.Open(nil, s.Wrapped, slotAD(s.Kind))
	if err != nil {
		return nil, ErrWrongSecret
	}
	defer clear(raw)
	return KeyFrom(raw)
}

// crockford is Crockford's base32 alphabet: no I, L, O, U, so a code read
// aloud or copied from paper is hard to get wrong.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewRecoveryCode returns 160 random bits as 8 groups of 4 characters,
// e.g. "7K2D-QX9M-…", to be printed once and kept on paper.
func NewRecoveryCode() (string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("seal: drawing a recovery code: %w", err)
	}
	var sb strings.Builder
	var acc, bits uint
	n := 0
	for _, c := range b {
		acc = acc<<8 | uint(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			if n > 0 && n%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(crockford[(acc>>bits)&31])
			n++
		}
	}
	return sb.String(), nil
}

// NormalizeRecoveryCode folds a typed recovery code to its canonical form
// (upper case, dashes and spaces removed, O→0, I/L→1) and reports whether
// it has the shape of one. The canonical form is what slots are wrapped
// with.
func NormalizeRecoveryCode(s string) (string, bool) {
	var sb strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if !strings.ContainsRune(crockford, r) {
			return "", false
		}
		sb.WriteRune(r)
	}
	if sb.Len() != 32 {
		return "", false
	}
	return sb.String(), true
}
