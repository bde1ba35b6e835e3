package syncclient

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"numeribus/agent/store"
)

// TLS session resumption (docs/SECURITY.md, "TLS session resumption"): a
// returning agent resumes its TLS session, and the hub does not send its
// certificate again. `agent sync` is one process per sync, so the session
// is also kept in the store (sealed, while unlocked): the next process
// resumes it. Measured over 64 kbit/s and 600 ms of round trip (issue
// #13), a no-op sync went from 2.35 s to 2.29 s with the session alone.
//
// The bytes that remain are those of the key exchange: X25519MLKEM768,
// the post-quantum hybrid Go offers by default, puts 1.2 KB of ML-KEM key
// in the ClientHello and 1.1 KB of ciphertext in the hub's answer, each
// on the way of the sync's three round trips (0.29 s of the 2 s). A
// resumed session does not need them to stay out of reach of a future
// quantum computer: its keys derive from the pre-shared key as well as
// from the key exchange (RFC 8446 §7.1), and that key from the secret of
// the session it resumes. So, when it resumes a session, the agent offers
// X25519 alone; a session is only ever made by a full handshake with
// ML-KEM, or by resuming one that was. If the hub does not take the
// session (restarted, ticket expired), the handshake just made had no
// ML-KEM: the agent closes it before sending anything and shakes hands
// again with the default (resumeOrRedial).

// resumeWithin is how old a session may be for the agent to count on
// resuming it: Go's hubs accept a ticket for 7 days.
const resumeWithin = 6 * 24 * time.Hour

// sessionCache is the TLS session cache of the connections to one pinned
// hub: the sessions of this process (Client.tickets) and, for the next
// process, the last one in the store. Its keys name the certificate as
// well as the hub, so that a session of a hub enrolled before is never
// offered to another.
type sessionCache struct {
	c  *Client
	fp string
}

func (c *Client) sessions(fingerprint []byte) *sessionCache {
	return &sessionCache{c: c, fp: hex.EncodeToString(fingerprint)}
}

func (s *sessionCache) key(name string) string { return name + "\x00" + s.fp }

// Get returns the session for name: this process's, or the store's.
func (s *sessionCache) Get(name string) (*tls.ClientSessionState, bool) {
	cs, _, ok := s.get(name)
	return cs, ok
}

func (s *sessionCache) get(name string) (*tls.ClientSessionState, time.Time, bool) {
	c, key := s.c, s.key(name)
	if cs, ok := c.tickets.Get(key); ok {
		return cs, c.savedAt(key), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := c.Store.TLSSession(ctx, key)
	if err != nil {
		c.Log.Warn("TLS session not read from the store: the handshake sends the certificate again", "err", err)
		return nil, time.Time{}, false
	}
	if b == nil {
		return nil, time.Time{}, false
	}
	cs, at, err := decodeSession(b)
	if err != nil {
		c.Log.Warn("TLS session in the store unreadable: forgotten", "err", err)
		return nil, time.Time{}, false
	}
	c.tickets.Put(key, cs)
	c.saved.Store(key, at)
	return cs, at, true
}

// Put keeps cs for name (nil forgets it), in memory at once and in the
// store after the round's data (saveSessions): TLS hands the session
// over while the round runs, and on a nearly full disk the room left
// goes to the acks.
func (s *sessionCache) Put(name string, cs *tls.ClientSessionState) {
	c, key := s.c, s.key(name)
	c.tickets.Put(key, cs)
	var b []byte
	if cs != nil {
		now := c.Now()
		c.saved.Store(key, now)
		var err error
		if b, err = encodeSession(cs, now); err != nil {
			c.Log.Warn("TLS session not kept", "err", err)
			return
		}
	} else {
		c.saved.Delete(key)
	}
	c.unsaved.Store(key, b)
}

// saveSessions writes to the store the sessions Put kept since the last
// time: bookkeeping, which fails nothing.
func (c *Client) saveSessions(ctx context.Context) {
	c.unsaved.Range(func(k, _ any) bool {
		// Taken as it is now: a session Put since Range read it is the
		// one saved, not dropped unsaved by a Delete of the older one.
		v, ok := c.unsaved.LoadAndDelete(k)
		if !ok {
			return true
		}
		if err := c.Store.SetTLSSession(ctx, k.(string), v.([]byte)); err != nil && !errors.Is(err, store.ErrLocked) {
			c.Log.Warn("TLS session not recorded in the store", "err", err)
		}
		return true
	})
}

// resumable reports whether a session to name is held, recent enough for
// the hub to take it.
func (s *sessionCache) resumable(name string) bool {
	_, at, ok := s.get(name)
	return ok && s.c.Now().Sub(at) < resumeWithin
}

func (c *Client) savedAt(key string) time.Time {
	if v, ok := c.saved.Load(key); ok {
		return v.(time.Time)
	}
	return time.Time{}
}

// encodeSession writes a session as the store keeps it: when it was
// saved (Unix ms), the ticket's length and the ticket, then the session
// state (tls.SessionState.Bytes).
func encodeSession(cs *tls.ClientSessionState, at time.Time) ([]byte, error) {
	ticket, state, err := cs.ResumptionState()
	if err != nil {
		return nil, err
	}
	if state == nil {
		return nil, errors.New("a session without state")
	}
	sb, err := state.Bytes()
	if err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(at.UnixMilli()))
	b = binary.AppendUvarint(b, uint64(len(ticket)))
	b = append(b, ticket...)
	return append(b, sb...), nil
}

func decodeSession(b []byte) (*tls.ClientSessionState, time.Time, error) {
	if len(b) < 8 {
		return nil, time.Time{}, errors.New("session too short")
	}
	at := time.UnixMilli(int64(binary.BigEndian.Uint64(b)))
	n, k := binary.Uvarint(b[8:])
	if k <= 0 || n > uint64(len(b)-8-k) {
		return nil, time.Time{}, errors.New("session ticket cut")
	}
	ticket, rest := b[8+k:8+k+int(n)], b[8+k+int(n):]
	state, err := tls.ParseSessionState(rest)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("session state: %w", err)
	}
	cs, err := tls.NewResumptionState(ticket, state)
	return cs, at, err
}
