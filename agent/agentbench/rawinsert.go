package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/jsonl"
	"numeribus/internal/sqlitex"
	"numeribus/schema"
)

// The import is compared with the fastest insert of the same rows that
// SQLite allows with the same pragmas (issue #13): not only single-row
// statements, but multi-row ones, one transaction per run of records the
// importer reads or one for all. Every variant is reported; the ratio
// takes the fastest (as internal/e2e does for the hub's ingest).

// rawVariant is one way of inserting the import's rows.
type rawVariant struct {
	name, label string
	perTx       int // records per transaction; 0: one transaction for all
	perStmt     int // rows per INSERT statement
}

// rawVariants are the variants timed, the import's own shape first.
var rawVariants = []rawVariant{
	{"single_one_tx", "single-row INSERTs, one transaction for all", 0, 1},
	{"single_run_tx", fmt.Sprintf("single-row INSERTs, one transaction per %d records (the importer's run)", jsonl.DefaultChunk), jsonl.DefaultChunk, 1},
	{"multi64_run_tx", fmt.Sprintf("64-row INSERTs, one transaction per %d records", jsonl.DefaultChunk), jsonl.DefaultChunk, 64},
	{"multi512_run_tx", fmt.Sprintf("512-row INSERTs, one transaction per %d records", jsonl.DefaultChunk), jsonl.DefaultChunk, 512},
	{"multi64_one_tx", "64-row INSERTs, one transaction for all", 0, 64},
	{"multi512_one_tx", "512-row INSERTs, one transaction for all", 0, 512},
}

// rawCols is the number of columns of each insert.
const rawCols = 6

// rawInsert inserts one row per record (ids and kinds of recs, random
// bodies of bodySize bytes) into the agent schema's records table, and
// as many changes rows when changeSize > 0, as v says, with the store's pragmas
// (sqlitex.OpenWriter). Statements and arguments are prepared before the
// clock starts; it returns the time from the first BEGIN to the last
// COMMIT, and checks the rows are all there.
func rawInsert(ctx context.Context, dir string, recs []domain.Record, bodySize, changeSize int, v rawVariant) (time.Duration, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	w, err := sqlitex.OpenWriter(filepath.Join(dir, "raw.db"))
	if err != nil {
		return 0, err
	}
	defer w.Close()
	// The agent store's own schema: the same tables, keys and checks the
	// import writes to.
	mig, err := sqlitex.Load(schema.Agent, "agent")
	if err != nil {
		return 0, err
	}
	if _, err := sqlitex.Migrate(ctx, w, mig); err != nil {
		return 0, err
	}
	txs := rawArgs(recs, bodySize, changeSize, v.perTx)
	insR := &rawStmts{db: w, head: `INSERT INTO records(id, kind, hlc, deleted, erased, body) VALUES `, perStmt: v.perStmt, byRows: map[int]*sql.Stmt{}}
	insC := &rawStmts{db: w, head: `INSERT INTO changes(seq, hlc, kind, record_id, op, body) VALUES `, perStmt: v.perStmt, byRows: map[int]*sql.Stmt{}}
	defer insR.close()
	defer insC.close()
	for _, a := range txs {
		if err := errors.Join(insR.prepare(ctx, a.records), insC.prepare(ctx, a.changes)); err != nil {
			return 0, err
		}
	}
	runtime.GC()
	t0 := time.Now()
	for _, a := range txs {
		if err := rawTx(ctx, w, insR, insC, a); err != nil {
			return 0, fmt.Errorf("raw insert (%s): %w", v.name, err)
		}
	}
	d := time.Since(t0)
	return d, rawCount(ctx, w, len(recs), changeSize > 0)
}

// rawTxArgs are the arguments of one transaction.
type rawTxArgs struct{ records, changes []any }

// rawArgs returns the arguments of each transaction of perTx records
// (0: one for all).
func rawArgs(recs []domain.Record, bodySize, changeSize, perTx int) []rawTxArgs {
	const spread = 4096
	pool := make([]byte, max(bodySize, changeSize)+spread)
	rand.Read(pool)
	ts := int64(hlc.FromTime(time.Now()))
	if perTx == 0 {
		perTx = max(len(recs), 1)
	}
	var out []rawTxArgs
	for start := 0; start < len(recs); start += perTx {
		var a rawTxArgs
		for i := start; i < min(start+perTx, len(recs)); i++ {
			id := recs[i].RecordID()
			k, off := string(recs[i].Kind()), i%spread
			a.records = append(a.records, id[:], k, ts+int64(i), false, false, pool[off:off+bodySize])
			if changeSize > 0 {
				a.changes = append(a.changes, i+1, ts+int64(i), k, id[:], int(change.OpUpsert), pool[off:off+changeSize])
			}
		}
		out = append(out, a)
	}
	return out
}

// rawTx inserts one transaction's rows.
func rawTx(ctx context.Context, w *sql.DB, insR, insC *rawStmts, a rawTxArgs) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := insR.exec(ctx, tx, a.records); err != nil {
		return err
	}
	if err := insC.exec(ctx, tx, a.changes); err != nil {
		return err
	}
	return tx.Commit()
}

// rawCount checks that the tables hold n rows each.
func rawCount(ctx context.Context, w *sql.DB, n int, changes bool) error {
	var nr, nc int
	if err := w.QueryRowContext(ctx, `SELECT count(*) FROM records`).Scan(&nr); err != nil {
		return err
	}
	if changes {
		if err := w.QueryRowContext(ctx, `SELECT count(*) FROM changes`).Scan(&nc); err != nil {
			return err
		}
	} else {
		nc = n
	}
	if nr != n || nc != n {
		return fmt.Errorf("raw insert: %d records and %d changes rows, want %d", nr, nc, n)
	}
	return nil
}

// rawStmts is an INSERT of up to perStmt rows, prepared for every row
// count it is run with.
type rawStmts struct {
	db      *sql.DB
	head    string
	perStmt int
	byRows  map[int]*sql.Stmt
}

// prepare prepares, before the clock starts, the statements exec will
// run for args.
func (r *rawStmts) prepare(ctx context.Context, args []any) error {
	for rows := len(args) / rawCols; rows > 0; rows -= min(r.perStmt, rows) {
		if _, err := r.stmt(ctx, min(r.perStmt, rows)); err != nil {
			return err
		}
	}
	return nil
}

// stmt returns the statement for n rows, prepared on first use.
func (r *rawStmts) stmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st := r.byRows[n]; st != nil {
		return st, nil
	}
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", rawCols), ", ") + ")"
	st, err := r.db.PrepareContext(ctx, r.head+strings.TrimSuffix(strings.Repeat(group+", ", n), ", "))
	if err != nil {
		return nil, fmt.Errorf("preparing a %d-row insert: %w", n, err)
	}
	r.byRows[n] = st
	return st, nil
}

// exec inserts the rows of args (rawCols values each), perStmt at a time.
func (r *rawStmts) exec(ctx context.Context, tx *sql.Tx, args []any) error {
	bound := map[int]*sql.Stmt{} // bound to tx once: closed with it
	for len(args) > 0 {
		n := min(r.perStmt, len(args)/rawCols)
		st := bound[n]
		if st == nil {
			p, err := r.stmt(ctx, n)
			if err != nil {
				return err
			}
			st = tx.StmtContext(ctx, p)
			bound[n] = st
		}
		if _, err := st.ExecContext(ctx, args[:n*rawCols]...); err != nil {
			return err
		}
		args = args[n*rawCols:]
	}
	return nil
}

func (r *rawStmts) close() {
	for _, st := range r.byRows {
		st.Close()
	}
}
