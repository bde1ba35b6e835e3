package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"numeribus/hub/report"
	"numeribus/hub/report/sourcetest"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/pgtest"
)

// The conformance suite of report sources, on PostgreSQL: the same
// hand-counted indicators as on SQLite.
func TestSource(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) sourcetest.Backend {
		s, err := Open(context.Background(), pgtest.NewDB(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// No fact table holds a trace of personal data once a person is erased,
// whatever its column: read raw, beyond what the Source hands out.
func TestFactTablesHoldNoPersonalData(t *testing.T) {
	s, _ := open(t)
	w := sourcetest.Seed(t, s)
	w.Apply(t, w.Dev54, change.OpErase, &domain.Beneficiary{ID: w.B1})
	if _, err := s.Sums(context.Background(), report.Query{To: 99991231}); err != nil { // catch up
		t.Fatal(err)
	}
	for table, rows := range factDump(t, s) {
		for _, r := range rows {
			if strings.Contains(r, "SECRET") || strings.Contains(r, "Jeanne") || strings.Contains(r, "Martinez") {
				t.Errorf("%s holds personal data: %s", table, r)
			}
		}
	}
}

// A report that finds the facts' lock held by another instance's follower
// waits briefly, then reads the facts as they are instead of failing; once
// the lock is free, it brings them up to date itself.
func TestReportBesideABusyFollower(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	w := sourcetest.Seed(t, s)
	q := report.Query{To: 99991231}
	before, err := s.Sums(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	hold, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, factsLock); err != nil {
		t.Fatal(err)
	}
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: sourcetest.NewID(900), Type: "individuel", Date: "2026-06-01",
		Duree: 15, TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email"}})
	s.facts.readWait = 200 * time.Millisecond
	got, err := s.Sums(ctx, q)
	if err != nil || got != before {
		t.Fatalf("report beside a busy follower: %+v, %v; want the facts as they were, %+v", got, err, before)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Sums(ctx, q); err != nil || got.Activites != before.Activites+1 {
		t.Fatalf("report once the lock is free: %+v, %v; want %d activities", got, err, before.Activites+1)
	}
}

// factDump returns every row of every fact table as text, by id.
func factDump(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range factTables {
		rows, err := s.pool.Query(context.Background(), `SELECT f::text FROM `+table.name+` f ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				t.Fatal(err)
			}
			out[table.name] = append(out[table.name], r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

