package certs

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"numeribus/internal/tlspin"
)

// ticketCache is a client session cache that remembers the last ticket
// it was given, and can offer a doctored one.
type ticketCache struct {
	tls.ClientSessionCache
	ticket []byte
	state  *tls.SessionState
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.ticket, c.state, _ = cs.ResumptionState()
	}
	c.ClientSessionCache.Put(key, cs)
}

// shake connects a client with cache to srv over loopback TCP and returns
// whether the session was resumed, once the client has read its ticket.
func shake(t *testing.T, srv *tls.Config, fp []byte, cache tls.ClientSessionCache) bool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		if err := tc.Handshake(); err != nil {
			errc <- err
			return
		}
		_, err = tc.Write([]byte("ok")) // the client reads the ticket on its way
		errc <- err
	}()
	cfg := tlspin.PinnedConfig(fp)
	cfg.MinVersion = tls.VersionTLS13
	cfg.ServerName = "127.0.0.1"
	cfg.ClientSessionCache = cache
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().DidResume
}

func testPair(t *testing.T) Pair {
	t.Helper()
	p, err := Get(t.TempDir(), "", "", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The hub's tickets are 16-byte handles, not Go's 109-byte sealed state,
// and a returning client resumes with one; a handle the hub never gave,
// or one past its lifetime, makes a full handshake, never a failure.
func TestTicketsAreShortHandles(t *testing.T) {
	p := testPair(t)
	now := time.Now()
	ts := newTicketStore(func() time.Time { return now })
	srv := p.serverConfig(ts)
	cache := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}

	if shake(t, srv, p.Fingerprint, cache) {
		t.Fatal("the first handshake resumed a session")
	}
	if got := len(cache.ticket); got != ticketSize {
		t.Fatalf("the hub's ticket is %d bytes, want %d", got, ticketSize)
	}
	if !shake(t, srv, p.Fingerprint, cache) {
		t.Fatal("a returning client did not resume its session")
	}
	if ts.len() != 2 {
		t.Errorf("%d sessions kept after two handshakes, want 2", ts.len())
	}

	t.Run("unknown handle", func(t *testing.T) {
		forged := bytes.Clone(cache.ticket)
		forged[0] ^= 1
		// A copy of the state: NewResumptionState sets its ticket.
		b, err := cache.state.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		state, err := tls.ParseSessionState(b)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := tls.NewResumptionState(forged, state)
		if err != nil {
			t.Fatal(err)
		}
		other := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		other.ClientSessionCache.Put("127.0.0.1", cs)
		if shake(t, srv, p.Fingerprint, other) {
			t.Fatal("a forged handle resumed a session")
		}
	})
	t.Run("expired", func(t *testing.T) {
		now = now.Add(ticketLifetime)
		if shake(t, srv, p.Fingerprint, cache) {
			t.Fatal("a handle past its lifetime resumed a session")
		}
	})
	t.Run("another hub process", func(t *testing.T) {
		if shake(t, p.ServerConfig(), p.Fingerprint, cache) {
			t.Fatal("a restarted hub resumed a session it never kept")
		}
	})
}

// Past ticketCap the oldest sessions are forgotten: memory stays bounded
// whatever clients do, and the newest handles still resume.
func TestTicketsBounded(t *testing.T) {
	p := testPair(t)
	ts := newTicketStore(time.Now)
	cache := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	shake(t, p.serverConfig(ts), p.Fingerprint, cache)
	first := bytes.Clone(cache.ticket)
	var last []byte
	for range ticketCap + 100 {
		var err error
		if last, err = ts.wrap(tls.ConnectionState{}, cache.state); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.len(); n != ticketCap {
		t.Fatalf("%d sessions kept, want the cap %d", n, ticketCap)
	}
	if ss, _ := ts.unwrap(first, tls.ConnectionState{}); ss != nil {
		t.Error("the oldest session still held past the cap")
	}
	if ss, _ := ts.unwrap(last, tls.ConnectionState{}); ss == nil {
		t.Error("the newest session forgotten")
	}
	if len(ts.order)-ts.head != ticketCap {
		t.Errorf("%d handles in the eviction order, want %d", len(ts.order)-ts.head, ticketCap)
	}
}
