package syncclient

import (
	"context"
	"sync"
	"time"
)

// ContactSaveEvery is how often, at most, the live loop writes its last
// contact with the hub to the store (for `agent status` and after a
// restart); the UI reads Liveness, kept in memory at every exchange.
const ContactSaveEvery = time.Minute

// Liveness is the loop's connection with the hub as it is now.
type Liveness struct {
	// Connected: Run holds an authenticated connection open.
	Connected bool
	// LastContact is the last time the hub was heard: handshake, acks
	// and pages of a round, keepalive pings. Zero before any.
	LastContact time.Time
}

// liveness is Client's Liveness, updated by the loop and by the reader's
// ping handler, read by the UI.
type liveness struct {
	mu    sync.Mutex
	now   Liveness
	saved time.Time // last contact written to the store, by any connection
}

// Liveness reports the loop's connection: the UI's header shows the agent
// online while one is open, not only for a while after the handshake.
func (c *Client) Liveness() Liveness {
	c.alive.mu.Lock()
	defer c.alive.mu.Unlock()
	return c.alive.now
}

// connected marks an authenticated connection. The store learns of the
// contact at the end of its first round (heardRound), after the round's
// data: the handshake writes nothing.
func (l *liveness) connected(at time.Time) {
	l.mu.Lock()
	l.now = Liveness{Connected: true, LastContact: at}
	l.mu.Unlock()
}

func (l *liveness) disconnected() {
	l.mu.Lock()
	l.now.Connected = false
	l.mu.Unlock()
}

// heard notes a contact at at (memory only: pings come every 20 s).
func (l *liveness) heard(at time.Time) {
	l.mu.Lock()
	if at.After(l.now.LastContact) {
		l.now.LastContact = at
	}
	l.mu.Unlock()
}

// heardRound notes the contact of a round that went through and writes
// it to the store when the last write is ContactSaveEvery old.
func (c *Client) heardRound(ctx context.Context, s *session) error {
	at := c.Now()
	c.alive.heard(at)
	c.alive.mu.Lock()
	due := at.Sub(c.alive.saved) >= ContactSaveEvery
	if due {
		c.alive.saved = at
	}
	c.alive.mu.Unlock()
	if !due {
		return nil
	}
	return c.Store.RecordContact(ctx, at, s.welcome.ClockOffset)
}

// watchPings makes the hub's keepalive pings count as contact. It wraps
// the handler connect set, before the session's reader starts.
func (c *Client) watchPings(s *session) {
	answer := s.ws.PingHandler()
	s.ws.SetPingHandler(func(data string) error {
		c.alive.heard(c.Now())
		return answer(data)
	})
}
