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
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// pending is a record touched by the batch being applied: loaded once
// (all of them in a few statements), merged in memory as the batch goes,
// written once at the end (in a few multi-row statements).
type pending struct {
	id   ident.ID
	kind domain.Kind
	team string
	st   *merge.State // nil for a record created by one upsert alone (newRecords)
	nf   int          // fields of its first change: the room a new state needs
	// Of a record created by one upsert alone: the change's fields as
	// logged and its stamp, which its state is encoded from.
	fields []byte
	stamp  hlc.Stamp
	dirty  bool // merged a change: to be written
	alone  bool // created by one upsert of the batch alone, so far (newRecords)
	scrub  bool // erased by this batch: scrub its logged changes
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
	return s.applyBatch(ctx, deviceID, changes, nil, bytes, nil)
}

// ApplyPrepared is ApplyBatch of changes with what PrepareBatch prepared
// of them (store.Preparer): used as it is when the device's mark and
// team are those it assumed, else ignored.
func (s *Store) ApplyPrepared(ctx context.Context, deviceID string, changes []change.Change, p store.Prepared, bytes int) (hwm uint64, applied int, err error) {
	pb, _ := p.(*prepared)
	return s.applyBatch(ctx, deviceID, changes, pb, bytes, nil)
}

// ApplyAt is ApplyPrepared if no consent was written since the counter
// stood at *version (store.ConsentVersioner).
func (s *Store) ApplyAt(ctx context.Context, version *int64, deviceID string, changes []change.Change, p store.Prepared, bytes int) (hwm uint64, applied int, err error) {
	pb, _ := p.(*prepared)
	return s.applyBatch(ctx, deviceID, changes, pb, bytes, version)
}

// applyBatch is ApplyBatch, with the batch prepared ahead of its turn
// when pb is not nil, and applied only at the consent counter *version
// when version is not nil (ApplyAt).
func (s *Store) applyBatch(ctx context.Context, deviceID string, changes []change.Change, pb *prepared, bytes int, version *int64) (hwm uint64, applied int, err error) {
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
	if version != nil {
		// In the transaction, which no other write can enter: what the
		// rules read is what the batch is applied beside.
		v, err := consentVersionIn(ctx, tx)
		if err != nil {
			return d.hwm, 0, err
		}
		if v != *version {
			return d.hwm, 0, store.ErrConsentsMoved
		}
	}
	if pb.fits(d, changes) {
		hwm = pb.last
	} else {
		pb.release() // a preparation that does not fit, if any
		// Prepared here: a batch without its preparation, or whose
		// preparation assumed a mark or a team that are no longer so.
		var todo []change.Change
		if todo, hwm, err = d.newChanges(changes); err != nil {
			return d.hwm, 0, err
		}
		if pb, err = s.prepareNew(d.id, d.team, changes, todo); err != nil {
			return d.hwm, 0, err
		}
	}
	defer pb.release()
	fresh, err := s.insertNew(ctx, tx, pb, d)
	if err != nil {
		return d.hwm, 0, err
	}
	applied, erased := pb.applied, pb.erased
	if !fresh {
		// Some record was stored already: the batch again, from the
		// stored states (insertNew left nothing behind; the changes
		// merged were copies).
		todo, _, err := d.newChanges(changes)
		if err != nil {
			return d.hwm, 0, err
		}
		recs, order := emptyRecords(todo, d.team)
		if err := s.load(ctx, tx, recs); err != nil {
			return d.hwm, 0, err
		}
		sc := pb.sc
		applied, erased = s.merge(sc, d, todo, recs)
		if err := s.writeBatch(ctx, tx, sc, d, order); err != nil {
			return d.hwm, 0, err
		}
	}
	if _, err := tx.StmtContext(ctx, s.stUpdDevice).ExecContext(ctx, int64(hwm), bytes, applied, d.num); err != nil {
		return d.hwm, 0, fmt.Errorf("updating device %s: %w", deviceID, err)
	}
	var after int64
	if version != nil {
		if after, err = consentVersionIn(ctx, tx); err != nil {
			return d.hwm, 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return d.hwm, 0, fmt.Errorf("committing batch of device %s: %w", deviceID, err)
	}
	if version != nil {
		*version = after
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

// prepared is a batch merged and encoded as if none of its records were
// stored — what a backlog of new work is, and what saves ApplyBatch a
// look-up per record: the states merged from empty, the rows of the
// records, of the change log and of the consents' persons ready to
// insert. The device's number is left out of the rows (it is filled in
// the writer's turn), so that PrepareBatch needs no database.
type prepared struct {
	sc          *scratch // sc.args: the log's rows; sc.states: the records'
	src         []change.Change
	team        string
	first, last uint64 // the seqs it covers
	subjects    []any  // consent_subjects rows
	scrub       []*pending
	applied     int
	erased      bool
}

// PreparedChanges is how many changes p was prepared from.
func (p *prepared) PreparedChanges() int { return len(p.src) }

// PrepareBatch prepares changes for ApplyPrepared (store.Preparer), as if
// every one were above the device's mark and every record new: the
// merge and the encoding of ApplyBatch's first try, done beside the
// writer. nil when the batch does not follow itself without gap or holds
// a malformed change: ApplyBatch then says why.
func (s *Store) PrepareBatch(deviceID, team string, changes []change.Change) store.Prepared {
	if len(changes) == 0 || changes[0].Seq == 0 {
		return nil
	}
	todo, _, err := store.NewChanges(deviceID, changes[0].Seq-1, changes)
	if err != nil || len(todo) != len(changes) {
		return nil
	}
	pb, err := s.prepareNew(deviceID, team, changes, todo)
	if err != nil {
		return nil
	}
	return pb
}

// prepareNew merges todo, the changes of src to apply, made by deviceID
// of team, into empty states and encodes the rows to insert.
func (s *Store) prepareNew(deviceID, team string, src, todo []change.Change) (*prepared, error) {
	sc := scratchPool.Get().(*scratch)
	d := batchDevice{id: deviceID, team: team}
	recs, order := newRecords(todo, team)
	pb := &prepared{sc: sc, src: src, team: team}
	if len(todo) > 0 {
		pb.first, pb.last = todo[0].Seq, todo[len(todo)-1].Seq
	}
	pb.applied, pb.erased = s.merge(sc, d, todo, recs)
	states := encodeStates(sc.states[:0], order, nil)
	if len(states) > 0 {
		if err, ok := states[0].(error); ok {
			sc.release()
			return nil, err
		}
		sc.states = states
	}
	pb.subjects = consentSubjectArgs(order)
	for _, p := range order {
		if p.scrub {
			pb.scrub = append(pb.scrub, p)
		}
	}
	return pb, nil
}

// fits reports whether pb, prepared ahead, is what changes need now: they
// are the slice it was prepared from, the first is the one after the
// device's mark d.hwm (no retry among them), and the device's team is
// the one it assumed.
func (pb *prepared) fits(d batchDevice, changes []change.Change) bool {
	return pb != nil && pb.sc != nil && len(changes) > 0 && len(pb.src) == len(changes) && &pb.src[0] == &changes[0] &&
		pb.team == d.team && pb.first == d.hwm+1
}

// release gives pb's memory back (scratch.release).
func (pb *prepared) release() {
	if pb != nil && pb.sc != nil {
		pb.sc.release()
		pb.sc = nil
	}
}

// insertNew inserts the prepared batch pb in tx, records first: if every
// one was new (fresh), it logs the changes, records the consents'
// persons and scrubs what an erase of the batch erased, and that is
// all. A record stored already makes it undo what it wrote (a
// savepoint) and report fresh false: the caller applies the batch the
// general way.
func (s *Store) insertNew(ctx context.Context, tx *sql.Tx, pb *prepared, d batchDevice) (fresh bool, err error) {
	sc, num := pb.sc, any(d.num)
	for i := 1; i < len(sc.args); i += 8 {
		sc.args[i] = num // changes.device
	}
	for i := 3; i < len(sc.states); i += 8 {
		sc.states[i] = num // records.origin
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT fresh`); err != nil {
		return false, fmt.Errorf("applying batch of device %s: %w", d.id, err)
	}
	inserted := 0
	err = s.insRecs.chunks(ctx, tx, sc.states, func(st *sql.Stmt, a []any) error {
		res, err := st.ExecContext(ctx, a...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		inserted += int(n)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("writing records of device %s: %w", d.id, err)
	}
	if inserted != len(sc.states)/8 {
		for _, q := range []string{`ROLLBACK TO fresh`, `RELEASE fresh`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return false, fmt.Errorf("applying batch of device %s: %w", d.id, err)
			}
		}
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `RELEASE fresh`); err != nil {
		return false, fmt.Errorf("applying batch of device %s: %w", d.id, err)
	}
	if err := s.insChanges.exec(ctx, tx, sc.args); err != nil {
		return false, fmt.Errorf("logging changes of device %s: %w", d.id, err)
	}
	if err := s.putSubjects.exec(ctx, tx, pb.subjects); err != nil {
		return false, fmt.Errorf("recording the persons of %d consents: %w", len(pb.subjects)/3, err)
	}
	for _, p := range pb.scrub {
		if err := scrub(ctx, tx, p); err != nil {
			return false, err
		}
	}
	return true, nil
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
	// Sized first, so that the buffer is not copied as it grows (the
	// slices handed out would stay valid: they keep the old array). A
	// record created by one change alone most likely logs it as it came
	// (change.Encoded), in none of it.
	need := 0
	for i := range todo {
		if recs[todo[i].ID].st == nil {
			continue
		}
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
		if p.st == nil {
			// Created by c alone (newRecords): c is logged whole, as
			// MergeOne would leave it, and the state is encoded from it.
			c.Device = d.id
			fields, ok := c.Encoded()
			if !ok {
				at := len(buf)
				buf = c.Fields.AppendEncode(buf)
				fields = buf[at:len(buf):len(buf)]
			}
			p.fields, p.stamp, p.dirty = fields, c.Stamp(), true
			args = append(args, teamArg, numArg, int64(c.Seq), kindArg(c.Kind), c.ID[:], int(c.Op), int64(c.HLC), p.fields)
			applied++
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
		if p.st == nil {
			// Created by one upsert alone: neither deleted nor erased.
			state, err := merge.MarshalCreated(p.fields, p.stamp)
			if err != nil {
				return []any{fmt.Errorf("encoding record %s: %w", p.id, err)}
			}
			args = append(args, p.id[:], kindArg(p.kind), p.team, num, int64(p.stamp.TS), false, false, state)
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

// newRecords is emptyRecords for prepareNew, with less to allocate: the
// records share one slice, and one that a single upsert of todo creates
// — most of a backlog — gets no state (its maps were most of the cost):
// merge logs the change as it is and encodeStates encodes the state
// from it (merge.MarshalCreated), the bytes Marshal gives
// (TestPrepareNewIsTheGeneralMerge). A consent gets its state all the
// same: its person is read from it (consentSubjectArgs).
func newRecords(todo []change.Change, team string) (map[ident.ID]*pending, []*pending) {
	recs := make(map[ident.ID]*pending, len(todo))
	all := make([]pending, 0, len(todo)) // never grown: pointers into it stay valid
	order := make([]*pending, 0, len(todo))
	for i := range todo {
		c := &todo[i]
		if p := recs[c.ID]; p != nil {
			p.alone = false
			continue
		}
		_, hasID := c.Fields[domain.IDField]
		alone := c.Op == change.OpUpsert && !hasID && c.Kind != domain.KindConsent
		all = append(all, pending{id: c.ID, kind: c.Kind, team: team, nf: len(c.Fields), alone: alone})
		p := &all[len(all)-1]
		recs[c.ID] = p
		order = append(order, p)
	}
	for _, p := range order {
		if !p.alone {
			p.st = merge.NewStateCap(p.nf)
		}
	}
	return recs, order
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
