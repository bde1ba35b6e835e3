package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/territoire"
)

// Result counts what a Save did.
type Result struct {
	Created, Updated, Unchanged int
	// FirstSeq..LastSeq are the change sequence numbers written (0 when
	// nothing changed).
	FirstSeq, LastSeq uint64
}

// ItemError is the error of one record of a batch.
type ItemError struct {
	Index int // position in the batch, from 0
	Err   error
}

// BatchError lists every failing record of a batch; nothing of the batch
// was written.
type BatchError struct{ Items []ItemError }

// ErrorCode says a batch with invalid records wrote nothing (apperr).
func (e *BatchError) ErrorCode() apperr.Code { return apperr.Invalid }

func (e *BatchError) Error() string {
	if len(e.Items) == 1 {
		return fmt.Sprintf("record %d: %v", e.Items[0].Index+1, e.Items[0].Err)
	}
	return fmt.Sprintf("%d invalid records, first: record %d: %v", len(e.Items), e.Items[0].Index+1, e.Items[0].Err)
}

// Unwrap lets errors.Is and errors.As see the items' errors.
func (e *BatchError) Unwrap() []error {
	out := make([]error, len(e.Items))
	for i, it := range e.Items {
		out[i] = it.Err
	}
	return out
}

// ErrConflict is returned when a write contradicts the stored record
// (an id reused for another kind, an update of a deleted record).
var ErrConflict = apperr.New(apperr.Conflict, "conflict with the stored record")

// writeTx is one write transaction: record rows and their changes land
// together or not at all.
type writeTx struct {
	s      *Store
	ctx    context.Context // for statements: never cancelled
	done   context.Context // the caller's, checked between steps
	tx     *sql.Tx
	seq    uint64
	kinds  map[ident.ID]domain.Kind // records touched in this transaction
	erased []ident.ID
	// wasErased holds records written while already erased: their
	// personal fields are gone for good, so validation must not ask
	// for them (an erased assessment has lost its beneficiary).
	wasErased map[ident.ID]bool
	// newEnv: this transaction recorded the session's envelope key.
	newEnv bool
	// absent holds ids that were not stored when the transaction began
	// (checked in bulk by Save): unless written since (w.kinds), they
	// need no lookup.
	absent map[ident.ID]bool
	// allNew: the store held no record when the transaction began.
	allNew bool
	// clockMoved asks the commit to persist the clock even without a
	// new change (remote changes observed, stamps corrected).
	clockMoved bool
	res        Result

	// indexing: the lookup index follows this transaction's record
	// rows (ix), handed to it once committed (index.go).
	indexing bool
	ix       []ixUpdate

	// Rows deferred by a batch write (see batch.go); nil otherwise.
	pending     []deferred
	cached      map[ident.ID]cachedRecord
	lastPending map[ident.ID]int

	getRec, putRec, putChange *sql.Stmt
}

// write runs fn in one immediate transaction, with the store unlocked.
func (s *Store) write(ctx context.Context, fn func(*writeTx) error) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return Result{}, ErrLocked
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return Result{}, fmt.Errorf("starting write: %w", err)
	}
	// The write lock is held from BEGIN: another process on this store
	// (`agent seed` beside `agent serve`) waits here, and what it
	// committed before is read now.
	if err := s.catchUp(ctx, tx); err != nil {
		tx.Rollback()
		return Result{}, err
	}
	// Statements run without the caller's cancellation: with a
	// cancellable context the driver watches it from a new goroutine for
	// every statement, a third of an import's SQL time. Cancelling still
	// ends the write: database/sql rolls the transaction back, and long
	// writes check w.done between runs.
	w := &writeTx{s: s, ctx: context.WithoutCancel(ctx), done: ctx, tx: tx, seq: s.seq, kinds: map[ident.ID]domain.Kind{}, wasErased: map[ident.ID]bool{},
		indexing: s.indexing()}
	fail := func(err error) (Result, error) {
		tx.Rollback()
		wipeUpdates(w.ix)
		s.consents = nil // may hold this transaction's consents
		if w.newEnv {
			s.env = nil // its envkeys row is gone with the rollback
		}
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// database/sql rolled back on cancellation: the statement
			// that failed next is not the cause.
			return Result{}, fmt.Errorf("write abandoned: %w", cerr)
		}
		return Result{}, err
	}
	if err := w.prepare(); err != nil {
		return fail(err)
	}
	if err := fn(w); err != nil {
		return fail(err)
	}
	if err := w.flush(); err != nil {
		return fail(err)
	}
	if w.seq != s.seq || w.clockMoved {
		if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ?`, w.seq, metaLastSeq); err != nil {
			return fail(fmt.Errorf("updating sequence: %w", err))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ?`, uint64(s.clock.Last()), metaHLC); err != nil {
			return fail(fmt.Errorf("updating clock: %w", err))
		}
	}
	if len(w.erased) > 0 {
		// Counted, so that a backup taken meanwhile knows it is stale
		// (backup.go).
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, 1)
			ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`, metaErasures); err != nil {
			return fail(fmt.Errorf("counting the erasure: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("committing: %w", err))
	}
	if w.indexing {
		s.indexCommitted(w.ctx, w.ix)
	}
	if w.seq != s.seq {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
	s.seq = w.seq
	if len(w.erased) > 0 {
		s.afterErasure(w.ctx) // the WAL and the backups (backup.go)
	}
	return w.res, nil
}

// catchUp takes the last seq and clock from the store as this
// transaction begins, and drops what this process keeps in memory when
// another connection — another process — committed since its last write:
// seqs are allocated, and stamps issued, after every change already
// logged, whoever logged it. One query per transaction.
func (s *Store) catchUp(ctx context.Context, tx *sql.Tx) error {
	var (
		version int64
		seq, h  uint64
		applied int64
	)
	err := tx.QueryRowContext(ctx, `SELECT (SELECT data_version FROM pragma_data_version),
		(SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?),
		(SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?),
		coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0)`,
		metaLastSeq, metaHLC, metaClockApplied).Scan(&version, &seq, &h, &applied)
	if err != nil {
		return fmt.Errorf("reading the sequence: %w", err)
	}
	// data_version changes when another connection commits, never for
	// this one's own commits. The seq is compared too: it cannot miss a
	// write that logged changes, even on a reopened connection.
	foreign := !s.versionKnown || version != s.dataVersion || seq != s.seq
	s.dataVersion, s.versionKnown = version, true
	if !foreign {
		return nil
	}
	if seq > s.seq {
		select { // changes to push that this process did not log
		case s.notify <- struct{}{}:
		default:
		}
	}
	s.seq = seq
	offset := time.Duration(applied) * time.Millisecond
	if offset != s.clock.Offset() {
		// The other process restamped the outbox (RestampPending): start
		// again from its corrected clock, as a restart would.
		s.clock = hlc.New(s.opts.Wall, hlc.Timestamp(h))
		s.clock.SetOffset(offset)
	} else {
		s.clock.Observe(hlc.Timestamp(h))
	}
	// Caches of what the other process may have changed: consents, and
	// the hub (an enrollment). Our envkeys row stays valid, but the hub
	// key it seals to may not be.
	s.consents = nil
	s.hubKnown, s.hubKey = false, nil
	if s.env != nil {
		s.env.env.Key.Wipe()
		s.env = nil
	}
	return nil
}

func (w *writeTx) prepare() error {
	var err error
	if w.getRec, err = w.tx.PrepareContext(w.ctx, `SELECT kind, body FROM records WHERE id = ?`); err != nil {
		return fmt.Errorf("preparing: %w", err)
	}
	if w.putRec, err = w.tx.PrepareContext(w.ctx, `INSERT INTO records(id, kind, hlc, deleted, erased, body) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET hlc = excluded.hlc, deleted = excluded.deleted, erased = excluded.erased, body = excluded.body`); err != nil {
		return fmt.Errorf("preparing: %w", err)
	}
	if w.putChange, err = w.tx.PrepareContext(w.ctx, `INSERT INTO changes(seq, hlc, kind, record_id, op, body, hub_body, hub_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`); err != nil {
		return fmt.Errorf("preparing: %w", err)
	}
	return nil
}

// load returns the stored state of id, or found=false.
func (w *writeTx) load(id ident.ID) (st *merge.State, k domain.Kind, found bool, err error) {
	if c, ok := w.cached[id]; ok {
		return c.st, c.k, true, nil
	}
	var body []byte
	err = w.getRec.QueryRowContext(w.ctx, id[:]).Scan(&k, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("reading record %s: %w", id, err)
	}
	st, err = w.s.openState(k, id, body)
	return st, k, err == nil, err
}

// apply logs c (assigning its seq and stamp) and stores the merged state.
func (w *writeTx) apply(st *merge.State, c *change.Change) error {
	w.seq++
	c.Seq = w.seq
	c.HLC = w.s.clock.Now()
	c.Device = w.s.device
	merge.Apply(st, c.Kind, c)
	if w.cached != nil {
		w.deferApply(st, c)
		w.noteApplied(c)
		return nil
	}
	if err := w.saveState(c.Kind, c.ID, st); err != nil {
		return err
	}
	env, err := w.envelope()
	if err != nil {
		return err
	}
	body, hub, err := w.sealChange(c, env)
	if err != nil {
		return err
	}
	if err := w.logChange(c, body, hub, env); err != nil {
		return err
	}
	w.noteApplied(c)
	return nil
}

// noteApplied counts a logged change in the result.
func (w *writeTx) noteApplied(c *change.Change) {
	if w.res.FirstSeq == 0 {
		w.res.FirstSeq = c.Seq
	}
	w.res.LastSeq = c.Seq
	w.kinds[c.ID] = c.Kind
}

// saveState seals and writes a record's state.
func (w *writeTx) saveState(k domain.Kind, id ident.ID, st *merge.State) error {
	body, err := w.sealState(k, id, st)
	if err != nil {
		return err
	}
	return w.putState(k, id, st, body)
}

// sealState returns the sealed body of a record's merged state. Safe on
// several goroutines (batch.go).
func (w *writeTx) sealState(k domain.Kind, id ident.ID, st *merge.State) ([]byte, error) {
	raw, err := st.Marshal()
	if err != nil {
		return nil, err
	}
	return w.s.key.Seal(nil, raw, recordAD(k, id))
}

// sealChange returns the sealed body of c's fields and, once enrolled
// (env), their copy sealed to the hub. Safe on several goroutines.
func (w *writeTx) sealChange(c *change.Change, env *envelope) (body, hub []byte, err error) {
	fields, err := change.Marshal(c.Fields)
	if err != nil {
		return nil, nil, err
	}
	if body, err = w.s.key.Seal(nil, fields, changeAD(c.Kind, c.ID, c.Seq)); err != nil {
		return nil, nil, err
	}
	if env != nil {
		hub, err = sealHub(env, c.Kind, c.ID, c.Seq, fields)
	}
	return body, hub, err
}

// putState writes a record row. Every record row goes through here: the
// lookup index follows it.
func (w *writeTx) putState(k domain.Kind, id ident.ID, st *merge.State, body []byte) error {
	if _, err := w.putRec.ExecContext(w.ctx, id[:], string(k), int64(st.Last.TS), st.IsDeleted(), st.IsErased(), body); err != nil {
		return fmt.Errorf("writing record %s: %w", id, err)
	}
	if w.indexing {
		if u, ok := ixEntryOfState(k, id, st); ok {
			w.ix = append(w.ix, u)
		}
	}
	return nil
}

// logChange writes a change row.
func (w *writeTx) logChange(c *change.Change, body, hub []byte, env *envelope) error {
	var hubKey any
	if env != nil {
		hubKey = env.id
	}
	if _, err := w.putChange.ExecContext(w.ctx, int64(c.Seq), int64(c.HLC), string(c.Kind), c.ID[:], int(c.Op), body, hub, hubKey); err != nil {
		return fmt.Errorf("logging change %d: %w", c.Seq, err)
	}
	return nil
}

// put writes r as the desired state of its record: the fields that differ
// from the stored state become one upsert change. Writing the same content
// again changes nothing and logs nothing.
func (w *writeTx) put(r domain.Record) error {
	fields, err := encodeRecord(r)
	if err != nil {
		return err
	}
	return w.putEncoded(r, fields)
}

// encodeRecord normalizes r, gives it an id if it has none, and returns
// its field map. It touches no shared state: Save runs it on several
// cores ahead of the writer.
func encodeRecord(r domain.Record) (change.Fields, error) {
	r.Normalize()
	if r.RecordID().IsZero() {
		r.SetRecordID(ident.New())
	}
	return change.Encode(r)
}

// putEncoded is put once the record is encoded.
func (w *writeTx) putEncoded(r domain.Record, fields change.Fields) error {
	id, k := r.RecordID(), r.Kind()
	var st *merge.State
	var stored domain.Kind
	found := true
	if _, inTx := w.kinds[id]; (w.allNew || w.absent[id]) && !inTx {
		found = false // a second occurrence is in w.kinds: loaded
	} else {
		var err error
		if st, stored, found, err = w.load(id); err != nil {
			return err
		}
	}
	diff := fields
	if found {
		if stored != k {
			return fmt.Errorf("%w: id %s is already a %s", ErrConflict, id, stored)
		}
		if st.IsDeleted() {
			return fmt.Errorf("%w: %s %s was deleted", ErrConflict, k, id)
		}
		if st.IsErased() {
			w.wasErased[id] = true
			fields = change.WithoutPersonal(k, fields) // erasure is final for personal fields
		}
		diff = change.Diff(st.Fields, fields)
		if len(diff) == 0 {
			w.res.Unchanged++
			w.kinds[id] = k
			return nil
		}
		w.res.Updated++
	} else {
		st = merge.NewStateCap(len(fields))
		w.res.Created++
	}
	if err := w.apply(st, &change.Change{Kind: k, ID: id, Op: change.OpUpsert, Fields: diff}); err != nil {
		return err
	}
	if c, ok := r.(*domain.Consent); ok && w.s.consents != nil {
		w.s.consents.put(c)
	}
	return nil
}

// Save writes records in one transaction: each is normalized, written
// (created, or updated field by field), then validated against the store
// as it will be after the batch — so a file may list a beneficiary's
// identity before the consent that allows it. If any record is invalid,
// nothing is written and the *BatchError lists every problem. While the
// disk is nearly full it writes nothing and returns a *DiskLowError.
func (s *Store) Save(ctx context.Context, recs ...domain.Record) (Result, error) {
	fields, encErrs := encodeAll(recs)
	one := make(chan encodedRun, 1)
	one <- encodedRun{recs: recs, fields: fields, errs: encErrs}
	close(one)
	return s.write(ctx, func(w *writeTx) error {
		if err := s.roomForRecords(); err != nil {
			return err
		}
		return w.saveRuns(one)
	})
}

// SaveStream is Save for records that arrive in runs on in — a file being
// decoded: each run is encoded, merged and its rows written while the
// next ones are read, all in one transaction committed once in is closed.
// Indexes in a *BatchError count from the first record of the first run.
// To abandon the write (a bad line further down the file), cancel ctx
// before closing in: nothing is written. SaveStream returns as soon as the
// write fails, but in is still read (and dropped) until it is closed, so
// the sender never blocks.
func (s *Store) SaveStream(ctx context.Context, in <-chan []domain.Record) (Result, error) {
	runs := make(chan encodedRun, 1)
	ended := make(chan struct{})
	go func() {
		defer close(runs)
		for recs := range in {
			select {
			case <-ended:
				continue // failed: the rest is dropped
			default:
			}
			fields, errs := encodeAll(recs)
			select {
			case runs <- encodedRun{recs: recs, fields: fields, errs: errs}:
			case <-ended:
			}
		}
	}()
	res, err := s.write(ctx, func(w *writeTx) error {
		if err := s.roomForRecords(); err != nil {
			return err
		}
		return w.saveRuns(runs)
	})
	close(ended)
	return res, err
}

// encodedRun is a run of records and their encoded fields.
type encodedRun struct {
	recs   []domain.Record
	fields []change.Fields
	errs   []error
	absent map[ident.ID]bool // see writeTx.absent; set by saveRuns
	err    error             // looking up absent
}

// saveRuns merges every run into the transaction, then validates the
// whole batch. It consumes runs to the end unless the transaction fails.
func (w *writeTx) saveRuns(encoded <-chan encodedRun) error {
	// Built before any row is deferred, the consent index then follows
	// the batch's consents (put): validation needs no query that could
	// miss an unflushed row.
	idx, err := w.consentIndex()
	if err != nil {
		return fmt.Errorf("reading consents: %w", err)
	}
	// Which records are new is looked up on a read connection, beside the
	// writer: with the write lock held, its snapshot is the store as the
	// transaction began, and w.kinds tells what the batch wrote since.
	// Into an empty store (a laptop's first import) every record is new.
	var stored bool
	if err := w.tx.QueryRowContext(w.ctx, `SELECT EXISTS (SELECT 1 FROM records)`).Scan(&stored); err != nil {
		return fmt.Errorf("reading records: %w", err)
	}
	w.allNew = !stored
	looked := make(chan encodedRun, 1)
	go func() {
		defer close(looked)
		finder := &absentFinder{db: w.s.r}
		defer finder.close()
		for run := range encoded {
			if run.err == nil && stored {
				run.absent, run.err = finder.find(w.ctx, run.recs)
			}
			looked <- run
		}
	}()
	consumed := false
	defer func() {
		if !consumed {
			go func() { // an early return: the lookups end with runs
				for range looked {
				}
			}()
		}
	}()
	runs := looked
	var be BatchError
	var all []domain.Record
	run, ok := <-runs
	for ok {
		if err := w.done.Err(); err != nil {
			return err
		}
		if run.err != nil {
			return run.err
		}
		w.absent = run.absent
		w.deferRows(len(run.recs))
		for i, r := range run.recs {
			err := run.errs[i]
			if err == nil {
				err = w.putEncoded(r, run.fields[i])
			}
			if err != nil {
				be.Items = append(be.Items, ItemError{len(all) + i, err})
			}
		}
		all = append(all, run.recs...)
		// The last run's rows are flushed beside validation, below; the
		// others as soon as they are merged.
		select {
		case run, ok = <-runs:
			if !ok {
				continue
			}
			if err := w.flush(); err != nil {
				return err
			}
		default:
			if err := w.flush(); err != nil {
				return err
			}
			run, ok = <-runs
		}
	}
	consumed = true
	if err := w.done.Err(); err != nil {
		return err
	}
	// Validation sees the store as the batch leaves it (rolled back if
	// anything fails) and runs on the spare cores while the writer
	// inserts the last rows.
	var invalid []ItemError
	if len(all) < 64 { // a form's save: no goroutine to start
		if err := w.flush(); err != nil {
			return err
		}
		invalid = w.validateAll(all, idx)
	} else {
		validated := make(chan struct{})
		go func() {
			defer close(validated)
			invalid = w.validateAll(all, idx)
		}()
		err = w.flush()
		<-validated
		if err != nil {
			return err
		}
	}
	be.Items = append(be.Items, invalid...)
	if len(be.Items) > 0 {
		slices.SortStableFunc(be.Items, func(a, b ItemError) int { return a.Index - b.Index })
		return &be
	}
	return nil
}

// encodeAll encodes records on every core: normalizing and encoding is
// most of a save's CPU, and a file import has thousands of records.
func encodeAll(recs []domain.Record) ([]change.Fields, []error) {
	fields := make([]change.Fields, len(recs))
	errs := make([]error, len(recs))
	workers := min(runtime.GOMAXPROCS(0), 1+len(recs)/256)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(recs); i += workers {
				fields[i], errs[i] = encodeRecord(recs[i])
			}
		}()
	}
	wg.Wait()
	return fields, errs
}

// absentFinder finds, in a few queries on the read pool, which records of
// a run are not stored yet, so that creating them needs no lookup each.
type absentFinder struct {
	db   *sql.DB
	full *sql.Stmt // the query of a whole chunk, prepared once per batch
}

// absentChunk is how many ids one query checks.
const absentChunk = 512

// find returns the ids of recs that are not stored, or nil for runs too
// short to gain from it (every record is looked up).
func (f *absentFinder) find(ctx context.Context, recs []domain.Record) (map[ident.ID]bool, error) {
	if len(recs) < 64 {
		return nil, nil
	}
	absent := make(map[ident.ID]bool, len(recs))
	for _, r := range recs {
		absent[r.RecordID()] = true
	}
	args := make([]any, 0, absentChunk)
	for start := 0; start < len(recs); start += absentChunk {
		part := recs[start:min(start+absentChunk, len(recs))]
		args = args[:0]
		for _, r := range part {
			id := r.RecordID()
			args = append(args, id[:])
		}
		rows, err := f.query(ctx, args)
		if err != nil {
			return nil, fmt.Errorf("checking existing records: %w", err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return nil, err
			}
			var id ident.ID
			copy(id[:], b)
			delete(absent, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return absent, nil
}

func (f *absentFinder) query(ctx context.Context, ids []any) (*sql.Rows, error) {
	q := "SELECT id FROM records WHERE id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	if len(ids) != absentChunk {
		return f.db.QueryContext(ctx, q, ids...)
	}
	if f.full == nil {
		// Parsing a 512-parameter query costs about a millisecond.
		st, err := f.db.PrepareContext(ctx, q)
		if err != nil {
			return nil, err
		}
		f.full = st
	}
	return f.full.QueryContext(ctx, ids...)
}

func (f *absentFinder) close() {
	if f.full != nil {
		f.full.Close()
	}
}

// withoutPersonal drops the problems about personal fields from a
// validation error (nil when none is left).
func withoutPersonal(k domain.Kind, err error) error {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	personal := map[string]bool{}
	for _, n := range domain.PersonalFields(k) {
		f, _ := domain.FieldByNum(k, n)
		personal[f.Name] = true
	}
	kept := *ve
	kept.Problems = nil
	for _, p := range ve.Problems {
		if !personal[p.Field] {
			kept.Problems = append(kept.Problems, p)
		}
	}
	if len(kept.Problems) == 0 {
		return nil
	}
	return &kept
}

// Delete makes a record a tombstone. Its fields stay (sealed) for the
// statistics until the hub has the delete; deletion is final.
func (s *Store) Delete(ctx context.Context, id ident.ID) (Result, error) {
	return s.write(ctx, func(w *writeTx) error {
		st, k, found, err := w.load(id)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%s: %w", id, ErrNotFound)
		}
		if st.IsDeleted() {
			w.res.Unchanged++
			return nil
		}
		w.res.Updated++
		return w.apply(st, &change.Change{Kind: k, ID: id, Op: change.OpDelete})
	})
}

// The validation environment: what Validate sees is the store as this
// transaction leaves it.

func (w *writeTx) CommuneExists(code string) bool {
	_, ok := territoire.Default().Commune(code)
	return ok
}

func (w *writeTx) KindOf(id ident.ID) domain.Kind {
	if k, ok := w.kinds[id]; ok {
		return k
	}
	k := w.storedKind(id)
	if k != "" {
		w.kinds[id] = k
	}
	return k
}

// storedKind returns the kind of a stored live record, or "".
func (w *writeTx) storedKind(id ident.ID) domain.Kind {
	var k domain.Kind
	var deleted bool
	err := w.tx.QueryRowContext(w.ctx, `SELECT kind, deleted FROM records WHERE id = ?`, id[:]).Scan(&k, &deleted)
	if err != nil || deleted {
		return ""
	}
	return k
}

func (w *writeTx) ActiveFinalites(b ident.ID) map[string]bool {
	idx, err := w.consentIndex()
	if err != nil {
		w.s.log.Error("reading consents", "err", err)
		return nil
	}
	return idx.active(b, ident.Nil)
}

var _ domain.Env = (*writeTx)(nil)

// consentIndex returns the beneficiary → consents index, built on first
// use after unlock by decrypting every consent (they are few), then kept
// up to date by put.
func (w *writeTx) consentIndex() (*consentIndex, error) {
	if w.s.consents != nil {
		return w.s.consents, nil
	}
	idx := &consentIndex{by: map[ident.ID]map[ident.ID][]string{}}
	err := w.s.scanKind(w.ctx, w.tx, domain.KindConsent, func(id ident.ID, st *merge.State) error {
		r, err := change.Decode(domain.KindConsent, id, st.Live())
		if err != nil {
			return err
		}
		if !st.IsDeleted() {
			idx.put(r.(*domain.Consent))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w.s.consents = idx
	return idx, nil
}

type consentIndex struct {
	by map[ident.ID]map[ident.ID][]string // beneficiary → consent → active purposes
}

func (x *consentIndex) put(c *domain.Consent) {
	m := x.by[c.Beneficiaire]
	if m == nil {
		m = map[ident.ID][]string{}
		x.by[c.Beneficiaire] = m
	}
	m[c.ID] = c.Active()
}

// active returns the purposes given by b's consents other than except.
func (x *consentIndex) active(b, except ident.ID) map[string]bool {
	out := map[string]bool{}
	for cid, fs := range x.by[b] {
		if cid == except {
			continue
		}
		for _, f := range fs {
			out[f] = true
		}
	}
	return out
}
