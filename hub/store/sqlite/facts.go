package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"numeribus/hub/store/factsql"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// The fact tables (schema/hub/0002_facts.sql) hold the statistical fields
// of every live record in indexed columns, for hub/report. They are
// rewritten from the merged state of each record the change log names,
// following the log (facts_follow.go), so that the indicators always agree
// with the records; an existing hub builds them from its records once, at
// open (backfillFacts).
//
// Facts are derived data and must never stop the sync: a record whose
// state does not decode gets no facts (and a warning), it does not fail
// the batch.

// factTable is a fact table (factsql.Table) and its statements. The
// device column, when present, is filled in SQL from the record's origin,
// the device that created it: AppendRow is given the record id for it.
type factTable struct {
	*factsql.Table
	queries []string // INSERT OR REPLACE for each of rowSizes
	del     string
}

func newFactTable(ft *factsql.Table) *factTable {
	t := &factTable{Table: ft}
	cols := ft.Cols
	if ft.Device {
		cols = cols[:len(cols)-1]
	}
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	if ft.Device {
		group += ", (SELECT origin FROM records WHERE id = ?)"
	}
	group += ")"
	head := "INSERT OR REPLACE INTO " + ft.Name + "(" + strings.Join(ft.Cols, ", ") + ") VALUES "
	for _, n := range rowSizes {
		t.queries = append(t.queries, head+strings.TrimSuffix(strings.Repeat(group+", ", n), ", "))
	}
	t.del = "DELETE FROM " + ft.Name + " WHERE id = ?"
	return t
}

// width is the number of arguments of one row.
func (t *factTable) width() int { return len(t.Cols) }

// factTables are the fact tables, in factsql.Tables' order.
var factTables = func() []*factTable {
	var ts []*factTable
	for _, t := range factsql.Tables {
		ts = append(ts, newFactTable(t))
	}
	return ts
}()

// factTableOf returns the fact table of kind k, nil for kinds without
// facts (consents).
func factTableOf(k domain.Kind) *factTable {
	ft := factsql.TableOf(k)
	for _, t := range factTables {
		if t.Table == ft {
			return t
		}
	}
	return nil
}

// factWriter gathers the fact rows of a transaction, then writes them.
type factWriter struct {
	s      *Store
	rows   map[*factTable][]any
	dels   map[*factTable][]any
	sticky sticky // erased records whose facts stay as they were (facts_sticky.go)
}

func (s *Store) newFactWriter() *factWriter {
	return &factWriter{s: s, rows: map[*factTable][]any{}, dels: map[*factTable][]any{}}
}

// add queues the facts of one record's merged state: a deleted record's
// go, a live one's are rewritten.
func (w *factWriter) add(id ident.ID, k domain.Kind, team string, st *merge.State) {
	t := factTableOf(k)
	if t == nil {
		return
	}
	idArg := append([]byte(nil), id[:]...)
	args, ok := factsql.AppendRow(w.rows[t], w.s.log, id, k, team, idArg, st)
	if !ok {
		w.dels[t] = append(w.dels[t], idArg)
		return
	}
	w.rows[t] = args
	w.sticky.note(k, idArg, st)
}

// flush runs the queued deletes and writes in tx.
func (w *factWriter) flush(ctx context.Context, tx *sql.Tx) error {
	kept, err := w.sticky.read(ctx, tx)
	if err != nil {
		return err
	}
	for _, t := range factTables {
		if ids := w.dels[t]; len(ids) > 0 {
			st, err := tx.PrepareContext(ctx, t.del)
			if err != nil {
				return fmt.Errorf("deleting %s: %w", t.Name, err)
			}
			for _, id := range ids {
				if _, err := st.ExecContext(ctx, id); err != nil {
					st.Close()
					return fmt.Errorf("deleting %s: %w", t.Name, err)
				}
			}
			st.Close()
		}
		if err := t.put(ctx, tx, w.rows[t]); err != nil {
			return err
		}
	}
	return kept.write(ctx, tx)
}

// put writes rows (width() values each) in as few statements as rowSizes
// allow, each prepared once for the transaction.
func (t *factTable) put(ctx context.Context, tx *sql.Tx, args []any) error {
	wd := t.width()
	if len(args)%wd != 0 {
		return fmt.Errorf("writing %s: %d values for rows of %d", t.Name, len(args), wd)
	}
	for i, n := range rowSizes {
		if len(args) < n*wd {
			continue
		}
		st, err := tx.PrepareContext(ctx, t.queries[i])
		if err != nil {
			return fmt.Errorf("writing %s: %w", t.Name, err)
		}
		for len(args) >= n*wd {
			if _, err := st.ExecContext(ctx, args[:n*wd]...); err != nil {
				st.Close()
				return fmt.Errorf("writing %s: %w", t.Name, err)
			}
			args = args[n*wd:]
		}
		st.Close()
	}
	return nil
}

// backfillChunk is the number of records read at a time by backfillFacts.
const backfillChunk = 2000

// backfillFacts builds the facts of every record when facts_meta says so
// (a hub upgraded from schema version 1, or facts reset by hand), in one
// transaction, then clears the flag. Open calls it.
func (s *Store) backfillFacts(ctx context.Context) error {
	var need int
	err := s.w.QueryRowContext(ctx, `SELECT coalesce((SELECT value FROM facts_meta WHERE key = 'backfill'), 0)`).Scan(&need)
	if err != nil {
		return fmt.Errorf("reading facts state: %w", err)
	}
	if need == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("building facts: %w", err)
	}
	defer tx.Rollback()
	n, err := s.rebuildFacts(ctx, tx)
	if err != nil {
		return fmt.Errorf("building facts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM facts_meta WHERE key = 'backfill'`); err != nil {
		return fmt.Errorf("building facts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("building facts: %w", err)
	}
	s.log.Info("facts built from records", "records", n)
	return nil
}

// rebuildFacts deletes every fact and writes those of every live record,
// in tx; it returns the number of records read.
func (s *Store) rebuildFacts(ctx context.Context, tx *sql.Tx) (int, error) {
	for _, t := range factsql.Tables {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.Name); err != nil {
			return 0, err
		}
	}
	type rec struct {
		id    ident.ID
		kind  domain.Kind
		team  string
		state []byte
	}
	last := []byte{}
	total := 0
	for {
		rows, err := tx.QueryContext(ctx, `SELECT id, kind, team, state FROM records
			WHERE id > ? AND deleted = 0 AND kind != 'consent' ORDER BY id LIMIT ?`, last, backfillChunk)
		if err != nil {
			return total, err
		}
		var recs []rec
		for rows.Next() {
			var (
				r   rec
				idb []byte
			)
			if err := rows.Scan(&idb, &r.kind, &r.team, &r.state); err != nil {
				rows.Close()
				return total, err
			}
			copy(r.id[:], idb)
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, err
		}
		if len(recs) == 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE beneficiary_facts SET premiere_activite =
				(SELECT min(day) FROM activity_facts a WHERE a.beneficiaire = beneficiary_facts.id)`); err != nil {
				return total, err
			}
			// The facts now cover the whole change log.
			var end int64
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(hseq), 0) FROM changes`).Scan(&end); err != nil {
				return total, err
			}
			return total, setFactsCursor(ctx, tx, end)
		}
		w := s.newFactWriter()
		for _, r := range recs {
			st, err := merge.Unmarshal(r.state)
			if err != nil {
				s.log.Warn("record without facts: its state does not decode", "record", r.id.String(), "err", err)
				continue
			}
			w.add(r.id, r.kind, r.team, st)
		}
		if err := w.flush(ctx, tx); err != nil {
			return total, err
		}
		total += len(recs)
		last = append(last[:0], recs[len(recs)-1].id[:]...)
	}
}
