package syncserver

import (
	"context"
	"sync"
	"time"
)

// An agent in `agent serve` keeps one connection open for hours; its last
// seen, written at the handshake only, would show the connection's start
// and the dashboard would call a live device late. Each keepalive pong and
// each round is therefore a contact, noted in memory and written by
// KeepContacts every Options.ContactEvery for every device heard, in one
// store call: a thousand idle connections cost one write a minute, not
// one per pong, and the single SQLite writer stays for the pushes.

// contacts holds the last contact of each device heard since the last
// flush.
type contacts struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// note records a contact of device at at; a later one replaces it.
func (b *contacts) note(device string, at time.Time) {
	if device == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = map[string]time.Time{}
	}
	if at.After(b.seen[device]) {
		b.seen[device] = at
	}
}

// take returns the contacts noted since the last take, and forgets them.
func (b *contacts) take() map[string]time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.seen
	b.seen = nil
	return out
}

// giveBack notes again contacts a failed flush did not write, unless a
// later contact of the same device was noted meanwhile.
func (b *contacts) giveBack(seen map[string]time.Time) {
	for id, at := range seen {
		b.note(id, at)
	}
}

// noteContact records a contact on c's connection (a pong, a round):
// written at the next flush, not now.
func (c *conn) noteContact() {
	c.s.contacts.note(c.deviceID(), c.s.opt.Now())
}

// KeepContacts writes the contacts noted on open connections every
// Options.ContactEvery until ctx ends; Shutdown writes the last ones.
func (s *Server) KeepContacts(ctx context.Context) {
	t := time.NewTicker(s.opt.ContactEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flushContacts(ctx)
		}
	}
}

// flushContacts writes the contacts noted since the last flush in one
// store call. On failure they are kept for the next one: a contact is
// bookkeeping, and losing a minute of it fails nothing.
func (s *Server) flushContacts(ctx context.Context) {
	seen := s.contacts.take()
	if len(seen) == 0 {
		return
	}
	if err := s.store.MarkContacts(ctx, seen); err != nil {
		s.log.Warn("recording contacts on open connections", "devices", len(seen), "err", err)
		s.contacts.giveBack(seen)
	}
}
