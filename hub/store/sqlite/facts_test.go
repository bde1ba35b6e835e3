package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"numeribus/hub/report"
	"numeribus/hub/report/sourcetest"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// The conformance suite of report sources, on SQLite: the hand-counted
// indicators, scopes, the exports, and the facts following updates,
// deletions and erasures.
func TestSource(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) sourcetest.Backend {
		s, _ := openTemp(t)
		return s
	})
}

var _ sourcetest.Planner = (*Store)(nil)

// factsWorld is the suite's seeded hub on a file of this test's own, for
// the SQLite-only tests below: backfill at open, the background follower,
// a second process.
type factsWorld struct {
	*sourcetest.World
	s    *Store
	path string
}

var year2026 = sourcetest.Year2026

func newID(i int) ident.ID { return sourcetest.NewID(i) }

func seedFacts(t *testing.T) *factsWorld {
	t.Helper()
	s, p := openTemp(t)
	t.Cleanup(func() { s.Close() })
	w := &factsWorld{World: sourcetest.Seed(t, s), s: s, path: p}
	return w
}

func (w *factsWorld) apply(t *testing.T, dev string, op change.Op, r domain.Record) {
	t.Helper()
	w.Apply(t, dev, op, r)
}

func overview(t *testing.T, s *Store, f report.Filter, sc report.Scope) *report.Overview {
	t.Helper()
	return sourcetest.Overview(t, s, f, sc)
}

// No fact table holds a trace of personal data once a person is erased,
// whatever its column: read raw, beyond what the Source hands out.
func TestFactTablesHoldNoPersonalData(t *testing.T) {
	w := seedFacts(t)
	w.apply(t, w.Dev54, change.OpErase, &domain.Beneficiary{ID: w.B1})
	for _, table := range []string{"activity_facts", "beneficiary_facts", "assessment_facts", "tourstop_facts"} {
		rows, err := w.s.r.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			rows.Scan(ptrs...)
			for _, v := range vals {
				if s, ok := v.(string); ok && (strings.Contains(s, "SECRET") || strings.Contains(s, "Jeanne")) {
					t.Errorf("%s holds personal data: %q", table, s)
				}
			}
		}
		rows.Close()
	}
}

// The backfill at open computes each person's first activity as the
// follower does: deleting the 2025 session of the followed person makes
// her new in 2026, before and after a backfill.
func TestNewPeopleAfterBackfill(t *testing.T) {
	w := seedFacts(t)
	f := year2026
	f.Territory = sourcetest.MustTerritory(t, "dep:54")
	w.apply(t, w.Dev54, change.OpDelete, &domain.Activity{ID: w.A4})
	if got := overview(t, w.s, f, report.Scope{}).Beneficiaires.Nouveaux; got != 2 {
		t.Fatalf("nouveaux after deleting her 2025 session: %d, want 2", got)
	}
	if _, err := w.s.w.Exec(`UPDATE beneficiary_facts SET premiere_activite = NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.w.Exec(`INSERT INTO facts_meta(key, value) VALUES ('backfill', 1)`); err != nil {
		t.Fatal(err)
	}
	w.s.Close()
	s, err := Open(context.Background(), w.path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := overview(t, s, f, report.Scope{}).Beneficiaires.Nouveaux; got != 2 {
		t.Fatalf("nouveaux after the backfill: %d, want 2", got)
	}
}

func TestFactsBackfillAtOpen(t *testing.T) {
	w := seedFacts(t)
	ctx := context.Background()
	f := year2026
	f.Territory = sourcetest.MustTerritory(t, "dep:54")
	before, _ := json.Marshal(overview(t, w.s, f, report.Scope{}))
	// An upgraded hub: records without facts, the flag the migration sets.
	for _, q := range []string{`DELETE FROM activity_facts`, `DELETE FROM beneficiary_facts`,
		`INSERT INTO facts_meta(key, value) VALUES ('backfill', 1)`} {
		if _, err := w.s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if got := overview(t, w.s, f, report.Scope{}).Headline.Activites; got != 0 {
		t.Fatalf("facts not cleared: %d", got)
	}
	w.s.Close()
	s, err := Open(ctx, w.path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, _ := json.Marshal(overview(t, s, f, report.Scope{}))
	if !bytes.Equal(before, after) {
		t.Errorf("after backfill\n%s\nwant\n%s", after, before)
	}
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM facts_meta WHERE key = 'backfill'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("backfill flag left: %d %v", n, err)
	}
}

// Facts are written off the ingest path: with no report asked for, the
// background follower brings them to the end of the change log shortly
// after the pushes pause, and records its cursor with them.
func TestFactsFollowTheLog(t *testing.T) {
	w := seedFacts(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var end, cursor, facts int64
		if err := w.s.r.QueryRow(`SELECT (SELECT max(hseq) FROM changes),
			coalesce((SELECT value FROM facts_meta WHERE key = 'hseq'), 0), (SELECT count(*) FROM activity_facts)`).Scan(&end, &cursor, &facts); err != nil {
			t.Fatal(err)
		}
		if end > 0 && cursor == end && facts > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("facts not caught up in the background: log end %d, cursor %d, %d activity facts", end, cursor, facts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The background follower lets the batches waiting for the writer go
// first before each of its steps (a morning's arrivals waited 6 s behind
// twenty steps in a row), for factsYield at most; a reader's catch-up,
// which needs the facts now, does not wait.
func TestFollowerYieldsToWaitingBatches(t *testing.T) {
	w := seedFacts(t)
	s := w.s
	close(s.factsStop) // the test drives the follower itself
	<-s.factsDone
	s.factsStop = nil
	if _, err := s.w.Exec(`DELETE FROM facts_meta WHERE key = 'hseq'`); err != nil {
		t.Fatal(err)
	}
	s.factsAt.Store(0)

	s.batchesWaiting.Add(1) // a batch waits for the writer
	done := make(chan error, 1)
	go func() { done <- s.followLog(context.Background(), true) }()
	time.Sleep(factsYield / 2)
	if at := s.factsAt.Load(); at != 0 {
		t.Fatalf("the follower wrote facts up to %d while a batch waited", at)
	}
	s.batchesWaiting.Add(-1) // the batch got the writer
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.factsAt.Load() == 0 {
		t.Fatal("the follower did not catch up once no batch waited")
	}

	// Never starved: a batch always waiting delays each step by
	// factsYield at most.
	if _, err := s.w.Exec(`DELETE FROM facts_meta WHERE key = 'hseq'`); err != nil {
		t.Fatal(err)
	}
	s.factsAt.Store(0)
	s.batchesWaiting.Add(1)
	defer s.batchesWaiting.Add(-1)
	t0 := time.Now()
	if err := s.followLog(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < factsYield || s.factsAt.Load() == 0 {
		t.Fatalf("follower under constant pushes: %v, facts at %d", d, s.factsAt.Load())
	}
	// A reader's catch-up does not yield.
	if _, err := s.w.Exec(`DELETE FROM facts_meta WHERE key = 'hseq'`); err != nil {
		t.Fatal(err)
	}
	s.factsAt.Store(0)
	t0 = time.Now()
	if err := s.catchUpFacts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d >= factsYield {
		t.Errorf("a reader's catch-up waited %v behind the batches", d)
	}
}
