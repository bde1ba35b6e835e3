package syncserver

import (
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

// The upgrade's answer is held until the Welcome: both leave in one
// write (one TLS record, one flight), and a connection closed before any
// Welcome still sends the answer.
func TestUpgradeAnswerRidesWithTheWelcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		then func(h *heldAnswer)
		want string
	}{
		{"welcome", func(h *heldAnswer) { h.Write([]byte("welcome")) }, "HTTP/1.1 101\r\n\r\nwelcome"},
		{"closed", func(h *heldAnswer) { h.Close() }, "HTTP/1.1 101\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cl := loopPair(t)
			h := &heldAnswer{Conn: srv}
			if n, err := h.Write([]byte("HTTP/1.1 101\r\n\r\n")); n != 16 || err != nil {
				t.Fatalf("write: %d %v", n, err)
			}
			buf := make([]byte, 64)
			cl.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := cl.Read(buf); n != 0 || err == nil {
				t.Fatalf("the answer left alone (%q, %v)", buf[:n], err)
			}
			tc.then(h)
			cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := cl.Read(buf)
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if got := string(buf[:n]); got != tc.want {
				t.Fatalf("first read %q, want %q in one write", got, tc.want)
			}
			h.Write([]byte("ack")) // what follows goes as it is written
			if n, _ := cl.Read(buf); tc.name == "welcome" && string(buf[:n]) != "ack" {
				t.Fatalf("then %q, want the ack", buf[:n])
			}
		})
	}
}
