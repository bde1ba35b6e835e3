package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// The fact tables follow the change log instead of riding in ApplyBatch's
// transaction, as on SQLite: ingest is the hot path. facts_meta's 'hseq'
// is the last logged change whose record's facts are written, advanced in
// the same transaction as the facts, so a crash loses nothing.
//
// Several hub instances share one database, so one follower at a time
// moves the cursor: each catch-up step runs under a transaction-scoped
// advisory lock (pg_try_advisory_xact_lock), released by its commit. An
// instance that finds it taken does not queue behind it: its background
// follower looks again now and then until the holder has passed the end of
// the log it was woken for (the holder may be a report's catch-up that
// stops short of it), and a report waits briefly for the holder's steps,
// then reads the facts as they are.
//
// Hub seqs are handed out in commit order (logChanges in apply.go): what
// a step sees after the cursor is a prefix of the log, so paging
// "hseq > cursor" never steps over a change committed late.
//
// Every report read first catches up to the end of the log as it stood
// when the read began (readFacts), within readWait (factsReadWait); a
// background follower keeps that catch-up short. It is woken by the
// commits that log changes, on any instance: each sends a NOTIFY
// (logChannel) that PostgreSQL delivers at commit to the follower's own
// listening connection (facts_listen.go). The wake-up changes when the
// follower looks, not what it reads: it still pages after its cursor up to
// the counter, which only committed transactions moved. Notifications are
// lost while that connection is down, so the follower also catches up
// each time it listens again, and polls every factsPoll as a safety net.

var (
	// errFactsBusy: another follower holds the facts' lock (step).
	errFactsBusy = errors.New("facts are being brought up to date by another hub instance")
	// errFactsBehind: a bounded catch-up ran out of time.
	errFactsBehind = errors.New("facts not caught up in time")
)

// factsLock is the advisory lock key of the facts' follower.
var factsLock = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("numeribus hub facts follower"))
	return int64(h.Sum64())
}()

const (
	// factsChunk bounds the changes one catch-up step covers, so that a
	// long backlog never holds the lock, nor a transaction, for long.
	factsChunk = 5000
	// factsPoll is how often the background follower looks at the log's
	// end when nothing woke it: the safety net under the notifications.
	factsPoll = 10 * time.Second
	// factsReadWait bounds the catch-up before a report: past it, the
	// report reads the facts as they are (the follower goes on).
	factsReadWait = 5 * time.Second
	// factsBusyPause is how long a report waits before looking again at
	// a cursor another follower is moving.
	factsBusyPause = 20 * time.Millisecond
	// factsFollowPause is factsBusyPause for the background follower: it
	// waits for another's work only in the rare case that holder may stop
	// short of the commit that woke it, so it looks less often.
	factsFollowPause = 250 * time.Millisecond
	// factsQuiet and factsMaxWait: after a wake-up the follower waits for
	// the commits to pause factsQuiet, factsMaxWait at most, as SQLite's
	// does. Woken at every commit, it ran all through a burst of a
	// thousand agents: a quarter of the hub's CPU and a share of the
	// server's, taken from the batches being acked.
	factsQuiet   = 300 * time.Millisecond
	factsMaxWait = 2 * time.Second
)

// factsOptions tune a follower; the zero value is production's.
type factsOptions struct {
	poll time.Duration // the safety net's period (factsPoll)
	// relisten, when set, runs before the listening connection is made
	// again after a loss: a test commits while nobody listens.
	relisten func()
}

// facts is the follower of one Store.
type facts struct {
	s        *Store
	opt      factsOptions
	chunk    atomic.Int64  // changes per step (factsChunk; tests shrink it)
	readWait time.Duration // bound of a report's catch-up (factsReadWait)
	wake     chan struct{} // a catch-up is due: a commit, a new listen, unfinished work
	stop     chan struct{} // closed by close
	done     chan struct{} // closed when the background follower ends
	once     sync.Once     // a Store closed twice stops its follower once

	listens  atomic.Int64 // LISTENs that took effect (tests)
	notified atomic.Int64 // notifications received (tests)
	runs     atomic.Int64 // background catch-ups begun (tests)
}

// startFacts starts the background follower of s; close stops it.
func startFacts(s *Store, opt factsOptions) *facts {
	if opt.poll == 0 {
		opt.poll = factsPoll
	}
	f := &facts{s: s, opt: opt, readWait: factsReadWait,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	f.chunk.Store(factsChunk)
	go f.follow()
	return f
}

// close stops the background follower and waits for it.
func (f *facts) close() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
}

// wakeUp asks the follower for a catch-up, without blocking: one pending
// wake-up covers any number of commits.
func (f *facts) wakeUp() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// follow catches up at each wake-up, and every poll period without one,
// until close. Its listener wakes it (listen).
func (f *facts) follow() {
	defer close(f.done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // close ends a catch-up under way, and the listener
		<-f.stop
		cancel()
	}()
	var listener sync.WaitGroup
	listener.Go(func() { f.listen(ctx) })
	defer listener.Wait()
	poll := time.NewTimer(f.opt.poll)
	defer poll.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-f.wake:
			if !f.settle() {
				return
			}
		case <-poll.C:
		}
		f.catchUpFollowing(ctx)
		poll.Reset(f.opt.poll)
	}
}

// settle waits, after a wake-up, for the commits to pause factsQuiet,
// factsMaxWait at most; false when the follower is stopped meanwhile.
func (f *facts) settle() bool { return store.WaitForPause(f.stop, f.wake, factsQuiet, factsMaxWait) }

// catchUpFollowing brings the facts to the end of the log as it stands,
// waiting for another holder of the lock rather than leaving the work to
// it: a report's catch-up that holds it may stop short of the commit that
// woke this follower. Work left when the period ends is taken up again at
// once.
func (f *facts) catchUpFollowing(ctx context.Context) {
	f.runs.Add(1)
	err := f.catchUp(ctx, time.Now().Add(f.opt.poll), factsFollowPause)
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, errFactsBehind):
		f.wakeUp()
	default:
		f.s.log.Warn("facts follower", "err", err)
	}
}

// position returns the end of the committed log and the facts' cursor.
func (f *facts) position(ctx context.Context) (end, cursor int64, err error) {
	err = f.s.pool.QueryRow(ctx, `SELECT (SELECT hseq FROM log_counter WHERE id = 1),
		coalesce((SELECT value FROM facts_meta WHERE key = 'hseq'), 0)`).Scan(&end, &cursor)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the facts' position in the change log: %w", err)
	}
	return end, cursor, nil
}

// catchUp brings the facts up to the end of the log as it stands now.
// While another follower holds the lock it waits, looking at the cursor
// again every pause; it stops at the deadline with errFactsBehind.
func (f *facts) catchUp(ctx context.Context, deadline time.Time, pause time.Duration) error {
	target, cursor, err := f.position(ctx)
	if err != nil {
		return err
	}
	for cursor < target {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: at change %d of %d", errFactsBehind, cursor, target)
		}
		before := cursor
		cursor, err = f.step(ctx)
		if err == nil && cursor == before {
			return nil // nothing more committed after the cursor
		}
		if errors.Is(err, errFactsBusy) {
			if cursor, err = f.waitBusy(ctx, pause); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("bringing facts up to date: %w", err)
		}
	}
	return nil
}

// waitBusy pauses while another follower works, and returns the cursor
// it has reached.
func (f *facts) waitBusy(ctx context.Context, pause time.Duration) (int64, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(pause):
	}
	_, cursor, err := f.position(ctx)
	return cursor, err
}

// step brings the facts forward by at most f.chunk changes, in one
// transaction with the cursor, under the facts' lock; it returns the new
// cursor, or errFactsBusy when another follower holds the lock.
func (f *facts) step(ctx context.Context) (int64, error) {
	tx, err := f.s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, factsLock).Scan(&locked); err != nil {
		return 0, fmt.Errorf("taking the facts' lock: %w", err)
	}
	if !locked {
		return 0, errFactsBusy
	}
	// Read after the lock: the previous holder's cursor is committed.
	from, to, err := stepRange(ctx, tx, f.chunk.Load())
	if err != nil || to == from {
		return from, err
	}
	if err := f.rewrite(ctx, tx, from, to); err != nil {
		return from, err
	}
	if err := setFactsCursor(ctx, tx, to); err != nil {
		return from, err
	}
	if err := tx.Commit(ctx); err != nil {
		return from, fmt.Errorf("committing facts up to change %d: %w", to, err)
	}
	return to, nil
}

// stepRange returns the facts' cursor and the hub seq a step of at most
// chunk changes reaches.
func stepRange(ctx context.Context, tx pgx.Tx, chunk int64) (from, to int64, err error) {
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT value FROM facts_meta WHERE key = 'hseq'), 0)`).Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("reading the facts' cursor: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(hseq), $1) FROM
		(SELECT hseq FROM changes WHERE hseq > $1 ORDER BY hseq LIMIT $2) AS step`, from, chunk).Scan(&to); err != nil {
		return 0, 0, fmt.Errorf("reading the change log after %d: %w", from, err)
	}
	return from, to, nil
}

// rewrite writes the facts of every record changed in (from, to], and
// the first activity of every person they may have moved.
func (f *facts) rewrite(ctx context.Context, tx pgx.Tx, from, to int64) error {
	// The people whose first activity may change: those of the
	// activities before and after this step, and those rewritten.
	people, err := stepPeople(ctx, tx, from, to, nil)
	if err != nil {
		return err
	}
	w, err := f.stepRecords(ctx, tx, from, to)
	if err != nil {
		return err
	}
	if err := w.write(ctx, tx); err != nil {
		return err
	}
	if people, err = stepPeople(ctx, tx, from, to, people); err != nil {
		return err
	}
	return setFirstActivities(ctx, tx, people)
}

// stepRecords reads the merged state of every record changed in
// (from, to] and returns their facts, to write.
func (f *facts) stepRecords(ctx context.Context, tx pgx.Tx, from, to int64) (*factRows, error) {
	rows, err := tx.Query(ctx, `SELECT id, kind, team, origin, state FROM records
		WHERE id IN (SELECT record_id FROM changes WHERE hseq > $1 AND hseq <= $2) AND kind <> $3`,
		from, to, string(domain.KindConsent))
	if err != nil {
		return nil, fmt.Errorf("reading the records of changes %d to %d: %w", from+1, to, err)
	}
	defer rows.Close()
	w := newFactRows(f.s.log)
	for rows.Next() {
		var (
			idb, state []byte
			kind, team string
			origin     int64
			id         ident.ID
		)
		if err := rows.Scan(&idb, &kind, &team, &origin, &state); err != nil {
			return nil, fmt.Errorf("reading the records of changes %d to %d: %w", from+1, to, err)
		}
		copy(id[:], idb)
		st, err := merge.Unmarshal(state)
		if err != nil {
			f.s.log.Warn("record without facts: its state does not decode", "record", id.String(), "err", err)
			continue
		}
		w.add(id, domain.Kind(kind), team, origin, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the records of changes %d to %d: %w", from+1, to, err)
	}
	return w, nil
}

// setFactsCursor records, in tx, that the facts cover the log up to hseq.
func setFactsCursor(ctx context.Context, tx pgx.Tx, hseq int64) error {
	if _, err := tx.Exec(ctx, `INSERT INTO facts_meta(key, value) VALUES ('hseq', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, hseq); err != nil {
		return fmt.Errorf("moving the facts' cursor to %d: %w", hseq, err)
	}
	return nil
}

// stepPeople adds to people the beneficiaries of the activities changed
// in (from, to] as their facts stand now, and the beneficiaries changed.
func stepPeople(ctx context.Context, tx pgx.Tx, from, to int64, people map[ident.ID]struct{}) (map[ident.ID]struct{}, error) {
	if people == nil {
		people = map[ident.ID]struct{}{}
	}
	rows, err := tx.Query(ctx, `SELECT beneficiaire FROM activity_facts
		WHERE id IN (SELECT record_id FROM changes WHERE hseq > $1 AND hseq <= $2 AND kind = 'activity') AND beneficiaire IS NOT NULL
		UNION SELECT record_id FROM changes WHERE hseq > $1 AND hseq <= $2 AND kind = 'beneficiary'`, from, to)
	if err != nil {
		return nil, fmt.Errorf("finding the people of a facts step: %w", err)
	}
	defer rows.Close()
	var idb []byte
	for rows.Next() {
		if err := rows.Scan(&idb); err != nil {
			return nil, fmt.Errorf("finding the people of a facts step: %w", err)
		}
		var id ident.ID
		copy(id[:], idb)
		people[id] = struct{}{}
	}
	return people, rows.Err()
}

// setFirstActivities recomputes, in one statement, the day of the first
// individual activity of each person (an index seek each, on
// activity_facts(beneficiaire, day)).
func setFirstActivities(ctx context.Context, tx pgx.Tx, people map[ident.ID]struct{}) error {
	if len(people) == 0 {
		return nil
	}
	ids := make([][]byte, 0, len(people))
	for id := range people {
		ids = append(ids, append([]byte(nil), id[:]...))
	}
	if _, err := tx.Exec(ctx, `UPDATE beneficiary_facts b
		SET premiere_activite = (SELECT min(day) FROM activity_facts a WHERE a.beneficiaire = b.id)
		WHERE b.id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("first activities: %w", err)
	}
	return nil
}
