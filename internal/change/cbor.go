package change

import (
	"encoding/binary"
	"errors"
	"slices"

	"numeribus/internal/cborx"
)

// A few hand-written CBOR routines for the hot paths (every record saved,
// every change applied): they produce exactly what Core Deterministic
// Encoding produces, without reflection, with the heads of
// internal/cborx. They read only bytes this package's encoder wrote;
// untrusted input goes through internal/wire.

// head reads the head at b[i]: its argument and where the content starts.
func head(b []byte, i int) (uint64, int, error) {
	if i >= len(b) {
		return 0, 0, errShort
	}
	switch ai := b[i] & 0x1f; {
	case ai < 24:
		return uint64(ai), i + 1, nil
	case ai == 24 && i+2 <= len(b):
		return uint64(b[i+1]), i + 2, nil
	case ai == 25 && i+3 <= len(b):
		return uint64(binary.BigEndian.Uint16(b[i+1:])), i + 3, nil
	case ai == 26 && i+5 <= len(b):
		return uint64(binary.BigEndian.Uint32(b[i+1:])), i + 5, nil
	case ai == 27 && i+9 <= len(b):
		return binary.BigEndian.Uint64(b[i+1:]), i + 9, nil
	}
	return 0, 0, errShort
}

var errShort = errors.New("cbor: truncated or indefinite item")

// skip returns where the definite-length item at b[i] ends.
func skip(b []byte, i int, depth int) (int, error) {
	if depth > 32 {
		return 0, errors.New("cbor: nested too deep")
	}
	if i >= len(b) {
		return 0, errShort
	}
	major := b[i] >> 5
	arg, j, err := head(b, i)
	if err != nil {
		return 0, err
	}
	switch major {
	case 2, 3:
		if arg > uint64(len(b)-j) {
			return 0, errShort
		}
		return j + int(arg), nil
	case 4, 5:
		n := arg
		if major == 5 {
			n *= 2
		}
		if n > uint64(len(b)) {
			return 0, errShort
		}
		for range n {
			if j, err = skip(b, j, depth+1); err != nil {
				return 0, err
			}
		}
		return j, nil
	case 6:
		return skip(b, j, depth+1)
	}
	return j, nil
}

// splitMap splits an encoded map with unsigned integer keys into its
// entries (values are sub-slices of b), leaving out key skip.
func splitMap(b []byte, skipKey uint64) (Fields, error) {
	if len(b) == 0 || b[0]>>5 != 5 {
		return nil, errors.New("cbor: not a map")
	}
	n, i, err := head(b, 0)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b)) {
		return nil, errShort
	}
	f := make(Fields, n)
	for range n {
		if i >= len(b) || b[i]>>5 != 0 {
			return nil, errors.New("cbor: map key is not an unsigned integer")
		}
		var k uint64
		if k, i, err = head(b, i); err != nil {
			return nil, err
		}
		j, err := skip(b, i, 0)
		if err != nil {
			return nil, err
		}
		if k != skipKey {
			f[k] = b[i:j:j]
		}
		i = j
	}
	return f, nil
}

// Encode returns the deterministic CBOR encoding of f: keys in
// increasing order, values as they are.
func (f Fields) Encode() []byte {
	return f.AppendEncode(nil)
}

// AppendEncode appends the encoding of f to b.
func (f Fields) AppendEncode(b []byte) []byte {
	var buf [32]uint64
	keys := buf[:0]
	size := cborx.HeadSize(uint64(len(f)))
	for k, v := range f {
		keys = append(keys, k)
		size += cborx.HeadSize(k) + len(v)
	}
	slices.Sort(keys)
	b = slices.Grow(b, size)
	b = cborx.AppendHead(b, cborx.Map, uint64(len(keys)))
	for _, k := range keys {
		b = cborx.AppendHead(b, cborx.Uint, k)
		b = append(b, f[k]...)
	}
	return b
}

// MapValue returns the value of key in the encoded map b with unsigned
// integer keys — a sub-slice of b, nil when b has no such key — without
// decoding the other entries: indexes read a field or two of every record.
func MapValue(b []byte, key uint64) ([]byte, error) {
	var out [1][]byte
	err := MapValues(b, []uint64{key}, out[:])
	return out[0], err
}

// MapValues is MapValue for several keys in one pass over b: out[i] is the
// value of keys[i], or nil.
func MapValues(b []byte, keys []uint64, out [][]byte) error {
	clear(out)
	if len(b) == 0 || b[0]>>5 != 5 {
		return errors.New("cbor: not a map")
	}
	n, i, err := head(b, 0)
	if err != nil {
		return err
	}
	if n > uint64(len(b)) {
		return errShort
	}
	for range n {
		if i >= len(b) || b[i]>>5 != 0 {
			return errors.New("cbor: map key is not an unsigned integer")
		}
		var k uint64
		if k, i, err = head(b, i); err != nil {
			return err
		}
		j, err := skip(b, i, 0)
		if err != nil {
			return err
		}
		if x := slices.Index(keys, k); x >= 0 {
			out[x] = b[i:j:j]
		}
		i = j
	}
	return nil
}

// Bytes returns the content of v, an encoded definite-length byte string
// (a sub-slice of v), or ok false when v is anything else.
func Bytes(v []byte) (s []byte, ok bool) {
	if len(v) == 0 || v[0]>>5 != 2 {
		return nil, false
	}
	n, i, err := head(v, 0)
	if err != nil || n != uint64(len(v)-i) {
		return nil, false
	}
	return v[i:len(v):len(v)], true
}

// Text returns the bytes of v, an encoded definite-length text string (a
// sub-slice of v, not a copy), or ok false when v is anything else.
func Text(v []byte) (s []byte, ok bool) {
	if len(v) == 0 || v[0]>>5 != 3 {
		return nil, false
	}
	n, i, err := head(v, 0)
	if err != nil || n != uint64(len(v)-i) {
		return nil, false
	}
	return v[i:len(v):len(v)], true
}

// Uint returns the value of v, an encoded unsigned integer.
func Uint(v []byte) (uint64, bool) {
	if len(v) == 0 || v[0]>>5 != 0 {
		return 0, false
	}
	n, i, err := head(v, 0)
	return n, err == nil && i == len(v)
}

// AppendMapKeys appends the unsigned integer keys of the encoded map b to
// keys, in the order b holds them, without decoding the values.
func AppendMapKeys(keys []uint64, b []byte) ([]uint64, error) {
	if len(b) == 0 || b[0]>>5 != 5 {
		return keys, errors.New("cbor: not a map")
	}
	n, i, err := head(b, 0)
	if err != nil {
		return keys, err
	}
	if n > uint64(len(b)) {
		return keys, errShort
	}
	for range n {
		if i >= len(b) || b[i]>>5 != 0 {
			return keys, errors.New("cbor: map key is not an unsigned integer")
		}
		var k uint64
		if k, i, err = head(b, i); err != nil {
			return keys, err
		}
		if i, err = skip(b, i, 0); err != nil {
			return keys, err
		}
		keys = append(keys, k)
	}
	if i != len(b) {
		return keys, errors.New("cbor: bytes after the map")
	}
	return keys, nil
}
