package store

import (
	"fmt"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// What the SQL stores (hub/store/sqlite, hub/store/postgres) share beyond
// their SQL and driver calls.

// Rows is what the shared code needs of a query's result: *sql.Rows and
// pgx.Rows both have it (their Close differs, and stays with the caller).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScrubLog removes the personal fields of an erased record (kind, id)
// from every change of it in the log. read returns the (hseq, fields)
// rows of its upserts and a function closing them; write stores the new
// fields of change hseq. The rows are closed before the first write.
func ScrubLog(kind domain.Kind, id ident.ID, read func() (Rows, func(), error), write func(hseq int64, fields []byte) error) error {
	if len(domain.PersonalFields(kind)) == 0 {
		return nil
	}
	rows, closeRows, err := read()
	if err != nil {
		return fmt.Errorf("scrubbing log of %s: %w", id, err)
	}
	type upd struct {
		hseq   int64
		fields []byte
	}
	var upds []upd
	for rows.Next() {
		var (
			hseq int64
			raw  []byte
		)
		if err := rows.Scan(&hseq, &raw); err != nil {
			closeRows()
			return fmt.Errorf("scrubbing log of %s: %w", id, err)
		}
		raw, dropped, err := change.WithoutPersonalEncoded(kind, raw)
		if err != nil {
			closeRows()
			return fmt.Errorf("scrubbing change %d: %w", hseq, err)
		}
		if dropped {
			upds = append(upds, upd{hseq, raw})
		}
	}
	closeRows()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scrubbing log of %s: %w", id, err)
	}
	for _, u := range upds {
		if err := write(u.hseq, u.fields); err != nil {
			return fmt.Errorf("scrubbing change %d: %w", u.hseq, err)
		}
	}
	return nil
}
