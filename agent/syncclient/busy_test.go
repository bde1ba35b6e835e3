package syncclient

import (
	"context"
	"sync"
	"testing"
	"time"

	"numeribus/internal/wire"
)

// A busy hub's RetryAfter replaces the backoff: the agent comes back
// after it, with up to half again of jitter — not sooner, which would
// pile on a saturated hub, and not after its own longer backoff.
func TestBusyHubIsHonoured(t *testing.T) {
	const after = 400 * time.Millisecond
	var (
		mu    sync.Mutex
		dials []time.Time
		again = make(chan struct{})
	)
	hub := newHub(t, wire.Welcome{Team: "cd88", Name: "bus-1"}, func(h *hubConn) {
		mu.Lock()
		dials = append(dials, time.Now())
		n := len(dials)
		mu.Unlock()
		if n == 1 {
			h.read() // the first batch: the hub has no time for it
			h.send(&wire.Error{Code: wire.CodeBusy, Message: "occupé, réessayez dans 1 s", RetryAfter: uint32(after / time.Millisecond)})
			return
		}
		if n == 2 {
			close(again)
		}
	})
	_, c := agentWith(t, 3, hub)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-again:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not come back within 10 s")
	}
	cancel()
	<-done
	mu.Lock()
	gap := dials[1].Sub(dials[0])
	mu.Unlock()
	if gap < after || gap > after*3/2+500*time.Millisecond {
		t.Fatalf("came back after %v, want between %v and %v plus the handshake", gap, after, after*3/2)
	}
}

func TestBusyWait(t *testing.T) {
	for _, u := range []float64{0, 0.5, 0.999} {
		w := busyWait(10*time.Second, u)
		if w < 10*time.Second || w >= 15*time.Second {
			t.Errorf("busyWait(10 s, %v) = %v, want within [10 s, 15 s)", u, w)
		}
	}
	if busyWait(10*time.Second, 0) == busyWait(10*time.Second, 0.9) {
		t.Error("no jitter")
	}
}
