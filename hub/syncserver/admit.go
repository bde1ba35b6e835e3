package syncserver

import (
	"errors"
	"sync"
	"time"
)

// A thousand agents coming back into coverage at once must neither queue
// without end on the store nor be served in a random order: database/sql
// hands a freed connection to any of its waiters, so under load the tail
// of the waits grows without bound, and work goes on for agents that have
// long given up. Every store call of a round therefore passes a gate: a
// fixed number of holders, the others waiting in arrival order (Go wakes
// the goroutines blocked on a channel send in the order they blocked),
// each for at most its deadline. A wait that reaches the deadline is
// refused, and the agent is told when to come back (wire.CodeBusy), from
// the queue still ahead: nothing of its frame was applied, and it sends it
// again then.

// errBusy is returned by gate.enter when the wait would exceed the
// deadline.
type errBusy struct{ retry time.Duration }

func (e *errBusy) Error() string {
	return "hub busy: try again in " + e.retry.Round(time.Second).String()
}

// errGone is returned by gate.enter when the connection ended while it
// waited: its work is dropped, not done for nobody.
var errGone = errors.New("connection ended while waiting for the store")

// gate admits at most cap(slots) holders at a time, in arrival order.
type gate struct {
	slots chan struct{}

	mu      sync.Mutex
	waiting int           // goroutines in enter, not yet admitted
	hold    time.Duration // moving average of how long a holder holds
}

func newGate(n int) *gate {
	return &gate{slots: make(chan struct{}, max(n, 1)), hold: 5 * time.Millisecond}
}

// expected returns how long a newcomer would wait now: the holders and
// the waiters before it, served cap(slots) at a time.
func (g *gate) expected() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	ahead := g.waiting + len(g.slots) - cap(g.slots) + 1
	if ahead <= 0 {
		return 0
	}
	return time.Duration(ahead) * g.hold / time.Duration(cap(g.slots))
}

// tryEnter takes a slot if one is free, without waiting.
func (g *gate) tryEnter() (leave func(), ok bool) {
	select {
	case g.slots <- struct{}{}:
		return g.leaver(), true
	default:
		return nil, false
	}
}

// enter waits for a slot until deadline, or until gone is closed (the
// connection ended). It returns the function that leaves, an *errBusy
// once the deadline has passed, or errGone.
func (g *gate) enter(gone <-chan struct{}, deadline time.Duration) (leave func(), err error) {
	select {
	case g.slots <- struct{}{}: // free: no queue to join
		return g.leaver(), nil
	default:
	}
	// No refusal on a foreseen wait: under a burst, the first holds
	// (cold caches, a thousand TLS handshakes on two cores) made the
	// foresight ten times too long, and agents were sent away for
	// minutes while the queue drained in seconds.
	g.mu.Lock()
	g.waiting++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	t := time.NewTimer(deadline)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return g.leaver(), nil
	case <-gone:
		return nil, errGone
	case <-t.C:
		return nil, &errBusy{retry: retryAfter(g.expected())}
	}
}

// leaver returns the function that frees the slot taken now, and feeds
// how long it was held to the average the waits are foreseen with.
func (g *gate) leaver() func() {
	start := time.Now()
	var once sync.Once
	return func() {
		once.Do(func() {
			held := time.Since(start)
			g.mu.Lock()
			g.hold += (held - g.hold) / 8
			g.mu.Unlock()
			<-g.slots
		})
	}
}

// retryAfter turns an expected wait into the delay an agent is told: at
// least a second, at most two minutes; the agent adds its own jitter so
// that those refused together do not come back together.
func retryAfter(w time.Duration) time.Duration {
	return min(max(w, time.Second), 2*time.Minute).Round(time.Second)
}
