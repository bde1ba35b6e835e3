package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// pending is a record touched by the batch being applied: loaded once
// (all of them in a few statements), merged in memory as the batch goes,
// written once at the end (in a few multi-row statements).
type pending struct {
	id    ident.ID
	kind  domain.Kind
	team  string
	st    *merge.State
	nf    int  // fields of its first change: the room a new state needs
	dirty bool // merged a change: to be written
	scrub bool // erased by this batch: scrub its logged changes
}

// scratch is the memory of one ApplyBatch that is garbage once its
// statements have run (SQLite copies bound values): the change fields
// encoded end to end, and the arguments of the multi-row statements.
// Batches reuse it through scratchPool, so that a steady push does not
// allocate a few hundred kilobytes per batch for the collector.
type scratch struct {
	fields []byte
	args   []any
	states []any
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release clears the references sc holds (arguments point into the
// batch's changes and states) and returns it to the pool. Oversized
// buffers are dropped rather than kept.
func (sc *scratch) release() {
	const maxKept = 4 << 20
	if cap(sc.fields) > maxKept {
		sc.fields = nil
	}
	clear(sc.args[:cap(sc.args)])
	clear(sc.states[:cap(sc.states)])
	sc.fields, sc.args, sc.states = sc.fields[:0], sc.args[:0], sc.states[:0]
	scratchPool.Put(sc)
}

// ApplyBatch merges changes from one device in one transaction.
//
// Changes at or below the device's high-water mark are skipped (a retry);
// the first one above must be hwm+1 and each next one the following
// number, or the whole batch is rolled back with ErrGap. A change to a
// record of another team, or naming another kind than the stored record,
// is skipped with a warning in the log: it still advances the high-water
// mark (so the device is not stuck re-sending it) but is neither merged
// nor logged, nor counted as applied. A change with an unknown kind or
// operation, a zero id or a zero stamp fails the batch. Every change is
// merged as made by deviceID, whatever its Device field says.
//
// The change log keeps no personal field of an erased record: an erase
// scrubs them from the record's earlier changes, and later changes to an
// erased record are logged without them.
//
// An unknown device gives ErrNoDevice; a revoked one an error wrapping
// ErrNoDevice too, as it may no longer write.
func (s *Store) ApplyBatch(ctx context.Context, deviceID string, changes []change.Change, bytes int) (hwm uint64, applied int, err error) {
	s.batchesWaiting.Add(1)
	defer s.hostWrite()()
	tx, err := s.w.BeginTx(ctx, nil)
	s.batchesWaiting.Add(-1)
	if err != nil {
		return 0, 0, fmt.Errorf("applying batch: %w", err)
	}
	defer tx.Rollback()
	d, err := s.batchDeviceOf(ctx, tx, deviceID)
	if err != nil {
		return 0, 0, err
	}
	todo, hwm, err := d.newChanges(changes)
	if err != nil {
		return d.hwm, 0, err
	}
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	applied, erased, fresh, err := s.applyNew(ctx, tx, sc, d, todo)
	if err != nil {
		return d.hwm, 0, err
	}
	if !fresh {
		// Some record was stored already: the batch again, from the
		// stored states (applyNew left nothing behind, and modified
		// its copies of the changes: copies again).
		if todo, _, err = d.newChanges(changes); err != nil {
			return d.hwm, 0, err
		}
		recs, order := emptyRecords(todo, d.team)
		if err := s.load(ctx, tx, recs); err != nil {
			return d.hwm, 0, err
		}
		applied, erased = s.merge(sc, d, todo, recs)
		if err := s.writeBatch(ctx, tx, sc, d, order); err != nil {
			return d.hwm, 0, err
		}
	}
	if _, err := tx.StmtContext(ctx, s.stUpdDevice).ExecContext(ctx, int64(hwm), bytes, applied, d.num); err != nil {
		return d.hwm, 0, fmt.Errorf("updating device %s: %w", deviceID, err)
	}
	if err := tx.Commit(); err != nil {
		return d.hwm, 0, fmt.Errorf("committing batch of device %s: %w", deviceID, err)
	}
	s.checkpointed()
	if erased {
		s.checkpointErased(ctx)
	}
	return hwm, applied, nil
}

// batchDevice is the device a batch comes from, as its transaction read
// it.
type batchDevice struct {
	id   string
	num  int64
	team string
	hwm  uint64 // its high-water mark before the batch
}

// batchDeviceOf reads the device deviceID within tx: ErrNoDevice when unknown,
// an error wrapping it when revoked (it may no longer write).
func (s *Store) batchDeviceOf(ctx context.Context, tx *sql.Tx, deviceID string) (batchDevice, error) {
	d := batchDevice{id: deviceID}
	var (
		hwm     int64
		revoked sql.NullInt64
	)
	err := tx.StmtContext(ctx, s.stDevice).QueryRowContext(ctx, deviceID).Scan(&d.num, &d.team, &hwm, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%w: %s", store.ErrNoDevice, deviceID)
	}
	if err != nil {
		return d, fmt.Errorf("applying batch: reading device %s: %w", deviceID, err)
	}
	if revoked.Valid {
		return d, fmt.Errorf("device %s was revoked on %s and may no longer push: %w",
			deviceID, fromMillis(revoked).Format(time.RFC3339), store.ErrNoDevice)
	}
	d.hwm = uint64(hwm)
	return d, nil
}

// applyNew applies todo in tx as if none of its records were stored —
// what a backlog of new work is, and what saves ApplyBatch a look-up per
// record: the states are merged from empty, the records inserted first,
// and only if every one was new (fresh) are the changes logged. A record
// stored already makes it undo what it wrote (a savepoint) and report
// fresh false: the caller applies the batch the general way.
func (s *Store) applyNew(ctx context.Context, tx *sql.Tx, sc *scratch, d batchDevice, todo []change.Change) (applied int, erased, fresh bool, err error) {
	recs, order := emptyRecords(todo, d.team)
	applied, erased = s.merge(sc, d, todo, recs)
	states := encodeStates(sc.states[:0], order, any(d.num))
	if len(states) > 0 {
		if err, ok := states[0].(error); ok {
			return 0, false, false, err
		}
		sc.states = states
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT fresh`); err != nil {
		return 0, false, false, fmt.Errorf("applying batch of device %s: %w", d.id, err)
	}
	inserted := 0
	err = s.insRecs.chunks(ctx, tx, states, func(st *sql.Stmt, a []any) error {
		res, err := st.ExecContext(ctx, a...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		inserted += int(n)
		return err
	})
	if err != nil {
		return 0, false, false, fmt.Errorf("writing records of device %s: %w", d.id, err)
	}
	if inserted != len(states)/8 {
		for _, q := range []string{`ROLLBACK TO fresh`, `RELEASE fresh`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return 0, false, false, fmt.Errorf("applying batch of device %s: %w", d.id, err)
			}
		}
		return 0, false, false, nil
	}
	if _, err := tx.ExecContext(ctx, `RELEASE fresh`); err != nil {
		return 0, false, false, fmt.Errorf("applying batch of device %s: %w", d.id, err)
	}
	if err := s.insChanges.exec(ctx, tx, sc.args); err != nil {
		return 0, false, false, fmt.Errorf("logging changes of device %s: %w", d.id, err)
	}
	if err := s.putConsentSubjects(ctx, tx, order); err != nil {
		return 0, false, false, err
	}
	for _, p := range order {
		if p.scrub {
			if err := scrub(ctx, tx, p); err != nil {
				return 0, false, false, err
			}
		}
	}
	return applied, erased, true, nil
}

// newChanges returns the changes to apply (store.NewChanges).
func (d batchDevice) newChanges(changes []change.Change) ([]change.Change, uint64, error) {
	return store.NewChanges(d.id, d.hwm, changes)
}

// merge merges each change of todo into its record's state and appends
// its log row to sc.args (its fields encoded end to end in sc.fields).
// It returns how many changes it applied, and whether one erased a
// record.
func (s *Store) merge(sc *scratch, d batchDevice, todo []change.Change, recs map[ident.ID]*pending) (applied int, erased bool) {
	// Sized first, so that the slices handed out stay valid.
	need := 0
	for i := range todo {
		need += 1 + len(todo[i].Fields)*9
		for _, v := range todo[i].Fields {
			need += len(v)
		}
	}
	buf := slices.Grow(sc.fields[:0], need)
	args := slices.Grow(sc.args[:0], len(todo)*8)
	teamArg, numArg := any(d.team), any(d.num) // boxed once for every row
	for i := range todo {
		c := &todo[i]
		p := recs[c.ID]
		if !s.mergeable(d, c, p) {
			continue
		}
		var erases bool
		c.Fields, erases = store.MergeOne(p.st, c, d.id)
		p.dirty = true
		if erases {
			p.scrub, erased = true, true
		}
		// The fields as change.Marshal encodes them, without reflection.
		at := len(buf)
		buf = c.Fields.AppendEncode(buf)
		args = append(args, teamArg, numArg, int64(c.Seq), kindArg(c.Kind), c.ID[:], int(c.Op), int64(c.HLC), buf[at:len(buf):len(buf)])
		applied++
	}
	sc.fields, sc.args = buf, args
	return applied, erased
}

// mergeable reports whether c may change p: a record of the device's team
// and of c's kind. Otherwise it is skipped, with a warning.
func (s *Store) mergeable(d batchDevice, c *change.Change, p *pending) bool {
	if p.team != d.team {
		s.log.Warn("change to a record of another team skipped", "device", d.id, "seq", c.Seq,
			"record", c.ID.String(), "record_team", p.team, "device_team", d.team)
		return false
	}
	if p.kind != c.Kind {
		s.log.Warn("change naming another kind than the record skipped", "device", d.id, "seq", c.Seq,
			"record", c.ID.String(), "kind", string(c.Kind), "stored_kind", string(p.kind))
		return false
	}
	return true
}

// writeBatch logs the merged changes and writes the merged states, then
// scrubs the log of the records erased. Encoding the states is the
// costliest step left: it runs on another core while SQLite logs the
// changes (the states are no longer modified from here on).
func (s *Store) writeBatch(ctx context.Context, tx *sql.Tx, sc *scratch, d batchDevice, order []*pending) error {
	states := make(chan []any, 1)
	go func() { states <- encodeStates(sc.states[:0], order, any(d.num)) }()
	if err := s.insChanges.exec(ctx, tx, sc.args); err != nil {
		<-states
		return fmt.Errorf("logging changes of device %s: %w", d.id, err)
	}
	args := <-states
	if len(args) > 0 {
		if err, ok := args[0].(error); ok {
			return err
		}
		sc.states = args
	}
	if err := s.putRecs.exec(ctx, tx, args); err != nil {
		return fmt.Errorf("writing records of device %s: %w", d.id, err)
	}
	if err := s.putConsentSubjects(ctx, tx, order); err != nil {
		return err
	}
	for _, p := range order {
		if p.scrub {
			if err := scrub(ctx, tx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkpointErased folds the WAL into the file after an erasure, and
// truncates it: old frames still hold the erased fields (a PASSIVE
// checkpoint copies them but leaves them in the WAL file), the file's
// freed cells are zeroed (secure_delete). A background checkpoint running
// would make this one busy: it waits for this process's to end, and
// tries again while another process's (the serving hub's, when a
// command purges beside it) or a reader on an older snapshot is in the
// way, for up to erasedCheckpointFor.
func (s *Store) checkpointErased(ctx context.Context) {
	var (
		busy, frames, done int
		err                error
	)
	deadline := time.Now().Add(erasedCheckpointFor)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		s.ckMu.Lock()
		err = s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done)
		s.ckMu.Unlock()
		if err != nil || busy == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(wait):
			continue
		}
		break
	}
	if err != nil || busy != 0 {
		s.log.Warn("checkpoint after erasure incomplete: erased fields may stay in the WAL until the next checkpoint",
			"err", err, "busy", busy != 0)
	}
}

// erasedCheckpointFor bounds the tries of checkpointErased.
const erasedCheckpointFor = 30 * time.Second

// encodeStates returns the arguments of putRecs for the records that
// merged a change (foreign ones and kind mismatches are left untouched),
// or a lone error.
// args is where to append them (its memory is reused).
func encodeStates(args []any, order []*pending, num any) []any {
	args = slices.Grow(args, len(order)*8)
	for _, p := range order {
		if !p.dirty {
			continue
		}
		state, err := p.st.Marshal()
		if err != nil {
			return []any{fmt.Errorf("encoding record %s: %w", p.id, err)}
		}
		args = append(args, p.id[:], kindArg(p.kind), p.team, num, int64(p.st.Last.TS), p.st.IsDeleted(), p.st.IsErased(), state)
	}
	return args
}

// emptyRecords returns the records todo touches, as if none were stored: each
// empty, of the kind of its first change and in team, in the order of
// their first change.
func emptyRecords(todo []change.Change, team string) (map[ident.ID]*pending, []*pending) {
	recs := make(map[ident.ID]*pending, len(todo))
	order := make([]*pending, 0, len(todo))
	for i := range todo {
		c := &todo[i]
		if recs[c.ID] == nil {
			p := &pending{id: c.ID, kind: c.Kind, team: team, nf: len(c.Fields)}
			recs[c.ID] = p
			order = append(order, p)
		}
	}
	for _, p := range order {
		// Its first change brings its fields: the state's maps get room
		// for them at once.
		p.st = merge.NewStateCap(p.nf)
	}
	return recs, order
}

// load reads the stored state, kind and team of the records of recs that
// are stored, a few statements for the whole batch.
func (s *Store) load(ctx context.Context, tx *sql.Tx, recs map[ident.ID]*pending) error {
	ids := make([]any, 0, len(recs))
	for id := range recs {
		ids = append(ids, recs[id].id[:])
	}
	err := s.getRecs.chunks(ctx, tx, ids, func(st *sql.Stmt, a []any) error {
		rows, err := st.QueryContext(ctx, a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id    ident.ID
				idb   []byte
				kind  domain.Kind
				team  string
				state []byte
			)
			if err := rows.Scan(&idb, &kind, &team, &state); err != nil {
				return err
			}
			copy(id[:], idb)
			p := recs[id]
			if p == nil || len(idb) != len(id) {
				return fmt.Errorf("unexpected record %x", idb)
			}
			if p.st, err = merge.Unmarshal(state); err != nil {
				return fmt.Errorf("record %s: %w", id, err)
			}
			p.kind, p.team = kind, team
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("reading records: %w", err)
	}
	return nil
}

// kindArgs are the kinds as statement arguments, boxed once.
var kindArgs = func() map[domain.Kind]any {
	m := make(map[domain.Kind]any, len(domain.Kinds))
	for _, k := range domain.Kinds {
		m[k] = string(k)
	}
	return m
}()

// kindArg returns k as a statement argument (a TEXT value).
func kindArg(k domain.Kind) any {
	if a, ok := kindArgs[k]; ok {
		return a
	}
	return string(k)
}

// scrub removes the personal fields of an erased record from every
// change of it in the log.
func scrub(ctx context.Context, tx *sql.Tx, p *pending) error {
	return store.ScrubLog(p.kind, p.id, func() (store.Rows, func(), error) {
		rows, err := tx.QueryContext(ctx, `SELECT hseq, fields FROM changes WHERE record_id = ? AND op = ?`, p.id[:], int(change.OpUpsert))
		if err != nil {
			return nil, nil, err
		}
		return rows, func() { rows.Close() }, nil
	}, func(hseq int64, fields []byte) error {
		_, err := tx.ExecContext(ctx, `UPDATE changes SET fields = ? WHERE hseq = ?`, fields, hseq)
		return err
	})
}
