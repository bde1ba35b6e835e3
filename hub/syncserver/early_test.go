package syncserver

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// loopPair returns both ends of a loopback TCP connection.
func loopPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return s, c
}

// What the hub writes while the frames that came with the request are
// answered is held, then leaves in one write (one TLS record, one
// flight); a connection closed meanwhile still sends it; after the
// release, writes go as they come.
func TestHeldAnswersLeaveInOneWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(h *heldConn)
		want string
	}{
		{"released", func(h *heldConn) { h.release() }, "HTTP/1.1 101\r\n\r\nwelcome+page"},
		{"closed", func(h *heldConn) { h.Close() }, "HTTP/1.1 101\r\n\r\nwelcome+page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cl := loopPair(t)
			h := &heldConn{Conn: srv}
			for _, w := range []string{"HTTP/1.1 101\r\n\r\n", "welcome", "+page"} {
				if n, err := h.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("write: %d %v", n, err)
				}
			}
			buf := make([]byte, 64)
			cl.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := cl.Read(buf); n != 0 || err == nil {
				t.Fatalf("written before the release (%q, %v)", buf[:n], err)
			}
			tc.end(h)
			cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := cl.Read(buf)
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if got := string(buf[:n]); got != tc.want {
				t.Fatalf("first read %q, want %q in one write", got, tc.want)
			}
			if tc.name == "released" {
				h.Write([]byte("ack"))
				if n, _ := cl.Read(buf); string(buf[:n]) != "ack" {
					t.Fatalf("then %q, want the ack as written", buf[:n])
				}
			}
		})
	}
}

// The connection gives back the bytes that came with the request, then
// reads on, and says when it starts reading past them.
func TestPrefixedConnSaysWhenDrained(t *testing.T) {
	srv, cl := loopPair(t)
	drained := make(chan struct{})
	p := &prefixedConn{Conn: srv, prefix: bytes.NewReader([]byte("early")), drained: drained}
	buf := make([]byte, 3)
	if n, _ := p.Read(buf); string(buf[:n]) != "ear" {
		t.Fatalf("read %q", buf[:n])
	}
	if n, _ := p.Read(buf); string(buf[:n]) != "ly" {
		t.Fatalf("read %q", buf[:n])
	}
	select {
	case <-drained:
		t.Fatal("drained before any read past the early bytes")
	default:
	}
	cl.Write([]byte("net"))
	if n, _ := p.Read(buf); string(buf[:n]) != "net" {
		t.Fatalf("read %q, want the connection's bytes", buf[:n])
	}
	select {
	case <-drained:
	default:
		t.Fatal("not drained after a read past the early bytes")
	}
}
