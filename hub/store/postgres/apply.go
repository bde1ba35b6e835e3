package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// pending is a record a batch touches: loaded once, locked, merged in
// memory, written once.
type pending struct {
	id    ident.ID
	kind  domain.Kind
	team  string
	st    *merge.State
	dirty bool // merged a change: to be written
	scrub bool // erased by this batch: scrub its logged changes
}

// logRow is a change to log, its hub seq given at the end.
type logRow struct {
	c      *change.Change
	fields []byte
}

// ApplyBatch merges changes from one device in one transaction
// (store.Store.ApplyBatch, the rules of store.NewChanges and
// store.MergeOne).
//
// Concurrency, which SQLite's single writer never had to think of: the
// device's row is locked first (FOR UPDATE), so that two instances
// serving one device apply its batches one after the other, the second
// seeing the first's mark; the records are locked in id order (new ones
// inserted first, so that a concurrent batch creating the same record
// waits for this one), so that two devices merging into one record never
// lose a merge; the change log's numbers are taken last (logSeqs). A
// deadlock or serialization failure reported by PostgreSQL retries the
// batch.
func (s *Store) ApplyBatch(ctx context.Context, deviceID string, changes []change.Change, bytes int) (hwm uint64, applied int, err error) {
	return s.ApplyPinned(ctx, nil, deviceID, changes, bytes)
}

// ApplyPinned is ApplyBatch applied only if the consents pinned are, in
// its transaction, still as they were read; it holds them (FOR SHARE)
// until it commits (store.ConsentPinner).
func (s *Store) ApplyPinned(ctx context.Context, pinned []store.Consent, deviceID string, changes []change.Change, bytes int) (hwm uint64, applied int, err error) {
	for attempt := 0; ; attempt++ {
		hwm, applied, err = s.applyBatch(ctx, pinned, deviceID, changes, bytes)
		if !retryable(err) || attempt == 4 {
			return hwm, applied, err
		}
		s.log.Info("batch retried after a conflict with another writer", "device", deviceID, "err", err)
	}
}

func (s *Store) applyBatch(ctx context.Context, pinned []store.Consent, deviceID string, changes []change.Change, nbytes int) (hwm uint64, applied int, err error) {
	tx, err := s.beginBatch(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("applying batch: %w", err)
	}
	defer tx.end(ctx)
	d, err := tx.lockDevice(ctx, deviceID, pinned) // round trip 1, with BEGIN
	if err != nil {
		return d.hwm, 0, err
	}
	if s.afterPins != nil && len(pinned) > 0 {
		s.afterPins(deviceID)
	}
	todo, hwm, err := store.NewChanges(d.id, d.hwm, changes)
	if err != nil {
		return d.hwm, 0, err
	}
	recs, order, err := loadLocked(ctx, tx.c, todo, d.num, d.team) // 2
	if err != nil {
		return d.hwm, 0, err
	}
	rows := s.merge(d, todo, recs)
	var b pgx.Batch
	if err := writeBatch(ctx, tx.c, &b, d, order, rows); err != nil {
		return d.hwm, 0, err
	}
	b.Queue(`UPDATE devices SET hwm = $1, bytes_received = bytes_received + $2, changes_received = changes_received + $3 WHERE num = $4`,
		int64(hwm), nbytes, len(rows), d.num)
	if err := tx.commitWith(ctx, &b, s.beforeCommit, deviceID); err != nil { // 3, with COMMIT
		return d.hwm, 0, fmt.Errorf("writing batch of device %s: %w", deviceID, err)
	}
	return hwm, len(rows), nil
}

// batchTx is a batch's transaction on one pooled connection, driven by
// hand so that BEGIN rides in the same round trip as the device's lock
// and COMMIT in the same as the writes: three round trips a batch —
// lock the device; insert and lock the records; write, log and commit —
// where pgx.Tx took ten (BEGIN, each statement, COPY's two, COMMIT). On
// a loaded machine each round trip also waits for PostgreSQL's backend
// and the hub to be scheduled in turn; and the log counter's row, locked
// from the numbering to the commit, is now held for the time PostgreSQL
// takes to run the last statements, not for several round trips.
type batchTx struct {
	c    *pgxpool.Conn
	open bool // a transaction is open on c: end rolls it back
}

func (s *Store) beginBatch(ctx context.Context) (*batchTx, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &batchTx{c: c}, nil
}

// end rolls back a transaction left open (an error on the way) and
// gives the connection back; a connection whose state is unknown (the
// rollback failed: a cut, a cancelled context) is closed, not reused.
func (t *batchTx) end(ctx context.Context) {
	if t.open {
		if _, err := t.c.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
			t.c.Conn().Close(context.WithoutCancel(ctx))
		}
	}
	t.c.Release()
}

// lockDevice begins the transaction and locks and reads the device
// deviceID, in one round trip: ErrNoDevice when unknown, an error
// wrapping it when revoked (it may no longer write).
//
// The consents pinned, if any, are read and locked (FOR SHARE, in id
// order) in the same round trip: ErrConsentsMoved when one is no longer
// as pinned (store.ConsentPinner).
func (t *batchTx) lockDevice(ctx context.Context, deviceID string, pinned []store.Consent) (batchDevice, error) {
	d := batchDevice{id: deviceID}
	var (
		hwm     int64
		revoked *int64
		found   bool
	)
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(`SELECT num, team, hwm, revoked_at FROM devices WHERE id = $1 FOR UPDATE`, deviceID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			found = true
			if err := rows.Scan(&d.num, &d.team, &hwm, &revoked); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	moved := false
	if len(pinned) > 0 {
		want := make(map[ident.ID][sha256.Size]byte, len(pinned))
		ids := make([][]byte, 0, len(pinned))
		for _, c := range pinned {
			want[c.ID] = sha256.Sum256(c.Stored)
			ids = append(ids, c.ID[:])
		}
		b.Queue(`SELECT id, sha256(state) FROM records WHERE id = ANY($1) ORDER BY id FOR SHARE`, ids).Query(func(rows pgx.Rows) error {
			seen := 0
			for rows.Next() {
				var idb, sum []byte
				if err := rows.Scan(&idb, &sum); err != nil {
					return err
				}
				var id ident.ID
				if len(idb) != len(id) {
					return fmt.Errorf("consent id of %d bytes", len(idb))
				}
				w, ok := want[ident.ID(idb)]
				moved = moved || !ok || !bytes.Equal(sum, w[:])
				seen++
			}
			moved = moved || seen != len(want)
			return rows.Err()
		})
	}
	t.open = true
	if err := t.c.SendBatch(ctx, &b).Close(); err != nil {
		return d, fmt.Errorf("applying batch: reading device %s: %w", deviceID, err)
	}
	d, err := checkDevice(d, found, hwm, revoked)
	if err == nil && moved {
		err = store.ErrConsentsMoved
	}
	return d, err
}

// commitWith sends b and COMMIT in one round trip. With before (tests:
// a slow commit), b goes first, then before runs, then COMMIT: the log's
// numbers are taken and the commit comes late, as under a loaded server.
func (t *batchTx) commitWith(ctx context.Context, b *pgx.Batch, before func(string), who string) error {
	if before != nil {
		if err := t.c.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		before(who)
		b = &pgx.Batch{}
	}
	b.Queue("COMMIT")
	err := t.c.SendBatch(ctx, b).Close()
	if err == nil {
		t.open = false
	}
	return err
}

// retryable reports a conflict PostgreSQL resolved by aborting this
// transaction: serialization failure, deadlock.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// batchDevice is the device a batch comes from, its row locked.
type batchDevice struct {
	id   string
	num  int64
	team string
	hwm  uint64
}

// batchDeviceOf locks and reads the device deviceID in tx (Reject):
// ErrNoDevice when unknown, an error wrapping it when revoked.
func batchDeviceOf(ctx context.Context, tx pgx.Tx, deviceID string) (batchDevice, error) {
	d := batchDevice{id: deviceID}
	var (
		hwm     int64
		revoked *int64
	)
	err := tx.QueryRow(ctx, `SELECT num, team, hwm, revoked_at FROM devices WHERE id = $1 FOR UPDATE`, deviceID).
		Scan(&d.num, &d.team, &hwm, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return checkDevice(d, false, 0, nil)
	}
	if err != nil {
		return d, fmt.Errorf("applying batch: reading device %s: %w", deviceID, err)
	}
	return checkDevice(d, true, hwm, revoked)
}

// checkDevice turns a device row as read into d, or the error of an
// unknown or revoked device.
func checkDevice(d batchDevice, found bool, hwm int64, revoked *int64) (batchDevice, error) {
	if !found {
		return d, fmt.Errorf("%w: %s", store.ErrNoDevice, d.id)
	}
	if revoked != nil {
		return d, fmt.Errorf("device %s was revoked on %s and may no longer push: %w",
			d.id, fromMs(revoked).Format("2006-01-02T15:04:05Z07:00"), store.ErrNoDevice)
	}
	d.hwm = uint64(hwm)
	return d, nil
}

// batchQuerier is what a batch's statements run on: a pgx.Tx (planning
// at the hub) or the connection of a batchTx.
type batchQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// loadLocked inserts the records todo creates (an empty state, the kind
// of their first change, in team, from device num) unless they exist,
// then locks and reads every record todo touches, all in id order.
func loadLocked(ctx context.Context, tx batchQuerier, todo []change.Change, num int64, team string) (map[ident.ID]*pending, []*pending, error) {
	recs := make(map[ident.ID]*pending, len(todo))
	var order []*pending
	for i := range todo {
		c := &todo[i]
		if recs[c.ID] == nil {
			p := &pending{id: c.ID, kind: c.Kind}
			recs[c.ID] = p
			order = append(order, p)
		}
	}
	slices.SortFunc(order, func(a, b *pending) int { return bytes.Compare(a.id[:], b.id[:]) })
	ids := make([][]byte, len(order))
	kinds := make([]string, len(order))
	for i, p := range order {
		ids[i], kinds[i] = p.id[:], string(p.kind)
	}
	empty, err := merge.NewState().Marshal()
	if err != nil {
		return nil, nil, err
	}
	// Insert the new ones and lock them all, in one round trip.
	var b pgx.Batch
	b.Queue(`INSERT INTO records(id, kind, team, origin, hlc, state)
		SELECT id, kind, $3, $4, 0, $5 FROM unnest($1::bytea[], $2::text[]) AS n(id, kind) ORDER BY id
		ON CONFLICT (id) DO NOTHING`, ids, kinds, team, num, empty)
	b.Queue(`SELECT id, kind, team, state FROM records WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id          ident.ID
				idb, state  []byte
				kind, rteam string
			)
			if err := rows.Scan(&idb, &kind, &rteam, &state); err != nil {
				return err
			}
			copy(id[:], idb)
			p := recs[id]
			if p == nil || len(idb) != len(id) {
				return fmt.Errorf("unexpected record %x", idb)
			}
			var err error
			if p.st, err = merge.Unmarshal(state); err != nil {
				return fmt.Errorf("record %s: %w", id, err)
			}
			p.kind, p.team = domain.Kind(kind), rteam
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, nil, fmt.Errorf("reading records: %w", err)
	}
	return recs, order, nil
}

// merge merges each change of todo into its record and returns the rows
// to log.
func (s *Store) merge(d batchDevice, todo []change.Change, recs map[ident.ID]*pending) []logRow {
	rows := make([]logRow, 0, len(todo))
	for i := range todo {
		c := &todo[i]
		p := recs[c.ID]
		if !s.mergeable(d, c, p) {
			continue
		}
		fields, erases := store.MergeOne(p.st, c, d.id)
		p.dirty = true
		p.scrub = p.scrub || erases
		rows = append(rows, logRow{c: c, fields: fields.Encode()})
	}
	// A record erased by this batch keeps no personal field in the rows
	// this batch logs before its erasure either (the log's earlier rows
	// are scrubbed in SQL).
	for i := range rows {
		if p := recs[rows[i].c.ID]; p.scrub {
			rows[i].fields = change.WithoutPersonal(p.kind, rows[i].c.Fields).Encode()
		}
	}
	return rows
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

// writeBatch queues in b the merged states, the consents' persons and,
// last, the changes logged with their hub seqs; the caller adds its own
// statements and sends b. The log of a record this batch erases is
// scrubbed first, on tx (a rare erasure: a read, then its updates).
func writeBatch(ctx context.Context, tx batchQuerier, b *pgx.Batch, d batchDevice, order []*pending, rows []logRow) error {
	for _, p := range order {
		if p.dirty && p.scrub {
			if err := scrub(ctx, tx, p); err != nil {
				return err
			}
		}
	}
	for _, p := range order {
		if !p.dirty {
			continue
		}
		state, err := p.st.Marshal()
		if err != nil {
			return fmt.Errorf("encoding record %s: %w", p.id, err)
		}
		b.Queue(`UPDATE records SET hlc = $2, deleted = $3, erased = $4, state = $5 WHERE id = $1`,
			p.id[:], int64(p.st.Last.TS), p.st.IsDeleted(), p.st.IsErased(), state)
		if p.kind == domain.KindConsent {
			queueConsentSubject(b, p)
		}
	}
	queueLog(b, d, rows)
	return nil
}

// logChannel is the channel of the NOTIFY every transaction that logs
// changes sends: the facts followers of every instance LISTEN to it
// (facts_follow.go).
const logChannel = "numeribus_log"

// queueLog queues the numbering and logging of rows in b. The counter's
// row stays locked until commit: numbers are handed out in commit order,
// so a reader paging after a cursor never steps over a change that
// commits later with a smaller number (docs/ARCHITECTURE.md, "Commit
// order"). Numbering and inserting are one statement. Without the
// counter's row, the changes are numbered NULL, which the log's key
// refuses: the batch fails in PostgreSQL, before the COMMIT pipelined
// after it, rather than committing the device's mark with no change
// logged (a cross join with no counter row inserted nothing).
//
// The transaction also notifies logChannel: PostgreSQL delivers the
// notification at commit, and drops it at a rollback, so a follower woken
// by it finds the changes committed.
func queueLog(b *pgx.Batch, d batchDevice, rows []logRow) {
	if len(rows) == 0 {
		return
	}
	n := len(rows)
	dseqs, hlcs := make([]int64, n), make([]int64, n)
	kinds := make([]string, n)
	ids, fields := make([][]byte, n), make([][]byte, n)
	ops := make([]int16, n)
	for i, r := range rows {
		c := r.c
		dseqs[i], hlcs[i], kinds[i], ids[i], ops[i], fields[i] = int64(c.Seq), int64(c.HLC), string(c.Kind), c.ID[:], int16(c.Op), r.fields
	}
	b.Queue(`SELECT pg_notify($1, '')`, logChannel)
	b.Queue(`WITH n AS (UPDATE log_counter SET hseq = hseq + $1 WHERE id = 1 RETURNING hseq)
		INSERT INTO changes(hseq, team, device, dseq, kind, record_id, op, hlc, fields)
		SELECT n.hseq - $1 + r.ord, $2, $3, r.dseq, r.kind, r.id, r.op, r.hlc, r.fields
		FROM unnest($4::bigint[], $5::text[], $6::bytea[], $7::smallint[], $8::bigint[], $9::bytea[])
			WITH ORDINALITY AS r(dseq, kind, id, op, hlc, fields, ord)
			LEFT JOIN n ON true
		ORDER BY r.ord`, n, d.team, d.num, dseqs, kinds, ids, ops, hlcs, fields)
}

// scrub removes the personal fields of an erased record from every
// change of it in the log.
func scrub(ctx context.Context, tx batchQuerier, p *pending) error {
	return store.ScrubLog(p.kind, p.id, func() (store.Rows, func(), error) {
		rows, err := tx.Query(ctx, `SELECT hseq, fields FROM changes WHERE record_id = $1 AND op = $2`, p.id[:], int16(change.OpUpsert))
		if err != nil {
			return nil, nil, err
		}
		return rows, rows.Close, nil
	}, func(hseq int64, fields []byte) error {
		_, err := tx.Exec(ctx, `UPDATE changes SET fields = $1 WHERE hseq = $2`, fields, hseq)
		return err
	})
}

// Reject records changes the hub refused (store.Store.Reject): each moves
// the device's mark as an applied change would.
func (s *Store) Reject(ctx context.Context, deviceID string, rs []store.Rejected) (hwm uint64, err error) {
	var start uint64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := batchDeviceOf(ctx, tx, deviceID)
		if err != nil {
			return err
		}
		start, hwm = d.hwm, d.hwm
		for _, r := range rs {
			if r.Seq <= hwm {
				continue
			}
			if r.Seq != hwm+1 {
				return fmt.Errorf("%w: device %s sent change %d after %d", store.ErrGap, deviceID, r.Seq, hwm)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO rejected(device, dseq, hlc, kind, record_id, op, code, reason, at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, d.num, int64(r.Seq), int64(r.HLC), string(r.Kind), r.ID[:], int16(r.Op),
				r.Code, r.Reason, r.At.UnixMilli()); err != nil {
				return fmt.Errorf("recording refused change %d of device %s: %w", r.Seq, deviceID, err)
			}
			hwm = r.Seq
		}
		if hwm == start {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE devices SET hwm = $1 WHERE num = $2`, int64(hwm), d.num); err != nil {
			return fmt.Errorf("updating device %s: %w", deviceID, err)
		}
		return nil
	})
	if err != nil {
		return start, err
	}
	return hwm, nil
}

// NoteRefused records refusals of changes taken in part, without moving
// the mark (store.Store.NoteRefused).
func (s *Store) NoteRefused(ctx context.Context, deviceID string, rs []store.Rejected) error {
	if len(rs) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, r := range rs {
		b.Queue(`INSERT INTO rejected(device, dseq, hlc, kind, record_id, op, code, reason, at)
			SELECT num, $2, $3, $4, $5, $6, $7, $8, $9 FROM devices WHERE id = $1
			ON CONFLICT (device, dseq) DO NOTHING`, deviceID, int64(r.Seq), int64(r.HLC), string(r.Kind), r.ID[:], int16(r.Op),
			r.Code, r.Reason, r.At.UnixMilli())
	}
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("recording refusals of device %s: %w", deviceID, err)
	}
	return nil
}

// Refusals returns the refusals recorded for the device's changes with
// after < seq <= upTo (store.Store.Refusals).
func (s *Store) Refusals(ctx context.Context, deviceID string, after, upTo uint64, max int) ([]store.Rejected, error) {
	rows, err := s.pool.Query(ctx, `SELECT * FROM (SELECT r.dseq, r.hlc, r.kind, r.record_id, r.op::bigint, r.code, r.reason, r.at
		FROM rejected r JOIN devices d ON d.num = r.device
		WHERE d.id = $1 AND r.dseq > $2 AND r.dseq <= $3 ORDER BY r.dseq DESC LIMIT $4) last ORDER BY dseq`,
		deviceID, int64(after), int64(min(upTo, 1<<62)), max)
	if err != nil {
		return nil, fmt.Errorf("reading refusals of device %s: %w", deviceID, err)
	}
	defer rows.Close()
	return store.ScanRejected(rows)
}
