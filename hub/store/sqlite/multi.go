package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// rowSizes are the row counts a multi statement is prepared for: a batch
// of n rows runs as few statements as these sizes allow (1000 rows: 15
// of 64, 2 of 16, 2 of 4), which costs much less than n statements.
var rowSizes = []int{64, 16, 4, 1}

// multi is one SQL statement repeating a group of placeholders, prepared
// once for each of rowSizes on the writer connection.
type multi struct {
	cols  int
	stmts []*sql.Stmt // parallel to rowSizes
}

// prepareMulti prepares head + n groups of cols placeholders + tail for
// every n of rowSizes; sep joins the groups (", " for VALUES lists).
func prepareMulti(ctx context.Context, db *sql.DB, head string, cols int, sep, tail string) (*multi, error) {
	group := "?"
	if cols > 1 {
		group = "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	}
	m := &multi{cols: cols}
	for _, n := range rowSizes {
		q := head + strings.TrimSuffix(strings.Repeat(group+sep, n), sep) + tail
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("preparing %q: %w", head, err)
		}
		m.stmts = append(m.stmts, st)
	}
	return m, nil
}

func (m *multi) close() error {
	var err error
	for _, st := range m.stmts {
		if e := st.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// chunks calls fn with the statement and arguments of each chunk of rows
// (args holds cols values per row).
func (m *multi) chunks(ctx context.Context, tx *sql.Tx, args []any, fn func(*sql.Stmt, []any) error) error {
	if len(args)%m.cols != 0 {
		return fmt.Errorf("%d values for rows of %d", len(args), m.cols)
	}
	for i, n := range rowSizes { // ends with 1: every row is done
		if len(args) < n*m.cols {
			continue
		}
		st := tx.StmtContext(ctx, m.stmts[i])
		for len(args) >= n*m.cols {
			if err := fn(st, args[:n*m.cols]); err != nil {
				st.Close()
				return err
			}
			args = args[n*m.cols:]
		}
		st.Close()
	}
	return nil
}

// exec runs the statement over every row of args.
func (m *multi) exec(ctx context.Context, tx *sql.Tx, args []any) error {
	return m.chunks(ctx, tx, args, func(st *sql.Stmt, a []any) error {
		_, err := st.ExecContext(ctx, a...)
		return err
	})
}
