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
// busy writes one at a time through a gate (hostWrite); while a guest is
// there, the first write to find the last gap more than guestEvery old
// leaves the lock free for guestPause first, longer than a waiting
// writer's longest retry interval. Hub commands are short: the host slows down
// for their length only, and a stat is all it costs when none is there.
const (
	guestPause   = 250 * time.Millisecond
	guestEvery   = 500 * time.Millisecond
	guestTouch   = 500 * time.Millisecond // how often a guest touches the file
	guestPresent = 3 * guestTouch         // a file touched since then: a guest is there
	// busyTimeout is how long a hub store's write waits for the lock,
	// the host's and the guests' alike.
	busyTimeout = 30 * time.Second
)

// guestFile is the file a guest touches beside the database at path;
// hostFile the one the host touches, so that a guest leaves the facts to
// the host's follower (readTx) rather than contend for the lock with its
// own catch-up.
func guestFile(path string) string { return path + "-guests" }
func hostFile(path string) string  { return path + "-host" }

// startTouching touches file f until stop is closed; the channel it
// returns is closed once it no longer will.
func startTouching(f string, stop <-chan struct{}) <-chan struct{} {
	touch := func() {
		now := time.Now()
		if err := os.Chtimes(f, now, now); err != nil {
			os.WriteFile(f, nil, 0o600)
		}
	}
	touch()
	done := make(chan struct{})
	go func() {
		defer close(done)
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
	return done
}

// leave says a store closed is no longer there: its file is dated back
// beyond guestPresent. Without it, a host paused its writes for
// guestPresent after a `hub enroll` had ended (a quarter of a second at
// an agent's first batch); another guest still there touches the file
// again within guestTouch. The file is left in place: removing it could
// race with another store's touch, and its date is all that is read.
func leave(f string) {
	past := time.Now().Add(-2 * guestPresent)
	os.Chtimes(f, past, past) // the file may be gone: nothing to say then
}

// guestGate is the host's side: its busy writes pass it one at a time
// (they share one SQLite connection anyway), so that a gap waits for one
// write in flight only, not for every writer queued on the connection.
type guestGate struct {
	mu      sync.Mutex
	lastGap time.Time // guarded by mu
}

// hostWrite passes the gate for one busy write transaction of the host,
// after a gap when a guest is there and the last gap is old; the caller
// calls done when its transaction has ended.
func (s *Store) hostWrite() (done func()) {
	if !s.host {
		return func() {}
	}
	g := &s.gate
	g.mu.Lock()
	if time.Since(g.lastGap) > guestEvery && s.guestThere() {
		time.Sleep(guestPause) // the lock is free: a guest's retry gets in
		g.lastGap = time.Now()
	}
	return g.mu.Unlock
}

// guestThere reports whether a guest touched the guest file lately.
func (s *Store) guestThere() bool { return touchedLately(guestFile(s.path)) }

// hostThere reports, to a guest, whether a `hub serve` runs on the file.
func (s *Store) hostThere() bool { return !s.host && touchedLately(hostFile(s.path)) }

func touchedLately(f string) bool {
	fi, err := os.Stat(f)
	return err == nil && time.Since(fi.ModTime()) < guestPresent
}
