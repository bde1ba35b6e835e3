package cli

import (
	"net"
	"sync"
)

// handoff lets servers take turns on one listener: `agent app` serves
// its first-start page, then the UI, on the same address, the one the
// browser was opened on. Closing a turn ends that server's accepting
// without closing the socket, so no connection attempt between two
// turns is refused: it waits for the next turn's Accept.
type handoff struct {
	ln    net.Listener
	conns chan net.Conn
	done  chan struct{} // closed by Close
	once  sync.Once

	errMu sync.Mutex
	err   error // the listener's Accept error, once it failed
	dead  chan struct{}
}

func newHandoff(ln net.Listener) *handoff {
	h := &handoff{ln: ln, conns: make(chan net.Conn), done: make(chan struct{}), dead: make(chan struct{})}
	go h.accept()
	return h
}

func (h *handoff) accept() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			h.errMu.Lock()
			h.err = err
			h.errMu.Unlock()
			close(h.dead)
			return
		}
		select {
		case h.conns <- c:
		case <-h.done:
			c.Close()
			return
		}
	}
}

// Close closes the listener for good.
func (h *handoff) Close() error {
	var err error
	h.once.Do(func() {
		close(h.done)
		err = h.ln.Close()
	})
	return err
}

// Addr is the shared listener's address.
func (h *handoff) Addr() net.Addr { return h.ln.Addr() }

// turn returns a listener for the next server; its Close ends the turn
// only.
func (h *handoff) turn() net.Listener {
	return &turn{h: h, closed: make(chan struct{})}
}

type turn struct {
	h      *handoff
	closed chan struct{}
	once   sync.Once
}

func (t *turn) Accept() (net.Conn, error) {
	// A closed turn accepts nothing more, even with a connection waiting.
	select {
	case <-t.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-t.h.conns:
		return c, nil
	case <-t.closed:
		return nil, net.ErrClosed
	case <-t.h.done:
		return nil, net.ErrClosed
	case <-t.h.dead:
		t.h.errMu.Lock()
		defer t.h.errMu.Unlock()
		return nil, t.h.err
	}
}

func (t *turn) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

func (t *turn) Addr() net.Addr { return t.h.ln.Addr() }
