package syncclient

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
	"numeribus/internal/seal"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// The push and ack logic, against a scripted hub on loopback: what the
// client sends, and what it records of each answer, in milliseconds
// (the end-to-end tests run the real hub).

// scriptedHub answers the handshake with welcome, then runs script on the
// connection until it returns.
type scriptedHub struct {
	t       *testing.T
	welcome wire.Welcome
	script  func(h *hubConn)
	done    chan struct{} // closed when the first connection ends
	once    sync.Once
}

type hubConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func (h *hubConn) read() wire.Message {
	h.t.Helper()
	h.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := h.ws.ReadMessage()
	if err != nil {
		h.t.Errorf("hub: reading: %v", err)
		return nil
	}
	m, err := wire.Decode(b)
	if err != nil {
		h.t.Errorf("hub: the agent sent a frame that does not decode: %v", err)
	}
	return m
}

func (h *hubConn) send(m wire.Message) {
	h.t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		h.t.Errorf("hub: sending: %v", err)
	}
}

// pull answers a Pull with nothing new.
func (h *hubConn) pull() {
	h.t.Helper()
	if p, ok := h.read().(*wire.Pull); ok {
		h.send(&wire.Changes{Next: p.Cursor, Tag: p.Tag})
	} else {
		h.t.Errorf("hub: a pull was expected")
	}
}

func (s *scriptedHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == retention.Path { // read after a round: this hub has no policy
		http.NotFound(w, r)
		return
	}
	defer s.once.Do(func() { close(s.done) })
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		if !strings.Contains(err.Error(), "before handshake") { // what hubs of protocol 4 answer an Open
			s.t.Error(err)
		}
		return
	}
	defer ws.Close()
	h := &hubConn{t: s.t, ws: ws}
	if _, ok := h.read().(*wire.Hello); !ok {
		s.t.Error("hub: no hello")
		return
	}
	h.send(&wire.Challenge{Nonce: make([]byte, wire.NonceSize), HubTime: time.Now().UnixMilli()})
	if _, ok := h.read().(*wire.Auth); !ok {
		s.t.Error("hub: no auth")
		return
	}
	w0 := s.welcome
	w0.HubTime = time.Now().UnixMilli()
	h.send(&w0)
	s.script(h)
}

// agentWith returns an enrolled store holding n tour stops, and a client
// of the scripted hub.
func agentWith(t *testing.T, n int, hub http.Handler) (*store.Store, *Client) {
	return agentOn(t, n, hub, false)
}

// agentOn is agentWith, over TLS (wss, the certificate pinned) when
// overTLS.
func agentOn(t *testing.T, n int, hub http.Handler, overTLS bool) (*store.Store, *Client) {
	t.Helper()
	ctx := context.Background()
	st, _, err := store.Create(ctx, t.TempDir(), []byte("phrase de passe de test"),
		store.Options{KDF: seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hubKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	_, pk, _ := ed25519.GenerateKey(rand.Reader)
	srv := httptest.NewUnstartedServer(hub)
	var fp []byte
	if overTLS {
		srv.StartTLS()
		fp = tlspin.Fingerprint(srv.Certificate().Raw)
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	h := store.Hub{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/sync", HubKey: hubKey.PublicKey().Bytes(),
		DeviceName: "bus-1", Team: "cd88", PushKey: pk, CertFingerprint: fp}
	if err := st.Enroll(ctx, h, dk); err != nil {
		t.Fatal(err)
	}
	recs := make([]domain.Record, n)
	for i := range recs {
		recs[i] = &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-02",
			Lieu: fmt.Sprintf("Arrêt %d", i), Commune: "88160"}
	}
	if _, err := st.Save(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	return st, &Client{Store: st, Insecure: true, AnswerTimeout: 5 * time.Second, HandshakeTimeout: 5 * time.Second}
}

func newHub(t *testing.T, w wire.Welcome, script func(*hubConn)) *scriptedHub {
	return &scriptedHub{t: t, welcome: w, script: script, done: make(chan struct{})}
}

func acked(t *testing.T, st *store.Store) uint64 {
	t.Helper()
	_, a, err := st.Seqs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Batches of BatchCount changes, contiguous and in order, never more than
// Window unacknowledged; each ack recorded as the hub gave it.
func TestPushBatchesWithinTheWindow(t *testing.T) {
	const n, count, window = 11, 2, 3
	var seqs []uint64
	maxInFlight := 0
	hub := newHub(t, wire.Welcome{Team: "cd88"}, func(h *hubConn) {
		var inFlight []*wire.Push
		for len(seqs) < n || len(inFlight) > 0 {
			// Read pushes until the agent has filled its window (or sent
			// all), then ack the oldest.
			for len(inFlight) < window && len(seqs) < n {
				p, ok := h.read().(*wire.Push)
				if !ok {
					t.Error("hub: a push was expected")
					return
				}
				if len(p.Changes) > count {
					t.Errorf("batch of %d changes, BatchCount is %d", len(p.Changes), count)
				}
				for _, c := range p.Changes {
					seqs = append(seqs, c.Seq)
				}
				inFlight = append(inFlight, p)
				maxInFlight = max(maxInFlight, len(inFlight))
			}
			p := inFlight[0]
			inFlight = inFlight[1:]
			h.send(&wire.Ack{Batch: p.Batch, HWM: p.Changes[len(p.Changes)-1].Seq, Applied: uint32(len(p.Changes))})
		}
		h.pull()
	})
	st, c := agentWith(t, n, hub)
	c.BatchCount, c.Window = count, window
	rep, err := c.Sync(context.Background())
	<-hub.done
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sent seqs %v: not 1..%d in order", seqs, n)
		}
	}
	if len(seqs) != n || maxInFlight != window || rep.Pushed != n || rep.PendingAfter != 0 || acked(t, st) != n {
		t.Fatalf("sent %d, at most %d in flight, report %+v, acked %d", len(seqs), maxInFlight, rep, acked(t, st))
	}
}

// Each batch is as full as its bounds allow, whatever the store reads at
// a time (the client reads one batch's worth per batch: a push holds one
// batch of its outbox, not a window of them), and carries each change's
// fields as the store holds them.
func TestPushFillsEachBatch(t *testing.T) {
	const n, count = 50, 20
	var pushes []*wire.Push
	hub := newHub(t, wire.Welcome{Team: "cd88"}, func(h *hubConn) {
		for got := 0; got < n; {
			p, ok := h.read().(*wire.Push)
			if !ok {
				t.Error("hub: a push was expected")
				return
			}
			pushes = append(pushes, p)
			got += len(p.Changes)
			h.send(&wire.Ack{Batch: p.Batch, HWM: p.Changes[len(p.Changes)-1].Seq, Applied: uint32(len(p.Changes))})
		}
		h.pull()
	})
	st, c := agentWith(t, n, hub)
	want, err := st.Pending(context.Background(), 0, n)
	if err != nil {
		t.Fatal(err)
	}
	// About seven changes a batch: bytes end the batches, not the count.
	one, err := wire.FromChange(&want[0])
	if err != nil {
		t.Fatal(err)
	}
	c.BatchCount, c.BatchBytes, c.Window = count, 7*wire.EncodedSize(&one)+3, 1
	if _, err := c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-hub.done
	var sent []wire.Change
	for i, p := range pushes {
		size := 0
		for j := range p.Changes {
			size += wire.EncodedSize(&p.Changes[j])
		}
		sent = append(sent, p.Changes...)
		if i == len(pushes)-1 {
			break
		}
		next := pushes[i+1].Changes[0]
		if len(p.Changes) < count && size+wire.EncodedSize(&next) <= c.BatchBytes {
			t.Errorf("batch %d ends after %d changes (%d bytes) while change %d fitted (%d bytes a batch)",
				p.Batch, len(p.Changes), size, next.Seq, c.BatchBytes)
		}
	}
	if len(sent) != n {
		t.Fatalf("the hub received %d changes, want %d", len(sent), n)
	}
	for i := range sent {
		w, err := wire.FromChange(&want[i])
		if err != nil {
			t.Fatal(err)
		}
		if got := sent[i]; got.Seq != w.Seq || got.ID != w.ID || !bytes.Equal(got.Fields, w.Fields) {
			t.Fatalf("change %d went as seq %d, fields %x; the store holds seq %d, fields %x", i, got.Seq, got.Fields, w.Seq, w.Fields)
		}
	}
}

// An ack short of its batch is a hub bug or a lie: the round fails, and
// the store records no more than the hub acknowledged.
func TestAckShortOfItsBatchIsNotTrusted(t *testing.T) {
	hub := newHub(t, wire.Welcome{Team: "cd88"}, func(h *hubConn) {
		p, ok := h.read().(*wire.Push)
		if !ok {
			t.Error("hub: a push was expected")
			return
		}
		h.send(&wire.Ack{Batch: p.Batch, HWM: 2})
	})
	st, c := agentWith(t, 5, hub)
	_, err := c.Sync(context.Background())
	<-hub.done
	if err == nil || !strings.Contains(err.Error(), "acked up to 2") {
		t.Fatalf("Sync: %v, want the short ack refused", err)
	}
	if a := acked(t, st); a > 2 {
		t.Fatalf("acked %d after the hub acknowledged 2", a)
	}
}

// The hub's mark at the welcome acknowledges what it holds (a round cut
// after the hub committed): nothing is sent again.
func TestWelcomeMarkAcksWithoutResending(t *testing.T) {
	var pushed int
	hub := newHub(t, wire.Welcome{Team: "cd88", HWM: 3}, func(h *hubConn) {
		p, ok := h.read().(*wire.Push)
		if !ok {
			t.Error("hub: a push was expected")
			return
		}
		pushed = len(p.Changes)
		if p.Changes[0].Seq != 4 {
			t.Errorf("first change sent: %d, want 4", p.Changes[0].Seq)
		}
		h.send(&wire.Ack{Batch: p.Batch, HWM: 5, Applied: 2})
		h.pull()
	})
	st, c := agentWith(t, 5, hub)
	if _, err := c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-hub.done
	if pushed != 2 || acked(t, st) != 5 {
		t.Fatalf("pushed %d, acked %d; want 2 and 5", pushed, acked(t, st))
	}
}

// A refusal in an ack is kept with the change, which leaves the outbox
// with the others.
func TestRefusalInAnAckIsKept(t *testing.T) {
	hub := newHub(t, wire.Welcome{Team: "cd88"}, func(h *hubConn) {
		p, ok := h.read().(*wire.Push)
		if !ok {
			t.Error("hub: a push was expected")
			return
		}
		h.send(&wire.Ack{Batch: p.Batch, HWM: 3, Applied: 2, Rejected: []wire.Rejection{{Seq: 2, Code: wire.CodeInvalid, Reason: "test"}}})
		h.pull()
	})
	st, c := agentWith(t, 3, hub)
	rep, err := c.Sync(context.Background())
	<-hub.done
	if err != nil {
		t.Fatal(err)
	}
	rs, err := st.RejectedChanges(context.Background())
	if err != nil || len(rs) != 1 || rs[0].Seq != 2 || rep.Rejected != 1 || acked(t, st) != 3 {
		t.Fatalf("refusals %+v (%v), report %+v, acked %d", rs, err, rep, acked(t, st))
	}
}

// The round's report says when the hub acknowledged the push, apart from
// the pull after it: when the work is safe at the hub and the laptop may
// leave coverage.
func TestReportSaysWhenThePushWasAcknowledged(t *testing.T) {
	const pullTakes = 300 * time.Millisecond
	hub := newHub(t, wire.Welcome{Team: "cd88", Name: "bus-1"}, func(h *hubConn) {
		p, ok := h.read().(*wire.Push)
		if !ok {
			t.Error("hub: a push was expected")
			return
		}
		h.send(&wire.Ack{Batch: p.Batch, HWM: p.Changes[len(p.Changes)-1].Seq, Applied: uint32(len(p.Changes))})
		time.Sleep(pullTakes) // a pull that takes its time
		h.pull()
	})
	_, c := agentOn(t, 3, hub, true)
	t0 := time.Now()
	rep, err := c.Sync(t.Context())
	round := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pushed != 3 || rep.Sent <= 0 || rep.Sent > round-pullTakes {
		t.Fatalf("pushed %d, acknowledged after %v of a %v round; want 3, before the %v pull", rep.Pushed, rep.Sent, round, pullTakes)
	}
}

// The acks of a batch were lost in a cut after the hub committed it: the
// next Welcome's mark covers its changes, and their refusals come with
// it. The agent records them before taking those changes out of its
// outbox, as an Ack's; it acked them as accepted before.
func TestWelcomeTellsTheRefusalsOfLostAcks(t *testing.T) {
	hub := newHub(t, wire.Welcome{Team: "cd88", Name: "bus-1", HWM: 3,
		Rejected: []wire.Rejection{{Seq: 2, Code: wire.CodeInvalid, Reason: "invalid record content: duree"}}},
		func(h *hubConn) { h.pull() })
	st, c := agentOn(t, 3, hub, true)
	rep, err := c.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := st.RejectedChanges(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Seq != 2 || rs[0].Code != wire.CodeInvalid || rep.Rejected != 1 || acked(t, st) != 3 || rep.Pushed != 0 {
		t.Fatalf("refused %+v (report %d), acked %d, pushed %d; want change 2 refused, 3 acked, nothing pushed", rs, rep.Rejected, acked(t, st), rep.Pushed)
	}
}
