package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// handshakeTimeout bounds the dial and each handshake step, as the
// agent's (syncclient's HandshakeTimeout default).
const handshakeTimeout = 15 * time.Second

// remoteError is what the hub said when it ended a connection: its Error
// message, or the code of its close frame.
type remoteError struct {
	Code, Message string
	RetryAfter    time.Duration // with wire.CodeBusy
}

func (e *remoteError) Error() string { return "hub: " + e.Code + ": " + e.Message }

// errLost is a connection that ended without the hub saying why: cut,
// the hub killed, a timeout.
var errLost = errors.New("connection lost")

// isBusy tells a hub that asked to come back later.
func isBusy(err error) (*remoteError, bool) {
	re, ok := errors.AsType[*remoteError](err)
	return re, ok && re.Code == wire.CodeBusy
}

// session is one authenticated connection of a simulated agent. After
// the handshake one goroutine reads every frame, so that the hub's pings
// are answered (gorilla/websocket answers them while reading) even while
// the agent waits between its push and its pull.
type session struct {
	ws      *websocket.Conn
	hub     *hubProc
	welcome *wire.Welcome
	in      chan frame    // frames read, then the error that ended the connection
	ended   chan struct{} // closed when the reader stops
	endAt   time.Time     // when the hub's refusal or the cut was read (valid once ended)
	endErr  error
	stop    func() bool   // unhooks the close at the agent's deadline
	quit    chan struct{} // closed by close: the reader hands nothing more
	once    sync.Once
}

type frame struct {
	m   wire.Message
	err error
}

// open dials h, authenticates as a and starts the reader. The fingerprint
// signed is the SHA-256 of the leaf certificate the TLS handshake showed,
// as the agent's pinned one would be: the hub checks the signature over
// its own, so a mistake here fails authentication.
func open(ctx context.Context, h *hubProc, a *agent) (*session, error) {
	s, err := dialOnly(ctx, h)
	if err != nil {
		return nil, err
	}
	w, err := s.handshake(a)
	if err != nil {
		s.stop()
		s.ws.Close()
		return nil, err
	}
	s.welcome = w
	go s.read()
	return s, nil
}

// dialOnly opens the TLS websocket to h's /sync, nothing sent yet.
func dialOnly(ctx context.Context, h *hubProc) (*session, error) {
	d := websocket.Dialer{
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   64 << 10, WriteBufferSize: 64 << 10, // the agent's
		// Loopback to a self-signed certificate the generator did not
		// pin: the fingerprint bound into the signature is checked by
		// the hub instead.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	ws, resp, err := d.DialContext(ctx, "wss://"+h.addr+"/sync", http.Header{})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: dialing %s: %v", errLost, h.name, err)
	}
	ws.SetReadLimit(wire.MaxFrame)
	s := &session{ws: ws, hub: h, in: make(chan frame, 8), ended: make(chan struct{}), quit: make(chan struct{})}
	// The agent's deadline ends whatever the session waits for.
	s.stop = context.AfterFunc(ctx, func() { ws.Close() })
	return s, nil
}

func (s *session) handshake(a *agent) (*wire.Welcome, error) {
	tc, ok := s.ws.UnderlyingConn().(*tls.Conn)
	if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
		return nil, errors.New("no TLS certificate from the hub")
	}
	fp := tlspin.Fingerprint(tc.ConnectionState().PeerCertificates[0].Raw)
	s.ws.SetReadDeadline(time.Now().Add(handshakeTimeout))
	defer s.ws.SetReadDeadline(time.Time{})
	if err := s.send(&wire.Hello{Proto: wire.ProtocolVersion, AgentVersion: "load", Device: a.id,
		AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull}); err != nil {
		return nil, err
	}
	m, err := s.readOne()
	if err != nil {
		return nil, err
	}
	ch, ok := m.(*wire.Challenge)
	if !ok {
		return nil, fmt.Errorf("hub sent %v instead of a challenge", m.Type())
	}
	sig := ed25519.Sign(a.key, wire.AuthMessage(ch.Nonce, fp, a.id, wire.ModeFull))
	if err := s.send(&wire.Auth{Sig: sig}); err != nil {
		return nil, err
	}
	if m, err = s.readOne(); err != nil {
		return nil, err
	}
	w, ok := m.(*wire.Welcome)
	if !ok {
		return nil, fmt.Errorf("hub sent %v instead of a welcome", m.Type())
	}
	return w, nil
}

func (s *session) send(m wire.Message) error {
	b, err := wire.Encode(m)
	if err != nil {
		return fmt.Errorf("encoding %T: %w", m, err)
	}
	s.ws.SetWriteDeadline(time.Now().Add(time.Minute))
	if err := s.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		return fmt.Errorf("%w: sending %v: %v", errLost, m.Type(), err)
	}
	return nil
}

// readOne reads and decodes one frame, turning the hub's Error message or
// close code into a *remoteError.
func (s *session) readOne() (wire.Message, error) {
	typ, b, err := s.ws.ReadMessage()
	if err != nil {
		if ce, ok := errors.AsType[*websocket.CloseError](err); ok && ce.Code >= 4000 {
			code, msg, _ := strings.Cut(ce.Text, ": ")
			return nil, &remoteError{Code: code, Message: msg}
		}
		return nil, fmt.Errorf("%w: %v", errLost, err)
	}
	if typ != websocket.BinaryMessage {
		return nil, errors.New("hub sent a text frame")
	}
	m, err := wire.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("hub sent a bad frame: %w", err)
	}
	if e, ok := m.(*wire.Error); ok {
		return nil, &remoteError{Code: e.Code, Message: e.Message, RetryAfter: time.Duration(e.RetryAfter) * time.Millisecond}
	}
	return m, nil
}

// read hands every frame to in until the connection ends; the hub's
// Error message, which comes before its close frame, is what ends it.
func (s *session) read() {
	defer close(s.in)
	for {
		m, err := s.readOne()
		if err != nil {
			s.endAt, s.endErr = time.Now(), err
			close(s.ended)
		}
		select {
		case s.in <- frame{m: m, err: err}:
		case <-s.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// next returns the next message, waiting at most timeout.
func (s *session) next(timeout time.Duration) (wire.Message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case f, ok := <-s.in:
		if !ok {
			return nil, errLost
		}
		return f.m, f.err
	case <-t.C:
		return nil, fmt.Errorf("%w: no answer from %s for %v", errLost, s.hub.name, timeout)
	}
}

// close ends the session from the agent's side, as the agent does.
func (s *session) close() {
	s.once.Do(func() {
		close(s.quit)
		s.stop()
		s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		s.ws.Close()
	})
}
