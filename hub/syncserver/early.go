package syncserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
)

// A protocol 5 agent sends its first frames right behind its upgrade
// request, without waiting for the answer (wire.Open): the round trip it
// saves is the point. net/http has often read them already, with the
// request, into the connection's buffer, and gorilla/websocket refuses a
// hijacked connection with buffered bytes ("client sent data before
// handshake is complete"). earlyData hands gorilla a connection that
// gives those bytes back first, then reads on.
//
// With early bytes (an Open and frames behind it), the hub's answer to
// the upgrade is also held until the Welcome is written, so that both go
// in one write: one TLS record, 22 bytes fewer on the way of the sync's
// third round trip (heldAnswer). An agent older than protocol 5 sends
// nothing before the answer, which then leaves at once: it would not
// send its Hello before.
type earlyData struct{ http.ResponseWriter }

func (e earlyData) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := e.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	c, rw, err := h.Hijack()
	if err != nil || rw.Reader.Buffered() == 0 {
		return c, rw, err
	}
	c = &heldAnswer{Conn: c}
	early, _ := rw.Reader.Peek(rw.Reader.Buffered())
	pc := &prefixedConn{Conn: c, r: io.MultiReader(bytes.NewReader(bytes.Clone(early)), c)}
	// gorilla reads through its own buffer (ReadBufferSize is set): this
	// one is only there to be empty.
	return pc, bufio.NewReadWriter(bufio.NewReaderSize(pc, 16), rw.Writer), nil
}

// prefixedConn reads r (bytes already received, then the connection).
type prefixedConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// heldAnswer holds the first write — the upgrade's answer, which
// gorilla/websocket writes to the connection itself — and sends it with
// the next write (the Welcome, or an Error), or at Close.
type heldAnswer struct {
	net.Conn
	mu   sync.Mutex
	held []byte
	done bool // the first write went out
}

func (h *heldAnswer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return h.Conn.Write(p)
	}
	if h.held == nil {
		h.held = bytes.Clone(p)
		return len(p), nil
	}
	h.done = true
	out := append(h.held, p...)
	h.held = nil
	if _, err := h.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *heldAnswer) Close() error {
	h.mu.Lock()
	if !h.done && h.held != nil {
		h.done = true
		h.Conn.Write(h.held) // a session refused before its Welcome: the answer still goes
		h.held = nil
	}
	h.mu.Unlock()
	return h.Conn.Close()
}
