package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"numeribus/internal/change"
	"numeribus/internal/domain"
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
var ErrConflict = errors.New("conflict with the stored record")

// writeTx is one write transaction: record rows and their changes land
// together or not at all.
type writeTx struct {
	s      *Store
	ctx    context.Context
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
	// absent holds ids known not to be stored (checked in bulk by Save),
	// which need no lookup.
	absent map[ident.ID]bool
	// clockMoved asks the commit to persist the clock even without a
	// new change (remote changes observed, stamps corrected).
	clockMoved bool
	res        Result

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
	w := &writeTx{s: s, ctx: ctx, tx: tx, seq: s.seq, kinds: map[ident.ID]domain.Kind{}, wasErased: map[ident.ID]bool{}}
	if err := w.prepare(); err != nil {
		tx.Rollback()
		return Result{}, err
	}
	fail := func(err error) (Result, error) {
		tx.Rollback()
		s.consents = nil // may hold this transaction's consents
		if w.newEnv {
			s.env = nil // its envkeys row is gone with the rollback
		}
		return Result{}, err
	}
	if err := fn(w); err != nil {
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
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("committing: %w", err))
	}
	if w.seq != s.seq {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
	s.seq = w.seq
	if len(w.erased) > 0 {
		// Old WAL frames held the erased (sealed) bytes: fold them into
		// the file, where secure_delete has zeroed the freed cells.
		if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			s.log.Warn("checkpoint after erasure failed", "err", err)
		}
	}
	return w.res, nil
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
	if err := w.saveState(c.Kind, c.ID, st); err != nil {
		return err
	}
	fields, err := change.Marshal(c.Fields)
	if err != nil {
		return err
	}
	cbody, err := w.s.key.Seal(nil, fields, changeAD(c.Kind, c.ID, c.Seq))
	if err != nil {
		return err
	}
	hbody, hkey, err := w.sealForHub(c.Kind, c.ID, c.Seq, fields)
	if err != nil {
		return err
	}
	if _, err := w.putChange.ExecContext(w.ctx, int64(c.Seq), int64(c.HLC), string(c.Kind), c.ID[:], int(c.Op), cbody, hbody, hkey); err != nil {
		return fmt.Errorf("logging change %d: %w", c.Seq, err)
	}
	if w.res.FirstSeq == 0 {
		w.res.FirstSeq = c.Seq
	}
	w.res.LastSeq = c.Seq
	w.kinds[c.ID] = c.Kind
	return nil
}

// saveState seals and writes a record's state.
func (w *writeTx) saveState(k domain.Kind, id ident.ID, st *merge.State) error {
	raw, err := st.Marshal()
	if err != nil {
		return err
	}
	body, err := w.s.key.Seal(nil, raw, recordAD(k, id))
	if err != nil {
		return err
	}
	if _, err := w.putRec.ExecContext(w.ctx, id[:], string(k), int64(st.Last.TS), st.IsDeleted(), st.IsErased(), body); err != nil {
		return fmt.Errorf("writing record %s: %w", id, err)
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
	if w.absent[id] {
		found = false
		delete(w.absent, id) // written now: a second occurrence must load it
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
			for _, n := range domain.PersonalFields(k) {
				delete(fields, n) // erasure is final for personal fields
			}
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
// nothing is written and the *BatchError lists every problem.
func (s *Store) Save(ctx context.Context, recs ...domain.Record) (Result, error) {
	fields, encErrs := encodeAll(recs)
	return s.write(ctx, func(w *writeTx) error {
		var be BatchError
		if err := w.markAbsent(recs); err != nil {
			return err
		}
		for i, r := range recs {
			err := encErrs[i]
			if err == nil {
				err = w.putEncoded(r, fields[i])
			}
			if err != nil {
				be.Items = append(be.Items, ItemError{i, err})
			}
		}
		for i, r := range recs {
			err := r.Validate(w)
			if w.wasErased[r.RecordID()] {
				err = withoutPersonal(r.Kind(), err)
			}
			if err != nil {
				be.Items = append(be.Items, ItemError{i, err})
			}
		}
		if len(be.Items) > 0 {
			return &be
		}
		return nil
	})
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

// markAbsent finds, in a few queries, which records of a batch are not
// stored yet, so that creating them needs no lookup each.
func (w *writeTx) markAbsent(recs []domain.Record) error {
	if len(recs) < 64 {
		return nil
	}
	w.absent = make(map[ident.ID]bool, len(recs))
	for _, r := range recs {
		w.absent[r.RecordID()] = true
	}
	const chunk = 500
	args := make([]any, 0, chunk)
	for start := 0; start < len(recs); start += chunk {
		part := recs[start:min(start+chunk, len(recs))]
		args = args[:0]
		for _, r := range part {
			id := r.RecordID()
			args = append(args, id[:])
		}
		q := "SELECT id FROM records WHERE id IN (?" + strings.Repeat(",?", len(part)-1) + ")"
		rows, err := w.tx.QueryContext(w.ctx, q, args...)
		if err != nil {
			return fmt.Errorf("checking existing records: %w", err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return err
			}
			var id ident.ID
			copy(id[:], b)
			delete(w.absent, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
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
	var k domain.Kind
	var deleted bool
	err := w.tx.QueryRowContext(w.ctx, `SELECT kind, deleted FROM records WHERE id = ?`, id[:]).Scan(&k, &deleted)
	if err != nil || deleted {
		return ""
	}
	w.kinds[id] = k
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
