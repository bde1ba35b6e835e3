package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"numeribus/hub/report"
	"numeribus/hub/store/factsql"
	"numeribus/internal/ident"
)

// The Source of hub/report over the fact tables, with factsql's queries
// in SQLite's dialect: lists are IN (?, …).

var _ report.Source = (*Store)(nil)

// dialect is SQLite's for factsql.
type dialect struct{}

func (dialect) Param(int, string) string { return "?" }

func (dialect) In(col string, vs []string, arg func(any, string) string) string {
	ps := make([]string, len(vs))
	for i, v := range vs {
		ps[i] = arg(v, "")
	}
	return col + " IN (" + strings.Join(ps, ", ") + ")"
}

// buildQuery returns SELECT cols FROM table for q (factsql.Build).
func buildQuery(ctx context.Context, tx *sql.Tx, table, cols string, q report.Query, o factsql.Filters) (factsql.Query, error) {
	return factsql.Build(dialect{}, table, cols, q, o, func() ([]string, error) { return allTeams(ctx, tx) })
}

func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// allTeams lists every team: those of the devices, which gave every
// record its team.
func allTeams(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT team FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	defer rows.Close()
	teams := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("listing teams: %w", err)
		}
		teams = append(teams, t)
	}
	return teams, rows.Err()
}

// readTx brings the facts up to the end of the change log, then runs fn
// in a read-only transaction, so a report's queries see one state of the
// facts.
//
// When another process holds the write lock beyond the busy timeout (a
// `hub stats` beside a busy `hub serve`), the report reads the facts as
// they are: the serving hub's follower is bringing them up to date, and a
// command beside a running hub reads rather than fails.
//
// A command beside a running `hub serve` brings them up to date only
// when they are a little behind (the last sync, which the hub's follower
// takes up after a pause): a busy hub's backlog is the follower's, and a
// command catching it up held the lock in long transactions that the
// other commands waited for.
//
// Under report.FactsAsIs (an export's later windows) it reads them as
// they are: the export brought them up to date at its start.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if report.FactsAsIs(ctx) {
		return s.readOnly(ctx, fn)
	}
	if s.hostThere() {
		behind, err := s.factsBehind(ctx)
		if err != nil {
			return err
		}
		if behind > guestCatchUp {
			s.log.Warn("facts behind the change log: the running hub is bringing them up to date; reading them as they are", "changes", behind)
			return s.readOnly(ctx, fn)
		}
	}
	if err := s.catchUpFacts(ctx); err != nil {
		if !isBusy(err) {
			return err
		}
		s.log.Warn("facts not brought up to date: another process is writing; reading them as they are", "err", err)
	}
	return s.readOnly(ctx, fn)
}

// guestCatchUp is the most changes a command beside a running hub
// brings the facts forward by itself.
const guestCatchUp = 20000

// factsBehind returns how many hub seqs the facts are behind the log.
func (s *Store) factsBehind(ctx context.Context) (int64, error) {
	var end, at int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce((SELECT max(hseq) FROM changes), 0),
		coalesce((SELECT value FROM facts_meta WHERE key = 'hseq'), 0)`).Scan(&end, &at)
	if err != nil {
		return 0, fmt.Errorf("reading how far the facts are: %w", err)
	}
	return end - at, nil
}

// readOnly runs fn in a read-only transaction.
func (s *Store) readOnly(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// isBusy reports whether err is SQLite's "database is locked" (SQLITE_BUSY
// and its extended codes): another connection holds the write lock.
func isBusy(err error) bool {
	var ce interface{ Code() int }
	return errors.As(err, &ce) && ce.Code()&0xff == 5
}

// Sums implements report.Source: the totals in SQL, and in Go only the
// set of people, from the two id columns of the rows that have any.
func (s *Store) Sums(ctx context.Context, q report.Query) (report.Sums, error) {
	var sums report.Sums
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		fq, err := buildQuery(ctx, tx, "activity_facts", factsql.SumCols, q, factsql.ActivityFilters)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(type = 'collectif'), 0), coalesce(sum(participants), 0),
			coalesce(sum(duree), 0), coalesce(sum(pass_numerique), 0), count(DISTINCT nullif(commune, '')) FROM (`+fq.SQL+`)`, fq.Args...).
			Scan(&sums.Activites, &sums.Collectifs, &sums.Participants, &sums.Minutes, &sums.PassNumerique, &sums.Communes); err != nil {
			return fmt.Errorf("summing activity facts: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT beneficiaire, suivis FROM (`+fq.SQL+`)
			WHERE beneficiaire IS NOT NULL OR length(suivis) >= 16`, fq.Args...)
		if err != nil {
			return fmt.Errorf("summing activity facts: %w", err)
		}
		defer rows.Close()
		sums.Beneficiaires, err = factsql.People(rows)
		return err
	})
	return sums, err
}

// Activities implements report.Source.
func (s *Store) Activities(ctx context.Context, q report.Query, fn func(*report.ActivityFact) error) error {
	return s.readTx(ctx, func(tx *sql.Tx) error {
		cols := factsql.ActivityCols
		if q.Statistical {
			cols = factsql.ActivityStatCols
		}
		fq, err := buildQuery(ctx, tx, "activity_facts", cols, q, factsql.ActivityFilters)
		if err != nil {
			return err
		}
		var devices map[int64]string
		if !q.Statistical {
			if devices, err = deviceNames(ctx, tx); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, fq.SQL, fq.Args...)
		if err != nil {
			return fmt.Errorf("reading activity facts: %w", err)
		}
		defer rows.Close()
		return factsql.Activities(rows, q.Statistical, devices, fn)
	})
}

func deviceNames(ctx context.Context, tx *sql.Tx) (map[int64]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT num, name FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("reading devices: %w", err)
	}
	defer rows.Close()
	m := map[int64]string{}
	for rows.Next() {
		var (
			n    int64
			name string
		)
		if err := rows.Scan(&n, &name); err != nil {
			return nil, fmt.Errorf("reading devices: %w", err)
		}
		m[n] = name
	}
	return m, rows.Err()
}

// beneficiaryChunk is the number of ids looked up per statement.
const beneficiaryChunk = 256

// Beneficiaries implements report.Source.
func (s *Store) Beneficiaries(ctx context.Context, ids []ident.ID, fn func(*report.BeneficiaryFact) error) error {
	if len(ids) == 0 {
		return nil
	}
	return s.readTx(ctx, func(tx *sql.Tx) error {
		var stmts = map[int]*sql.Stmt{}
		defer func() {
			for _, st := range stmts {
				st.Close()
			}
		}()
		args := make([]any, 0, beneficiaryChunk)
		for len(ids) > 0 {
			n := min(len(ids), beneficiaryChunk)
			st := stmts[n]
			if st == nil {
				var err error
				st, err = tx.PrepareContext(ctx, `SELECT `+factsql.BeneficiaryCols+` FROM beneficiary_facts WHERE id IN (`+placeholders(n)+`)`)
				if err != nil {
					return fmt.Errorf("reading beneficiary facts: %w", err)
				}
				stmts[n] = st
			}
			args = args[:0]
			for _, id := range ids[:n] {
				args = append(args, id[:])
			}
			ids = ids[n:]
			rows, err := st.QueryContext(ctx, args...)
			if err != nil {
				return fmt.Errorf("reading beneficiary facts: %w", err)
			}
			err = factsql.Beneficiaries(rows, fn)
			rows.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Assessments implements report.Source.
func (s *Store) Assessments(ctx context.Context, q report.Query, fn func(*report.AssessmentFact) error) error {
	return s.readTx(ctx, func(tx *sql.Tx) error {
		fq, err := buildQuery(ctx, tx, "assessment_facts", factsql.AssessmentCols, q, factsql.AssessmentFilters)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, fq.SQL, fq.Args...)
		if err != nil {
			return fmt.Errorf("reading assessment facts: %w", err)
		}
		defer rows.Close()
		return factsql.Assessments(rows, fn)
	})
}

// TourStops implements report.Source.
func (s *Store) TourStops(ctx context.Context, q report.Query, fn func(*report.TourStopFact) error) error {
	return s.readTx(ctx, func(tx *sql.Tx) error {
		fq, err := buildQuery(ctx, tx, "tourstop_facts", factsql.TourStopCols, q, factsql.TourStopFilters)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, fq.SQL, fq.Args...)
		if err != nil {
			return fmt.Errorf("reading stop facts: %w", err)
		}
		defer rows.Close()
		return factsql.TourStops(rows, fn)
	})
}

// Visits implements report.Source.
func (s *Store) Visits(ctx context.Context, q report.Query) ([]report.Visit, error) {
	byCommune := map[string]*report.Visit{}
	var out []report.Visit
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		fq, err := buildQuery(ctx, tx, "activity_facts", "commune, participants", q, factsql.ActivityFilters)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT commune, count(*), sum(participants) FROM (`+fq.SQL+`) WHERE commune != '' GROUP BY commune`, fq.Args...)
		if err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c    string
				n, p int
			)
			if err := rows.Scan(&c, &n, &p); err != nil {
				return fmt.Errorf("reading visits: %w", err)
			}
			v := factsql.AddVisit(byCommune, c)
			v.Activities, v.Accompagnements = n, p
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		if q.Mediateur != "" {
			return nil
		}
		fq, err = buildQuery(ctx, tx, "tourstop_facts", "commune, realise", q, factsql.TourStopFilters)
		if err != nil {
			return err
		}
		rows2, err := tx.QueryContext(ctx, `SELECT commune, count(*) FROM (`+fq.SQL+`) WHERE realise AND commune != '' GROUP BY commune`, fq.Args...)
		if err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		defer rows2.Close()
		for rows2.Next() {
			var (
				c string
				n int
			)
			if err := rows2.Scan(&c, &n); err != nil {
				return fmt.Errorf("reading visits: %w", err)
			}
			factsql.AddVisit(byCommune, c).Stops = n
		}
		return rows2.Err()
	})
	if err != nil {
		return nil, err
	}
	for _, v := range byCommune {
		out = append(out, *v)
	}
	return out, nil
}
