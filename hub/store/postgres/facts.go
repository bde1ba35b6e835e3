package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/store/factsql"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// The fact tables (schema/hubpg/0001_init.sql, the same columns as on
// SQLite) hold the statistical fields of every live record in indexed
// columns, for hub/report. They are rewritten from the merged state of
// each record the change log names, following the log (facts_follow.go),
// with the backend-neutral rules of hub/report (ActivityFactOf and the
// other FactOf functions): this file only writes their results down.
//
// Facts are derived data and must never stop the sync nor a report: a
// record whose state does not decode gets no facts (and a warning).

// factTables lists every fact table, in the order they are written.
var factTables = factsql.Tables

// factTableOf returns the fact table of kind k, nil for kinds without
// facts (consents).
func factTableOf(k domain.Kind) *factsql.Table { return factsql.TableOf(k) }

// factRows gathers the facts of the records a catch-up step rewrites:
// every record touched loses its rows, the live ones get new ones. Delete
// then COPY, rather than an upsert per row, because a step rewrites
// thousands of records and a record may move to another key (its day or
// its département changed).
type factRows struct {
	log     *slog.Logger
	touched map[*factsql.Table][][]byte
	rows    map[*factsql.Table][][]any
	sticky  sticky // erased records whose facts stay as they were (facts_sticky.go)
}

func newFactRows(log *slog.Logger) *factRows {
	return &factRows{log: log, touched: map[*factsql.Table][][]byte{}, rows: map[*factsql.Table][][]any{}}
}

// add queues the facts of one record's merged state: a deleted record's
// go, a live one's are rewritten. origin is the device that created the
// record (activity_facts.device).
func (w *factRows) add(id ident.ID, k domain.Kind, team string, origin int64, st *merge.State) {
	t := factTableOf(k)
	if t == nil {
		return
	}
	w.touched[t] = append(w.touched[t], append([]byte(nil), id[:]...))
	if row, ok := factsql.AppendRow(nil, w.log, id, k, team, origin, st); ok {
		w.rows[t] = append(w.rows[t], row)
		w.sticky.note(k, id, st)
	}
}

// write deletes the rows of every record touched, then copies the new
// ones in, table by table, in tx.
func (w *factRows) write(ctx context.Context, tx pgx.Tx) error {
	kept, err := w.sticky.read(ctx, tx)
	if err != nil {
		return err
	}
	for _, t := range factTables {
		if ids := w.touched[t]; len(ids) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM `+t.Name+` WHERE id = ANY($1)`, ids); err != nil {
				return fmt.Errorf("deleting %s: %w", t.Name, err)
			}
		}
		if rows := w.rows[t]; len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.Name}, t.Cols, pgx.CopyFromRows(rows)); err != nil {
				return fmt.Errorf("writing %s: %w", t.Name, err)
			}
		}
	}
	return kept.write(ctx, tx)
}
