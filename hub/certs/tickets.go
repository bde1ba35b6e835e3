package certs

import (
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
)

// Session tickets held by the hub (docs/SECURITY.md, "TLS session
// resumption"). A returning agent resumes its TLS session with a ticket
// the hub gave it: the ticket travels in its ClientHello, and a new one in
// the hub's first flight, beside its Finished — both on the way of a
// sync's three round trips. Go's own tickets carry the session state,
// encrypted and authenticated (109 bytes for ours); here the hub keeps the
// state in memory and the ticket is a random 16-byte handle to it (RFC
// 8446 §4.6.1 allows either): 186 bytes fewer on a resumed sync's
// critical path, 23 ms at 64 kbit/s.
//
// Nothing else changes: the state is Go's (SessionState.Bytes, parsed back
// by ParseSessionState), Go still refuses a session older than 7 days or
// of another cipher suite, and a handle is 128 random bits, which nobody
// guesses. As with Go's ticket keys, which a hub draws at start and keeps
// in memory, a restarted hub resumes no session: its agents shake hands
// in full once. A handle stays valid until it is 7 days old, like Go's
// ticket (an agent that did not keep the next one resumes with it again);
// past ticketCap the oldest are forgotten, so memory stays bounded
// whatever clients do.

// ticketLifetime is how long a handle stays valid: Go's own limit on
// resuming a session.
const ticketLifetime = 7 * 24 * time.Hour

// ticketCap bounds the sessions kept: ~150 bytes each, 10 MB at most.
// Each sync of an agent adds one, and beyond the cap the oldest go
// first: a thousand agents syncing once an hour stay under it for their
// week (168,000 would not fit: 65,536 is about 2.7 days of them); an
// agent whose session went makes a full handshake, a few hundred bytes
// more.
const ticketCap = 1 << 16

// ticketSize is the handle's length: 128 random bits.
const ticketSize = 16

// ticketStore is the sessions the hub's tickets stand for.
type ticketStore struct {
	now func() time.Time

	mu    sync.Mutex
	state map[[ticketSize]byte]ticketEntry
	order [][ticketSize]byte // insertion order, hence expiry order, from head
	head  int
}

type ticketEntry struct {
	state   []byte // tls.SessionState.Bytes
	expires time.Time
}

func newTicketStore(now func() time.Time) *ticketStore {
	return &ticketStore{now: now, state: map[[ticketSize]byte]ticketEntry{}}
}

// wrap keeps the session state and returns its handle (tls.Config.WrapSession).
func (s *ticketStore) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	b, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	var id [ticketSize]byte
	rand.Read(id[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(now)
	s.state[id] = ticketEntry{state: b, expires: now.Add(ticketLifetime)}
	s.order = append(s.order, id)
	return id[:], nil
}

// unwrap returns the session a handle stands for; (nil, nil) for a
// handle it does not hold (expired, forgotten, from before a restart,
// forged): the handshake then goes in full (tls.Config.UnwrapSession).
func (s *ticketStore) unwrap(identity []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	if len(identity) != ticketSize {
		return nil, nil
	}
	id := [ticketSize]byte(identity)
	s.mu.Lock()
	e, ok := s.state[id]
	s.mu.Unlock()
	if !ok || !s.now().Before(e.expires) {
		return nil, nil
	}
	ss, err := tls.ParseSessionState(e.state)
	if err != nil {
		return nil, nil // not ours to fail the connection for: shake hands in full
	}
	return ss, nil
}

// evict forgets expired sessions, and the oldest beyond ticketCap - 1,
// making room for one more.
func (s *ticketStore) evict(now time.Time) {
	for ; s.head < len(s.order); s.head++ {
		id := s.order[s.head]
		if len(s.order)-s.head < ticketCap && now.Before(s.state[id].expires) {
			break
		}
		delete(s.state, id)
	}
	if s.head > len(s.order)/2 { // compact now and then, not at each session
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
}

// len returns how many sessions are kept.
func (s *ticketStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.state)
}
