package cborx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A file on a USB stick (internal/bundle) is a CBOR sequence (RFC 8742):
// items one after the other, each a byte string, read one at a time so
// that a file of many megabytes is never held whole. Reading the head of
// a byte string is the one piece of decoding done by hand; what the byte
// string holds is decoded by an Untrusted decoder.

// ErrNotBytes is returned by ReadBytes when the next item is not a byte
// string of definite length.
var ErrNotBytes = errors.New("cbor: byte string expected")

// ErrTooLong is returned by ReadBytes when a byte string is longer than
// allowed.
var ErrTooLong = errors.New("cbor: byte string over the limit")

// ReadBytes reads the next item of a CBOR sequence from r, which must be
// a byte string of definite length of at most max bytes, and returns its
// content and the number of bytes read (head and content). At the end of
// r, before any byte of an item, it returns io.EOF; r ending inside one
// gives io.ErrUnexpectedEOF. The length is checked before anything is
// allocated.
func ReadBytes(r io.Reader, max int) ([]byte, int, error) {
	var h [9]byte
	if _, err := io.ReadFull(r, h[:1]); err != nil {
		return nil, 0, err // io.EOF: no more items
	}
	if h[0]>>5 != Bytes {
		return nil, 1, fmt.Errorf("%w (major type %d)", ErrNotBytes, h[0]>>5)
	}
	var n uint64
	size := 1
	switch ai := h[0] & 0x1f; {
	case ai < 24:
		n = uint64(ai)
	case ai <= 27:
		extra := 1 << (ai - 24) // 1, 2, 4 or 8 bytes
		if _, err := io.ReadFull(r, h[1:1+extra]); err != nil {
			return nil, 1, unexpected(err)
		}
		size += extra
		var b [8]byte
		copy(b[8-extra:], h[1:1+extra])
		n = binary.BigEndian.Uint64(b[:])
	default:
		return nil, 1, fmt.Errorf("%w (indefinite or reserved length)", ErrNotBytes)
	}
	if n > uint64(max) {
		return nil, size, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, n, max)
	}
	// A length is a claim: memory grows with the bytes really there, so
	// a short file claiming a long item costs no more than its size.
	b := make([]byte, 0, min(n, 1<<20))
	for uint64(len(b)) < n {
		if len(b) == cap(b) {
			b = append(b, make([]byte, min(n-uint64(len(b)), uint64(cap(b))))...)[:len(b)]
		}
		m, err := io.ReadFull(r, b[len(b):min(uint64(cap(b)), n)])
		b = b[:len(b)+m]
		if err != nil {
			return nil, size + len(b), unexpected(err)
		}
	}
	return b, size + int(n), nil
}

// AppendBytes appends the byte string b, as an item of a CBOR sequence.
func AppendBytes(dst, b []byte) []byte {
	return append(AppendHead(dst, Bytes, uint64(len(b))), b...)
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
