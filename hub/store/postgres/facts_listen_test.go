package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// openFollower opens a second store on url whose facts follower polls
// only once an hour: whatever it follows within a test, a notification
// or a new listen woke it for.
func openFollower(t *testing.T, url string, opt factsOptions) *Store {
	t.Helper()
	opt.poll = time.Hour
	s, err := Open(context.Background(), url, Options{facts: opt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

// caughtUp reports whether the facts' cursor is at the end of the log.
func caughtUp(t *testing.T, s *Store) bool {
	t.Helper()
	end, cursor, err := s.facts.position(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cursor == end
}

// A batch one store commits wakes the facts follower of another store
// over the same database by notification: the facts follow it at once,
// not at the next poll.
func TestFactsFollowerWokenByCommit(t *testing.T) {
	ctx := context.Background()
	writer, url := open(t)
	writer.facts.close() // the other store's follower alone follows
	dev := enroll(t, writer, "bus-1", "cd54")
	g := newWorkGen(1)
	if _, _, err := writer.ApplyBatch(ctx, dev, g.batch(t), 100); err != nil {
		t.Fatal(err)
	}
	reader := openFollower(t, url, factsOptions{})
	waitFor(t, "the first catch-up, when the follower starts listening", func() bool { return caughtUp(t, reader) })

	notified := reader.facts.notified.Load()
	if _, _, err := writer.ApplyBatch(ctx, dev, g.batch(t), 100); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	waitFor(t, "the facts following the other store's commit", func() bool { return caughtUp(t, reader) })
	if reader.facts.notified.Load() == notified {
		t.Fatal("the follower caught up without a notification")
	}
	t.Logf("facts followed the commit after %v", time.Since(committed))
}

// A follower whose listening connection is lost catches up with what
// committed while nobody listened as soon as it listens again.
func TestFactsFollowerCatchesUpAfterLostListen(t *testing.T) {
	ctx := context.Background()
	writer, url := open(t)
	writer.facts.close()
	dev := enroll(t, writer, "bus-1", "cd54")
	relisten, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	reader := openFollower(t, url, factsOptions{relisten: func() {
		relisten <- struct{}{}
		<-release
	}})
	defer free() // before the store's cleanup closes it
	waitFor(t, "the follower listening", func() bool { return reader.facts.listens.Load() == 1 })

	rows, err := writer.pool.Query(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, factsListener)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil || len(cut) != 1 || !cut[0] {
		t.Fatalf("cutting the listening connection: %v, %v", cut, err)
	}
	select {
	case <-relisten:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not notice its connection was cut")
	}
	if _, _, err := writer.ApplyBatch(ctx, dev, newWorkGen(1).batch(t), 100); err != nil {
		t.Fatal(err)
	}
	if caughtUp(t, reader) {
		t.Fatal("facts caught up while nobody listened and nothing polled")
	}
	free()
	waitFor(t, "the facts catching up once the follower listens again", func() bool { return caughtUp(t, reader) })
	if n := reader.facts.listens.Load(); n != 2 {
		t.Fatalf("%d listens, want 2", n)
	}
}

// A follower woken while another holds the facts' lock (a report's
// catch-up that may stop short of the commit) does the work once the lock
// is free, without waiting for another commit or the poll.
func TestFactsFollowerWaitsForTheLock(t *testing.T) {
	ctx := context.Background()
	writer, url := open(t)
	writer.facts.close()
	dev := enroll(t, writer, "bus-1", "cd54")
	reader := openFollower(t, url, factsOptions{})
	waitFor(t, "the follower listening", func() bool { return reader.facts.listens.Load() == 1 })
	hold, err := writer.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, factsLock); err != nil {
		t.Fatal(err)
	}
	notified := reader.facts.notified.Load()
	if _, _, err := writer.ApplyBatch(ctx, dev, newWorkGen(1).batch(t), 100); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the notification", func() bool { return reader.facts.notified.Load() > notified })
	time.Sleep(2 * factsFollowPause) // the follower finds the lock taken
	if caughtUp(t, reader) {
		t.Fatal("facts caught up under another's lock")
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the facts catching up once the lock is free", func() bool { return caughtUp(t, reader) })
}

// Commits that do not pause leave the follower waiting (factsQuiet), up
// to factsMaxWait: during a burst the batches keep the CPU, and the facts
// follow once the commits pause. Woken at each commit, the follower ran
// all through a burst.
func TestFactsFollowerWaitsForTheCommitsToPause(t *testing.T) {
	ctx := context.Background()
	writer, url := open(t)
	writer.facts.close()
	dev := enroll(t, writer, "bus-1", "cd54")
	g := newWorkGen(1)
	reader := openFollower(t, url, factsOptions{})
	waitFor(t, "the first catch-up", func() bool { return reader.facts.listens.Load() > 0 && caughtUp(t, reader) })

	runs := reader.facts.runs.Load()
	const commits = 12
	start := time.Now()
	for range commits {
		if _, _, err := writer.ApplyBatch(ctx, dev, g.batch(t), 100); err != nil {
			t.Fatal(err)
		}
		time.Sleep(factsQuiet / 6)
	}
	during := reader.facts.runs.Load() - runs
	// A commit every 50 ms for 600 ms and more: one catch-up at most per
	// factsMaxWait, a few more if the machine stalls a commit past
	// factsQuiet — never one a commit.
	if most := int64(time.Since(start)/factsMaxWait) + 3; during > most {
		t.Errorf("%d catch-ups during %d commits without a pause (at most %d expected)", during, commits, most)
	}
	waitFor(t, "the facts once the commits paused", func() bool { return caughtUp(t, reader) })
}
