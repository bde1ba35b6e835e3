package syncserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
)

// A protocol 5 agent sends its first frames right behind its upgrade
// request, without waiting for the answer (wire.Open): the round trip it
// saves is the point. net/http has often read them already, with the
// request, into the connection's buffer, and gorilla/websocket refuses a
// hijacked connection with buffered bytes ("client sent data before
// handshake is complete"). earlyData hands gorilla a connection that
// gives those bytes back first, then reads on.
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
