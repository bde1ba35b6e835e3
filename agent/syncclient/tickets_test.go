package syncclient

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/seal"
	"numeribus/internal/tlspin"
)

// `agent sync` is one process per sync: the TLS session of one resumes
// in the next, from the store. A resumed session offers X25519 alone; a
// full handshake is the post-quantum hybrid, including when the hub did
// not take the session offered (the agent shakes hands again rather than
// send anything over a handshake without ML-KEM).
func TestTLSSessionResumedByTheNextProcess(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	fp := tlspin.Fingerprint(srv.Certificate().Raw)
	u, _ := url.Parse("wss" + srv.URL[len("https"):] + "/sync")
	st, _, err := store.Create(ctx, t.TempDir(), []byte("phrase"), store.Options{KDF: seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// One handshake by a new client (a new process), its state then read
	// (the hub's ticket arrives after the handshake, read with the data),
	// and the round's bookkeeping, which records the session.
	dial := func(name string) tls.ConnectionState {
		t.Helper()
		c := &Client{Store: st}
		c.defaults()
		tc, err := c.dialTLS(ctx, u, fp)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer tc.Close()
		tc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		tc.Read(make([]byte, 4096))
		c.saveSessions(ctx)
		return tc.ConnectionState()
	}
	for _, c := range []struct {
		name   string
		before func()
		resume bool
		curve  tls.CurveID
	}{
		{"first contact", nil, false, tls.X25519MLKEM768},
		{"the next process", nil, true, tls.X25519},
		{"and the next", nil, true, tls.X25519},
		{"a hub that forgot its tickets (restarted)", func() { srv.TLS.SetSessionTicketKeys([][32]byte{{1, 2, 3}}) }, false, tls.X25519MLKEM768},
		{"after it", nil, true, tls.X25519},
	} {
		if c.before != nil {
			c.before()
		}
		cs := dial(c.name)
		if cs.DidResume != c.resume || cs.CurveID != c.curve {
			t.Errorf("%s: resumed %v with %v, want %v with %v", c.name, cs.DidResume, cs.CurveID, c.resume, c.curve)
		}
	}
	// Locked, the store neither gives nor takes a session: a full
	// handshake.
	st.Lock()
	if cs := dial("locked"); cs.DidResume || cs.CurveID != tls.X25519MLKEM768 {
		t.Errorf("locked: resumed %v with %v, want a full hybrid handshake", cs.DidResume, cs.CurveID)
	}
}
