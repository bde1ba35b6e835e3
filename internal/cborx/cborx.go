// Package cborx holds, in one place, the project's own CBOR (RFC 8949)
// rules: the head of an item, the one primitive of the fast encoders
// (change's field maps, merge's stored states, wire's sizes), each giving
// exactly the bytes of Core Deterministic Encoding, which the tests check
// against the library; and the decoders with their limits, Untrusted for
// bytes from outside (internal/wire, internal/enrollcode) and Trusted for
// the program's own (internal/change).
package cborx

import "encoding/binary"

// Major types.
const (
	Uint  byte = 0
	Bytes byte = 2
	Text  byte = 3
	Array byte = 4
	Map   byte = 5
)

// HeadSize returns the size of the shortest head with argument n: what
// AppendHead writes, without writing it.
func HeadSize(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// AppendHead appends the head of an item of major type major with
// argument n (a length, a count or the value of an unsigned integer), in
// its shortest form as deterministic encoding requires. It repeats the
// bounds of HeadSize rather than calling it, to stay inlined.
func AppendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}
