package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// The fact tables follow the hub's change log instead of riding in
// ApplyBatch's transaction: ingest is the hot path — a vehicle back in
// coverage pushes days of work at once — and writing a fact row per
// record there cost about 40 % of its throughput. facts_meta.hseq is the
// last logged change whose record's facts are written, advanced in the
// same transaction as the facts, so a crash loses nothing: the next
// catch-up resumes from it.
//
// Every report read first catches up to the end of the log (readTx), so
// the dashboard, `hub stats` and the exports always agree with the
// records committed before they started. A background follower, woken
// after commits and waiting for a pause in the pushes, keeps that
// catch-up short.

const (
	// factsChunk bounds the changes one catch-up transaction covers, so
	// that a long backlog never holds the writer for long: about 60 µs a
	// change, 30 ms a step. (At 5,000 a step held the writer 300 ms, and
	// twenty steps in a row stalled a morning's arrivals for 6 s: the
	// batches queued behind them got one turn a step.)
	factsChunk = 500
	// factsQuiet is how long the follower waits for the pushes to pause,
	// factsMaxWait how long at most it lets facts lag behind: pushes that
	// never pause (a morning's arrivals) leave it a few seconds of log to
	// write, never half a minute's.
	factsQuiet   = 300 * time.Millisecond
	factsMaxWait = 2 * time.Second
	// factsYield is how long at most the background follower lets the
	// batches waiting for the writer go first, before each step: sync
	// acks come before the dashboard's figures, but a hub never free of
	// pushes still gets its facts written.
	factsYield = 200 * time.Millisecond
)

// catchUpFacts writes the facts of every record changed since the facts'
// cursor, in chunks: for a reader, which needs them now.
func (s *Store) catchUpFacts(ctx context.Context) error { return s.followLog(ctx, false) }

// followLog is catchUpFacts; yield (the background follower) lets the
// batches waiting for the writer pass before each step.
func (s *Store) followLog(ctx context.Context, yield bool) error {
	var end int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(hseq), 0) FROM changes`).Scan(&end); err != nil {
		return fmt.Errorf("reading the change log's end: %w", err)
	}
	if end <= s.factsAt.Load() {
		return nil
	}
	s.factsMu.Lock()
	defer s.factsMu.Unlock()
	for s.factsAt.Load() < end {
		if yield {
			s.yieldToBatches(ctx)
		}
		if err := s.factsStep(ctx); err != nil {
			return fmt.Errorf("bringing facts up to date: %w", err)
		}
	}
	return nil
}

// yieldToBatches waits, factsYield at most, until no batch is waiting
// for the writer. The writer's gate is a mutex, which does not queue its
// waiters in order: without this, a follower going from step to step let
// one batch in between, while more arrived.
func (s *Store) yieldToBatches(ctx context.Context) {
	const poll = 2 * time.Millisecond
	for waited := time.Duration(0); s.batchesWaiting.Load() > 0 && waited < factsYield && ctx.Err() == nil; waited += poll {
		time.Sleep(poll)
	}
}

// factsStep brings the facts forward by at most factsChunk changes, in
// one transaction with the cursor.
func (s *Store) factsStep(ctx context.Context) error {
	defer s.hostWrite()()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var from, to int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT value FROM facts_meta WHERE key = 'hseq'), 0)`).Scan(&from); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(hseq), ?) FROM (SELECT hseq FROM changes WHERE hseq > ? ORDER BY hseq LIMIT ?)`,
		from, from, factsChunk).Scan(&to); err != nil {
		return err
	}
	if to > from {
		// The people whose first activity may change: those of the
		// activities before and after this step, and those rewritten.
		people, err := stepPeople(ctx, tx, from, to, nil)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, kind, team, state FROM records
			WHERE id IN (SELECT record_id FROM changes WHERE hseq > ? AND hseq <= ?)`, from, to)
		if err != nil {
			return err
		}
		w := s.newFactWriter()
		for rows.Next() {
			var (
				idb, state []byte
				kind, team string
				id         ident.ID
			)
			if err := rows.Scan(&idb, &kind, &team, &state); err != nil {
				rows.Close()
				return err
			}
			copy(id[:], idb)
			st, err := merge.Unmarshal(state)
			if err != nil {
				s.log.Warn("record without facts: its state does not decode", "record", id.String(), "err", err)
				continue
			}
			w.add(id, domain.Kind(kind), team, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := w.flush(ctx, tx); err != nil {
			return err
		}
		if people, err = stepPeople(ctx, tx, from, to, people); err != nil {
			return err
		}
		if err := setFirstActivities(ctx, tx, people); err != nil {
			return err
		}
		if err := setFactsCursor(ctx, tx, to); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	s.factsAt.Store(to)
	return nil
}

// setFactsCursor records, in tx, that the facts cover the log up to hseq.
func setFactsCursor(ctx context.Context, tx *sql.Tx, hseq int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO facts_meta(key, value) VALUES ('hseq', ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, hseq)
	return err
}

// startFactsFollower starts the background catch-up; Close stops it.
func (s *Store) startFactsFollower() {
	s.factsKick = make(chan struct{}, 1)
	s.factsStop = make(chan struct{})
	s.factsDone = make(chan struct{})
	go s.factsFollower()
}

// factsChanged wakes the follower after a commit.
func (s *Store) factsChanged() {
	if s.factsKick == nil {
		return
	}
	select {
	case s.factsKick <- struct{}{}:
	default:
	}
}

func (s *Store) factsFollower() {
	defer close(s.factsDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.factsStop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-s.factsStop:
			return
		case <-s.factsKick:
		}
		// Wait for a pause in the pushes, but not forever.
		if !store.WaitForPause(s.factsStop, s.factsKick, factsQuiet, factsMaxWait) {
			return
		}
		if err := s.followLog(ctx, true); err != nil && ctx.Err() == nil {
			s.log.Warn("facts follower", "err", err)
		}
	}
}

// stepPeople adds to people the beneficiaries of the activities changed
// in (from, to] as their facts stand now, and the beneficiaries changed.
func stepPeople(ctx context.Context, tx *sql.Tx, from, to int64, people map[ident.ID]struct{}) (map[ident.ID]struct{}, error) {
	if people == nil {
		people = map[ident.ID]struct{}{}
	}
	rows, err := tx.QueryContext(ctx, `SELECT beneficiaire FROM activity_facts
		WHERE id IN (SELECT record_id FROM changes WHERE hseq > ?1 AND hseq <= ?2 AND kind = 'activity') AND beneficiaire IS NOT NULL
		UNION SELECT record_id FROM changes WHERE hseq > ?1 AND hseq <= ?2 AND kind = 'beneficiary'`, from, to)
	if err != nil {
		return nil, fmt.Errorf("finding the people of a facts step: %w", err)
	}
	defer rows.Close()
	var idb []byte
	for rows.Next() {
		if err := rows.Scan(&idb); err != nil {
			return nil, err
		}
		var id ident.ID
		copy(id[:], idb)
		people[id] = struct{}{}
	}
	return people, rows.Err()
}

// setFirstActivities recomputes the day of the first individual activity
// of each person (an index seek each, on activity_facts(beneficiaire, day)).
func setFirstActivities(ctx context.Context, tx *sql.Tx, people map[ident.ID]struct{}) error {
	if len(people) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `UPDATE beneficiary_facts
		SET premiere_activite = (SELECT min(day) FROM activity_facts WHERE beneficiaire = ?1) WHERE id = ?1`)
	if err != nil {
		return fmt.Errorf("first activities: %w", err)
	}
	defer st.Close()
	for id := range people {
		if _, err := st.ExecContext(ctx, id[:]); err != nil {
			return fmt.Errorf("first activities: %w", err)
		}
	}
	return nil
}
