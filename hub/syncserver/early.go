package syncserver

import (
	"bufio"
	"bytes"
	"errors"
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
// With early bytes, the hub's writes are also held (heldConn) — the
// upgrade's answer, which gorilla writes to the connection itself, the
// Welcome, the acks, the page — until the frames that came with the
// request are answered, and leave in one write: one TLS record, 22 bytes
// of record overhead fewer per message on the way of the sync's third
// round trip. An agent older than protocol 5 sends nothing before the
// answer (it waits for it before its Hello), so nothing of its session
// is held.
type earlyData struct {
	http.ResponseWriter
	held    *heldConn     // nil without early bytes
	drained chan struct{} // closed once the early bytes are read
}

func (e *earlyData) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := e.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	c, rw, err := h.Hijack()
	if err != nil || rw.Reader.Buffered() == 0 {
		return c, rw, err
	}
	e.held = &heldConn{Conn: c}
	e.drained = make(chan struct{})
	early, _ := rw.Reader.Peek(rw.Reader.Buffered())
	pc := &prefixedConn{Conn: e.held, prefix: bytes.NewReader(bytes.Clone(early)), drained: e.drained}
	// gorilla reads through its own buffer (ReadBufferSize is set): this
	// one is only there to be empty.
	return pc, bufio.NewReadWriter(bufio.NewReaderSize(pc, 16), rw.Writer), nil
}

// prefixedConn reads prefix (bytes already received), then the
// connection; drained is closed at the first read past the prefix: its
// frames have all been handed on by then (conn.reader hands a frame over
// before it reads the next).
type prefixedConn struct {
	net.Conn
	prefix  *bytes.Reader
	drained chan struct{}
	once    sync.Once
}

func (p *prefixedConn) Read(b []byte) (int, error) {
	if p.prefix.Len() > 0 {
		return p.prefix.Read(b)
	}
	p.once.Do(func() { close(p.drained) })
	return p.Conn.Read(b)
}

// heldConn holds what is written to it until release, then writes it in
// one write and passes the rest through; Close releases first.
type heldConn struct {
	net.Conn
	mu       sync.Mutex
	held     []byte
	released bool
}

func (h *heldConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return h.Conn.Write(p)
	}
	h.held = append(h.held, p...)
	return len(p), nil
}

// release writes what is held, in one write; later writes go through.
func (h *heldConn) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return nil
	}
	h.released = true
	b := h.held
	h.held = nil
	if len(b) == 0 {
		return nil
	}
	_, err := h.Conn.Write(b)
	return err
}

func (h *heldConn) Close() error {
	h.release() // a session ended before its answers left: they still go
	return h.Conn.Close()
}
