// Package ident makes record identifiers.
//
// Records are created offline on many laptops and merged at the hub, so
// ids must be unique without coordination: they are UUIDv7 (RFC 9562),
// whose leading 48-bit millisecond timestamp also keeps SQLite's b-trees
// appending rather than splitting pages at random.
package ident

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ID is a 16-byte UUID.
type ID [16]byte

// Nil is the zero ID.
var Nil ID

var (
	mu     sync.Mutex
	lastMs int64
	lastRA uint16
)

// New returns a fresh UUIDv7. Within one millisecond the 12-bit rand_a
// field is a counter (RFC 9562 method 1), so ids made by one process sort
// in creation order.
func New() ID { return NewAt(time.Now()) }

// NewAt returns a UUIDv7 for time t.
func NewAt(t time.Time) ID {
	var id ID
	if _, err := rand.Read(id[6:]); err != nil {
		panic("ident: crypto/rand failed: " + err.Error())
	}
	ms := t.UnixMilli()
	mu.Lock()
	if ms <= lastMs {
		ms = lastMs
		lastRA++
		if lastRA > 0x0fff {
			ms++
			lastRA = 0
		}
	} else {
		lastRA = binary.BigEndian.Uint16(id[6:8]) & 0x07ff // leave room to count
	}
	lastMs = ms
	ra := lastRA
	mu.Unlock()
	putV7(&id, ms, ra)
	return id
}

// Derive returns a deterministic UUIDv7 for time t whose random bits come
// from SHA-256 of the given parts. Importing the same line twice gives the
// same id, which makes imports idempotent without an id in the file.
func Derive(t time.Time, parts ...string) ID {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var id ID
	copy(id[6:], h.Sum(nil))
	putV7(&id, t.UnixMilli(), binary.BigEndian.Uint16(id[6:8]))
	return id
}

// FromRand returns a UUIDv7 for time t taking its random bits from r, for
// reproducible fixtures (same seed, same ids).
func FromRand(t time.Time, r func() uint64) ID {
	var id ID
	binary.BigEndian.PutUint64(id[0:8], r())
	binary.BigEndian.PutUint64(id[8:16], r())
	putV7(&id, t.UnixMilli(), binary.BigEndian.Uint16(id[6:8]))
	return id
}

func putV7(id *ID, ms int64, randA uint16) {
	if ms < 0 {
		ms = 0
	}
	id[0] = byte(ms >> 40)
	id[1] = byte(ms >> 32)
	id[2] = byte(ms >> 24)
	id[3] = byte(ms >> 16)
	id[4] = byte(ms >> 8)
	id[5] = byte(ms)
	id[6] = 0x70 | byte(randA>>8)&0x0f
	id[7] = byte(randA)
	id[8] = 0x80 | id[8]&0x3f
}

// Time returns the millisecond timestamp of a UUIDv7.
func (id ID) Time() time.Time {
	ms := int64(id[0])<<40 | int64(id[1])<<32 | int64(id[2])<<24 | int64(id[3])<<16 | int64(id[4])<<8 | int64(id[5])
	return time.UnixMilli(ms).UTC()
}

// Version returns the UUID version nibble.
func (id ID) Version() int { return int(id[6] >> 4) }

// IsZero reports whether id is Nil.
func (id ID) IsZero() bool { return id == Nil }

// String returns the canonical 8-4-4-4-12 lower-case form.
func (id ID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// ErrSyntax is returned by Parse for text that is not a UUID.
var ErrSyntax = errors.New("not a UUID (expected 8-4-4-4-12 hexadecimal digits)")

// Parse reads the canonical form (case-insensitive). Any UUID version is
// accepted, so ids made by other tools can be imported.
func Parse(s string) (ID, error) {
	var id ID
	s = strings.TrimSpace(s)
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return Nil, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler (JSON uses it).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// MarshalBinary returns the 16 raw bytes (CBOR uses it: 17 bytes on the
// wire instead of 37 for the text form).
func (id ID) MarshalBinary() ([]byte, error) { return id[:], nil }

// UnmarshalBinary reads 16 raw bytes.
func (id *ID) UnmarshalBinary(b []byte) error {
	if len(b) != 16 {
		return fmt.Errorf("ident: binary id has %d bytes, want 16", len(b))
	}
	copy(id[:], b)
	return nil
}
