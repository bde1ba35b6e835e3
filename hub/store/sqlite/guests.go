package sqlite

import (
	"os"
	"sync"
	"time"
)

// Guests: a `hub` command (enroll, revoke, user add, stats…) run beside
// a busy `hub serve` writes to the same file. SQLite lets one writer in
// at a time and a waiting one retries on a schedule of its own (up to
// every 100 ms), so against a hub committing batches back to back a
// command got in by luck only, and failed with "database is locked" at
// its busy timeout. A guest store says it is there by touching a file
// beside the database while it is open. The host (`hub serve`) runs its
// busy writes through a gate (hostWrite); while a guest is there, the
// first write to find the last gap more than guestEvery old closes the
// gate, waits for the writes in flight, and leaves the lock free for
// guestPause, longer than a waiting writer's longest retry interval,
// before opening it again. Hub commands are short: the host slows down
// for their length only, and a stat is all it costs when none is there.
const (
	guestPause   = 250 * time.Millisecond
	guestEvery   = 500 * time.Millisecond
	guestTouch   = 500 * time.Millisecond // how often a guest touches the file
	guestPresent = 3 * guestTouch         // a file touched since then: a guest is there
)

// guestFile is the file a guest touches beside the database at path.
func guestFile(path string) string { return path + "-guests" }

// startGuest touches the guest file until stop is closed.
func startGuest(path string, stop <-chan struct{}) {
	f := guestFile(path)
	touch := func() {
		now := time.Now()
		if err := os.Chtimes(f, now, now); err != nil {
			os.WriteFile(f, nil, 0o600)
		}
	}
	touch()
	go func() {
		t := time.NewTicker(guestTouch)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				touch()
			}
		}
	}()
}

// guestGate is the host's side: writes hold it shared; a gap holds it
// alone.
type guestGate struct {
	rw      sync.RWMutex
	mu      sync.Mutex // guards lastGap
	lastGap time.Time
}

// hostWrite passes the gate for one busy write transaction of the host,
// leaving a gap first when a guest is there and the last gap is old; the
// caller calls done when its transaction has ended.
func (s *Store) hostWrite() (done func()) {
	if !s.host {
		return func() {}
	}
	g := &s.gate
	if s.guestThere() {
		g.mu.Lock()
		due := time.Since(g.lastGap) > guestEvery
		if due {
			g.lastGap = time.Now()
		}
		g.mu.Unlock()
		if due {
			g.rw.Lock() // waits for the writes in flight, holds the next ones
			time.Sleep(guestPause)
			g.rw.Unlock()
		}
	}
	g.rw.RLock()
	return g.rw.RUnlock
}

// guestThere reports whether a guest touched the guest file lately.
func (s *Store) guestThere() bool {
	fi, err := os.Stat(guestFile(s.path))
	return err == nil && time.Since(fi.ModTime()) < guestPresent
}
