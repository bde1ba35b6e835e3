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
// follower leaves the work to the holder, and a report waits briefly for
// the holder's steps, then reads the facts as they are.
//
// Hub seqs are handed out in commit order (logChanges in apply.go): what
// a step sees after the cursor is a prefix of the log, so paging
// "hseq > cursor" never steps over a change committed late.
//
// Every report read first catches up to the end of the log as it stood
// when the read began (readFacts), within readWait (factsReadWait); a background
// follower, polling the log's end, keeps that catch-up short.

var (
	// errFactsBusy: another follower holds the facts' lock.
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
	// end. A poll, not a wake-up after commits: the commit may be another
	// instance's.
	factsPoll = time.Second
	// factsReadWait bounds the catch-up before a report: past it, the
	// report reads the facts as they are (the follower goes on).
	factsReadWait = 5 * time.Second
	// factsBusyPause is how long a report waits before looking again at
	// a cursor another follower is moving.
	factsBusyPause = 20 * time.Millisecond
)

// facts is the follower of one Store.
type facts struct {
	s        *Store
	chunk    atomic.Int64  // changes per step (factsChunk; tests shrink it)
	readWait time.Duration // bound of a report's catch-up (factsReadWait)
	stop     chan struct{} // closed by close
	done     chan struct{} // closed when the background follower ends
	once     sync.Once     // a Store closed twice stops its follower once
}

// startFacts starts the background follower of s; close stops it.
func startFacts(s *Store) *facts {
	f := &facts{s: s, readWait: factsReadWait, stop: make(chan struct{}), done: make(chan struct{})}
	f.chunk.Store(factsChunk)
	go f.follow()
	return f
}

// close stops the background follower and waits for it.
func (f *facts) close() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
}

// follow catches up every factsPoll until close.
func (f *facts) follow() {
	defer close(f.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.stop
		cancel()
	}()
	tick := time.NewTicker(factsPoll)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
		}
		err := f.catchUp(ctx, time.Time{})
		if err != nil && !errors.Is(err, errFactsBusy) && ctx.Err() == nil {
			f.s.log.Warn("facts follower", "err", err)
		}
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
// With a zero deadline it gives up as soon as another follower holds the
// lock (errFactsBusy: that one is doing the work); with a deadline it
// waits for that follower, and stops at the deadline with errFactsBehind.
func (f *facts) catchUp(ctx context.Context, deadline time.Time) error {
	target, cursor, err := f.position(ctx)
	if err != nil {
		return err
	}
	for cursor < target {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("%w: at change %d of %d", errFactsBehind, cursor, target)
		}
		before := cursor
		cursor, err = f.step(ctx)
		if err == nil && cursor == before {
			return nil // nothing more committed after the cursor
		}
		if errors.Is(err, errFactsBusy) {
			if deadline.IsZero() {
				return err
			}
			if cursor, err = f.waitBusy(ctx); err != nil {
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
func (f *facts) waitBusy(ctx context.Context) (int64, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(factsBusyPause):
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
