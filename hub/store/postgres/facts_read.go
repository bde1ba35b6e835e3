package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/report"
	"numeribus/hub/store/factsql"
	"numeribus/internal/ident"
)

// The Source of hub/report over the fact tables, with factsql's queries
// in PostgreSQL's dialect: lists are arrays (col = ANY($n)), which
// PostgreSQL reads as ranges of the index as SQLite reads IN lists.

var _ report.Source = (*Store)(nil)

// dialect is PostgreSQL's for factsql.
type dialect struct{}

func (dialect) Param(n int, typ string) string {
	if typ == "" {
		return "$" + strconv.Itoa(n)
	}
	return "$" + strconv.Itoa(n) + "::" + typ
}

func (dialect) In(col string, vs []string, arg func(any, string) string) string {
	if vs == nil {
		vs = []string{}
	}
	return col + " = ANY(" + arg(vs, "text[]") + ")"
}

// factQueryOf returns SELECT cols FROM table for q (factsql.Build).
func factQueryOf(ctx context.Context, tx pgx.Tx, table, cols string, q report.Query, o factsql.Filters) (factsql.Query, error) {
	return factsql.Build(dialect{}, table, cols, q, o, func() ([]string, error) { return allTeams(ctx, tx) })
}

// allTeams lists every team: those of the devices, which gave every
// record its team.
func allTeams(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT team FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	teams, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	if teams == nil {
		teams = []string{}
	}
	return teams, nil
}

// readFacts brings the facts up to the end of the change log as it
// stands (within the facts' readWait), then runs fn in a REPEATABLE READ,
// read-only transaction, so that the queries of one Source call see one
// state of the facts.
//
// When another instance's follower holds the facts' lock past the wait,
// or the backlog is longer than the wait, the report reads the facts as
// they are rather than fail: the followers are bringing them up to date.
//
// Under report.FactsAsIs (an export's later windows) it reads them as
// they are: the export brought them up to date at its start.
func (s *Store) readFacts(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if !report.FactsAsIs(ctx) {
		if err := s.facts.catchUp(ctx, time.Now().Add(s.facts.readWait), factsBusyPause); err != nil {
			if !errors.Is(err, errFactsBehind) {
				return err
			}
			s.log.Warn("facts not brought up to date; reading them as they are", "err", err)
		}
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("reading facts: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return fn(tx)
}

// Sums implements report.Source: the totals in SQL, and in Go only the
// set of people, from the two id columns of the rows that have any.
func (s *Store) Sums(ctx context.Context, q report.Query) (report.Sums, error) {
	var sums report.Sums
	err := s.readFacts(ctx, func(tx pgx.Tx) error {
		fq, err := factQueryOf(ctx, tx, "activity_facts", factsql.SumCols, q, factsql.ActivityFilters)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE type = 'collectif'), coalesce(sum(participants), 0),
			coalesce(sum(duree), 0), coalesce(sum(pass_numerique), 0), count(DISTINCT nullif(commune, '')) FROM (`+fq.SQL+`) AS f`, fq.Args...).
			Scan(&sums.Activites, &sums.Collectifs, &sums.Participants, &sums.Minutes, &sums.PassNumerique, &sums.Communes); err != nil {
			return fmt.Errorf("summing activity facts: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT beneficiaire, suivis FROM (`+fq.SQL+`) AS f
			WHERE beneficiaire IS NOT NULL OR octet_length(suivis) >= 16`, fq.Args...)
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
	return s.readFacts(ctx, func(tx pgx.Tx) error {
		cols := factsql.ActivityCols
		if q.Statistical {
			cols = factsql.ActivityStatCols
		}
		fq, err := factQueryOf(ctx, tx, "activity_facts", cols, q, factsql.ActivityFilters)
		if err != nil {
			return err
		}
		var devices map[int64]string
		if !q.Statistical {
			if devices, err = deviceNames(ctx, tx); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, fq.SQL, fq.Args...)
		if err != nil {
			return fmt.Errorf("reading activity facts: %w", err)
		}
		defer rows.Close()
		return factsql.Activities(rows, q.Statistical, devices, fn)
	})
}

// deviceNames maps device numbers to names.
func deviceNames(ctx context.Context, tx pgx.Tx) (map[int64]string, error) {
	rows, err := tx.Query(ctx, `SELECT num, name FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("reading devices: %w", err)
	}
	defer rows.Close()
	m := map[int64]string{}
	var (
		n    int64
		name string
	)
	for rows.Next() {
		if err := rows.Scan(&n, &name); err != nil {
			return nil, fmt.Errorf("reading devices: %w", err)
		}
		m[n] = name
	}
	return m, rows.Err()
}

// beneficiaryChunk is the number of ids looked up per statement.
const beneficiaryChunk = 1000

// Beneficiaries implements report.Source. First is the earlier of
// premier_accompagnement and the person's first individual activity.
func (s *Store) Beneficiaries(ctx context.Context, ids []ident.ID, fn func(*report.BeneficiaryFact) error) error {
	if len(ids) == 0 {
		return nil
	}
	return s.readFacts(ctx, func(tx pgx.Tx) error {
		for len(ids) > 0 {
			n := min(len(ids), beneficiaryChunk)
			if err := beneficiaryFacts(ctx, tx, idBytes(ids[:n]), fn); err != nil {
				return err
			}
			ids = ids[n:]
		}
		return nil
	})
}

// beneficiaryFacts calls fn for the facts of the beneficiaries ids.
func beneficiaryFacts(ctx context.Context, tx pgx.Tx, ids [][]byte, fn func(*report.BeneficiaryFact) error) error {
	rows, err := tx.Query(ctx, `SELECT `+factsql.BeneficiaryCols+`
		FROM beneficiary_facts WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("reading beneficiary facts: %w", err)
	}
	defer rows.Close()
	return factsql.Beneficiaries(rows, fn)
}

// Assessments implements report.Source.
func (s *Store) Assessments(ctx context.Context, q report.Query, fn func(*report.AssessmentFact) error) error {
	return s.readFacts(ctx, func(tx pgx.Tx) error {
		fq, err := factQueryOf(ctx, tx, "assessment_facts", factsql.AssessmentCols, q, factsql.AssessmentFilters)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, fq.SQL, fq.Args...)
		if err != nil {
			return fmt.Errorf("reading assessment facts: %w", err)
		}
		defer rows.Close()
		return factsql.Assessments(rows, fn)
	})
}

// TourStops implements report.Source.
func (s *Store) TourStops(ctx context.Context, q report.Query, fn func(*report.TourStopFact) error) error {
	return s.readFacts(ctx, func(tx pgx.Tx) error {
		fq, err := factQueryOf(ctx, tx, "tourstop_facts", factsql.TourStopCols, q, factsql.TourStopFilters)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, fq.SQL, fq.Args...)
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
	err := s.readFacts(ctx, func(tx pgx.Tx) error {
		if err := activityVisits(ctx, tx, q, byCommune); err != nil {
			return err
		}
		if q.Mediateur != "" {
			return nil
		}
		return stopVisits(ctx, tx, q, byCommune)
	})
	if err != nil {
		return nil, err
	}
	out := make([]report.Visit, 0, len(byCommune))
	for _, v := range byCommune {
		out = append(out, *v)
	}
	return out, nil
}

// activityVisits counts the activities and accompagnements of q per commune.
func activityVisits(ctx context.Context, tx pgx.Tx, q report.Query, m map[string]*report.Visit) error {
	fq, err := factQueryOf(ctx, tx, "activity_facts", "commune, participants", q, factsql.ActivityFilters)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT commune, count(*), sum(participants) FROM (`+fq.SQL+`) AS f
		WHERE commune <> '' GROUP BY commune`, fq.Args...)
	if err != nil {
		return fmt.Errorf("reading visits: %w", err)
	}
	defer rows.Close()
	var (
		c    string
		n, p int
	)
	for rows.Next() {
		if err := rows.Scan(&c, &n, &p); err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		v := factsql.AddVisit(m, c)
		v.Activities, v.Accompagnements = n, p
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading visits: %w", err)
	}
	return nil
}

// stopVisits counts the realised stops of q per commune.
func stopVisits(ctx context.Context, tx pgx.Tx, q report.Query, m map[string]*report.Visit) error {
	fq, err := factQueryOf(ctx, tx, "tourstop_facts", "commune, realise", q, factsql.TourStopFilters)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT commune, count(*) FROM (`+fq.SQL+`) AS f
		WHERE realise <> 0 AND commune <> '' GROUP BY commune`, fq.Args...)
	if err != nil {
		return fmt.Errorf("reading visits: %w", err)
	}
	defer rows.Close()
	var (
		c string
		n int
	)
	for rows.Next() {
		if err := rows.Scan(&c, &n); err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		factsql.AddVisit(m, c).Stops = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading visits: %w", err)
	}
	return nil
}
