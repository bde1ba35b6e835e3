// Package wsearly writes websocket frames right behind a client's
// upgrade request, in the same write, before the server has answered:
// the round trip that a sync in three round trips saves (wire.Open,
// docs/PROTOCOL.md). gorilla/websocket's Dialer writes the request and
// waits for the answer; handed a Conn as its connection, it sends the
// request and the frames in one flight without knowing it.
package wsearly

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"sync"
)

// Conn writes Early as client frames right behind the first complete
// HTTP request written to it; everything else passes through.
type Conn struct {
	net.Conn
	Early [][]byte // payloads, each sent as one binary frame

	mu   sync.Mutex
	head []byte // the request, until its end is written
	done bool
	sent int // bytes of the early frames, headers included
}

// Write holds the request until its headers end (a GET upgrade has no
// body), then writes it with the early frames in one write: one TLS
// record, one flight.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return c.Conn.Write(p)
	}
	c.head = append(c.head, p...)
	if !bytes.Contains(c.head, []byte("\r\n\r\n")) {
		return len(p), nil
	}
	out := c.head
	for _, f := range c.Early {
		n := len(out)
		out = AppendClientFrame(out, f)
		c.sent += len(out) - n
	}
	c.done, c.head, c.Early = true, nil, nil
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SentEarly returns the bytes the early frames took on the wire.
func (c *Conn) SentEarly() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

// AppendClientFrame appends payload as one binary websocket frame from a
// client (RFC 6455 §5.2: FIN, opcode 2, masked with a fresh key).
func AppendClientFrame(dst, payload []byte) []byte {
	dst = append(dst, 0x82)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	dst = append(dst, mask[:]...)
	for i, b := range payload {
		dst = append(dst, b^mask[i%4])
	}
	return dst
}
