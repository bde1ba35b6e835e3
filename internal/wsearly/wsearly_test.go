package wsearly

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// The frames are RFC 6455 client frames: each length encoding, masked.
func TestAppendClientFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 1000, 65535, 65536, 300000} {
		payload := bytes.Repeat([]byte{0xa5}, n)
		f := AppendClientFrame(nil, payload)
		if f[0] != 0x82 || f[1]&0x80 == 0 {
			t.Fatalf("%d bytes: header %x, want FIN binary masked", n, f[:2])
		}
		got, rest := int(f[1]&0x7f), f[2:]
		switch got {
		case 126:
			got, rest = int(binary.BigEndian.Uint16(rest)), rest[2:]
		case 127:
			got, rest = int(binary.BigEndian.Uint64(rest)), rest[8:]
		}
		if got != n || len(rest) != 4+n {
			t.Fatalf("%d bytes: length %d, %d bytes after the header", n, got, len(rest))
		}
		mask, body := rest[:4], rest[4:]
		for i := range body {
			body[i] ^= mask[i%4]
		}
		if !bytes.Equal(body, payload) {
			t.Fatalf("%d bytes: unmasked payload differs", n)
		}
	}
}

// The request and the frames go out in one write, after the request's
// end, whatever pieces the request is written in.
func TestFramesFollowTheRequestInOneWrite(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	c := &Conn{Conn: a, Early: [][]byte{[]byte("one"), []byte("two")}}
	writes := make(chan []byte, 4)
	go func() {
		for {
			buf := make([]byte, 4096)
			n, err := b.Read(buf)
			if err != nil {
				close(writes)
				return
			}
			writes <- buf[:n]
		}
	}()
	c.Write([]byte("GET /sync HTTP/1.1\r\nHost: x\r\n"))
	c.Write([]byte("\r\n"))
	first := <-writes
	want := "GET /sync HTTP/1.1\r\nHost: x\r\n\r\n"
	if !bytes.HasPrefix(first, []byte(want)) || len(first) != len(want)+2*(2+4+3) {
		t.Fatalf("first write %q: want the request then two frames", first)
	}
	if c.SentEarly() != 2*(2+4+3) {
		t.Fatalf("SentEarly %d", c.SentEarly())
	}
	c.Write([]byte("later"))
	if got := <-writes; string(got) != "later" {
		t.Fatalf("after the request: %q, want it passed through", got)
	}
	b.Close()
}
