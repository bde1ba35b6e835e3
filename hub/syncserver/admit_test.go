package syncserver

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/internal/wire"
)

// Waiters are admitted in the order they arrived, whatever the number of
// them: the fairness database/sql's pool does not give.
func TestGateAdmitsInArrivalOrder(t *testing.T) {
	g := newGate(1)
	first, err := g.enter(nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			leave, err := g.enter(nil, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			leave()
		})
		// The next one arrives once this one waits.
		waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.waiting == i+1 })
	}
	first()
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("admitted in order %v, want arrival order", order)
		}
	}
}

func TestGateRefusals(t *testing.T) {
	g := newGate(1)
	hold, _ := g.enter(nil, time.Minute)
	defer hold()

	// The deadline passes while waiting: busy, with a wait to tell.
	_, err := g.enter(nil, 30*time.Millisecond)
	var b *errBusy
	if !errors.As(err, &b) || b.retry < time.Second {
		t.Fatalf("waiting past the deadline: %v, want busy with a retry of a second or more", err)
	}

	// The connection ends while waiting: its work is dropped.
	gone := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { close(gone) })
	if _, err := g.enter(gone, time.Minute); !errors.Is(err, errGone) {
		t.Fatalf("connection gone while waiting: %v, want errGone", err)
	}

	// Told when to come back from the queue ahead: a minute of it.
	g.mu.Lock()
	g.hold, g.waiting = 10*time.Second, 5
	g.mu.Unlock()
	_, err = g.enter(nil, 30*time.Millisecond)
	if !errors.As(err, &b) || b.retry < 50*time.Second || b.retry > 70*time.Second {
		t.Fatalf("queue of a minute: %v, want busy with a retry of about a minute", err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 2000 {
		if ok() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition not reached in 2 s")
}

// A batch that cannot get the store in time is refused whole with
// "busy" and when to come back; sent again later, it is applied once.
func TestBusyHubSaysWhenToComeBack(t *testing.T) {
	h := newTestHub(t, Options{Writers: 1, WriteWait: 50 * time.Millisecond})
	ws := h.dial(t)
	// Another connection holds the store's only writer slot.
	h.waitSeen(t)
	leave, err := h.srv.writes.enter(nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ps := pushes(t, 1, 5)
	send(t, ws, ps[0])
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.(*wire.Error)
	if !ok || e.Code != wire.CodeBusy || e.RetryAfter < 1000 {
		t.Fatalf("got %#v, want busy with a RetryAfter of a second or more", m)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
		t.Fatalf("close: %v, want 1013 (try again later)", err)
	}
	if hwm := h.hwm(t); hwm != 0 {
		t.Fatalf("hwm %d after a busy answer, want nothing applied", hwm)
	}
	leave()
	ws = h.dial(t)
	send(t, ws, ps[0])
	if a, ok := recv(t, ws).(*wire.Ack); !ok || a.HWM != 5 || a.Applied != 5 {
		t.Fatalf("after the wait: %#v, want the 5 changes applied", a)
	}
}

// Shutdown lets a connection finish the batches it has read — each is
// acked — then closes it with "going away".
func TestShutdownDrainsBatchesInFlight(t *testing.T) {
	h := newTestHub(t, Options{Writers: 1})
	ws := h.dial(t)
	h.waitSeen(t)
	leave, err := h.srv.writes.enter(nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ps := pushes(t, 2, 5)
	send(t, ws, ps[0])
	send(t, ws, ps[1])
	// Both batches are read; the first waits for the store.
	waitFor(t, func() bool { h.srv.writes.mu.Lock(); defer h.srv.writes.mu.Unlock(); return h.srv.writes.waiting == 1 })
	stopped := make(chan struct{})
	go func() { h.srv.Shutdown(context.Background()); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // Shutdown has begun
	leave()
	for want := uint64(5); want <= 10; want += 5 {
		if a, ok := recv(t, ws).(*wire.Ack); !ok || a.HWM != want {
			t.Fatalf("got %#v, want the ack up to %d", a, want)
		}
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("close: %v, want 1001 (going away)", err)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if hwm := h.hwm(t); hwm != 10 {
		t.Fatalf("hwm %d, want 10", hwm)
	}
}

// A drain that outlasts its deadline closes the connections at once.
func TestShutdownDeadline(t *testing.T) {
	h := newTestHub(t, Options{Writers: 1})
	ws := h.dial(t)
	h.waitSeen(t)
	leave, _ := h.srv.writes.enter(nil, time.Minute)
	defer leave()
	send(t, ws, pushes(t, 1, 5)[0])
	waitFor(t, func() bool { h.srv.writes.mu.Lock(); defer h.srv.writes.mu.Unlock(); return h.srv.writes.waiting == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	h.srv.Shutdown(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown took %v past its 100 ms deadline", d)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("close: %v, want 1001 (going away)", err)
	}
}

// Pushes waiting for the store wait as bytes, not decoded: at most
// decodingSlots are decoded ahead, whatever the number of connections;
// every one is applied once the store is free.
func TestPushesWaitUndecoded(t *testing.T) {
	const conns = decodingSlots + 8
	h := newTestHub(t, Options{Writers: 1})
	leave, err := h.srv.writes.enter(nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Every connection is the one device's, each with the same batch:
	// the first applies it, the others find it there (retries).
	var wss []*websocket.Conn
	for range conns {
		wss = append(wss, h.dial(t))
	}
	p := pushes(t, 1, 5)[0]
	for _, ws := range wss {
		send(t, ws, p)
	}
	waitFor(t, func() bool {
		g := h.srv.decoding
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.slots) == decodingSlots && g.waiting == conns-decodingSlots
	})
	leave()
	for _, ws := range wss {
		if a, ok := recv(t, ws).(*wire.Ack); !ok || a.HWM != 5 {
			t.Fatalf("got %+v, want an ack up to 5", a)
		}
	}
	waitFor(t, func() bool { return len(h.srv.decoding.slots) == 0 })
}

// waitSeen waits until the handshake's bookkeeping is written, so that
// the test's hold on the writers' gate comes after it.
func (h *testHub) waitSeen(t *testing.T) {
	t.Helper()
	waitFor(t, func() bool {
		d, err := h.st.Device(context.Background(), h.device)
		return err == nil && !d.LastSeen.IsZero() && len(h.srv.writes.slots) == 0
	})
}

// countingListener counts the bytes its connections read.
type countingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// A push waiting for a decoding slot is not read past its head: its
// bytes wait in the socket's buffers, not in the hub's memory (a
// thousand agents pushing at once each held their batch, read, while the
// writer worked through them). Once a slot frees, it is read and applied.
func TestPushWaitsInTheSocket(t *testing.T) {
	var read atomic.Int64
	h := newHubOn(t, Options{}, false, func(l net.Listener) net.Listener { return countingListener{l, &read} })
	var leaves []func()
	for range decodingSlots {
		leave, err := h.srv.decoding.enter(nil, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leave)
	}
	ws := h.dial(t)
	h.waitSeen(t)
	p := pushes(t, 1, 1500)[0]
	b, err := wire.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	before := read.Load()
	if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		g := h.srv.decoding
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.waiting == 1
	})
	time.Sleep(100 * time.Millisecond)
	// The head, and what TLS or the buffered reader took with it: a
	// few KiB of a frame of a few hundred.
	if got := read.Load() - before; got > 64<<10 {
		t.Fatalf("the hub read %d bytes of a %d-byte push waiting for a slot", got, len(b))
	}
	for _, leave := range leaves {
		leave()
	}
	if a, ok := recv(t, ws).(*wire.Ack); !ok || a.HWM != 1500 {
		t.Fatalf("got %+v, want an ack up to 1500", a)
	}
}

// An Open whose batches find the hub's decoding slots all taken gets its
// upgrade's answer and its Welcome at once, not once a slot frees: what
// the connection holds to send in one write (early.go) does not wait for
// the hub's load. The batches are then answered in their turn.
func TestHeldAnswersDoNotWaitForASlot(t *testing.T) {
	h := newTestHubTLS(t, Options{})
	var leaves []func()
	for range decodingSlots {
		leave, err := h.srv.decoding.enter(nil, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leave)
	}
	freed := false
	free := func() {
		if !freed {
			for _, leave := range leaves {
				leave()
			}
			freed = true
		}
	}
	defer free()
	ps := pushes(t, 1, 5)
	welcomed := make(chan *wire.Welcome, 1)
	var ws *websocket.Conn
	go func() {
		ws = h.openDial(t, h.open(1), []wire.Message{ps[0]}, nil)
		w, _ := recv(t, ws).(*wire.Welcome)
		welcomed <- w
	}()
	select {
	case w := <-welcomed:
		if w == nil || !w.Early {
			t.Fatalf("welcome %+v, want the early batch taken", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the upgrade while the decoding slots are taken")
	}
	free()
	if a, ok := recv(t, ws).(*wire.Ack); !ok || a.HWM != 5 {
		t.Fatalf("got %+v, want the ack up to 5", a)
	}
}
