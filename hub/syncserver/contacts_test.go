package syncserver

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"numeribus/hub/store"
)

// countingStore counts the writes of contacts; the rest of the store is
// not used by these tests.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls []map[string]time.Time
	seen  int // MarkSeen calls
}

func (s *countingStore) MarkContacts(_ context.Context, seen map[string]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, seen)
	return nil
}

func (s *countingStore) MarkSeen(context.Context, string, store.Seen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen++
	return nil
}

// A thousand open connections, each answering sixty keepalive pings
// between two flushes, cost one store call: each device once, at its last
// contact. A period without contact writes nothing.
func TestContactsAreWrittenOncePerPeriod(t *testing.T) {
	st := &countingStore{}
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := New(st, Options{Now: clock})
	conns := make([]*conn, 1000)
	for i := range conns {
		conns[i] = &conn{s: srv}
		conns[i].device.ID = fmt.Sprintf("device-%04d", i)
	}
	for range 60 {
		mu.Lock()
		now = now.Add(time.Second)
		mu.Unlock()
		for _, c := range conns {
			c.noteContact() // what the pong handler does
		}
	}
	if len(st.calls) != 0 || st.seen != 0 {
		t.Fatalf("%d writes of contacts and %d MarkSeen before any flush, want none", len(st.calls), st.seen)
	}
	srv.flushContacts(context.Background())
	if len(st.calls) != 1 {
		t.Fatalf("%d store calls for one flush, want 1", len(st.calls))
	}
	if got := st.calls[0]; len(got) != len(conns) {
		t.Fatalf("one flush wrote %d devices, want %d", len(got), len(conns))
	}
	for id, at := range st.calls[0] {
		if !at.Equal(clock()) {
			t.Fatalf("%s written at %v, want its last contact %v", id, at, clock())
		}
	}
	srv.flushContacts(context.Background())
	if len(st.calls) != 1 {
		t.Fatalf("a flush without new contacts wrote: %d calls", len(st.calls))
	}
}

// A flush the store refuses keeps its contacts for the next one, and a
// contact noted meanwhile wins over the older one given back.
func TestContactsSurviveAFailedFlush(t *testing.T) {
	var b contacts
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	b.note("a", t0)
	b.note("b", t0)
	taken := b.take()
	b.note("a", t0.Add(time.Minute))
	b.giveBack(taken)
	got := b.take()
	if len(got) != 2 || !got["a"].Equal(t0.Add(time.Minute)) || !got["b"].Equal(t0) {
		t.Fatalf("after a failed flush: %v", got)
	}
}
