package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"numeribus/hub/retain"
	"numeribus/hub/retain/retaintest"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
)

// The conformance suite of retention and access, on SQLite.
func TestRetainConformance(t *testing.T) {
	retaintest.Run(t, func(t *testing.T) retaintest.Backend {
		s, _ := openTemp(t)
		return s
	})
}

// A change logged between the purge's census and its writes is not
// overruled: Ana, met again meanwhile, keeps her identity and her
// assessments, and only the workshop's notes go.
func TestPurgeRechecksWhatChangedSinceItsCensus(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	w := retaintest.Seed(t, s)
	if err := s.catchUpFacts(ctx); err != nil {
		t.Fatal(err)
	}
	var (
		c  *retention.Census
		at int64
	)
	err := s.readOnly(ctx, func(tx *sql.Tx) error {
		var err error
		c, at, err = retain.Gather(ctx, sqlReader{tx}, retention.Default(), retaintest.Now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pl := c.Plan()
	if len(pl.People) != 1 || len(pl.Assessments) != 2 {
		t.Fatalf("plan: %+v", pl)
	}
	ana := w.Ana
	w.Apply(t, retaintest.Now, change.OpUpsert, &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-08-31", Duree: 30,
		TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"email"}, Beneficiaire: &ana})
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	got, err := retain.Recheck(ctx, sqlReader{tx}, at, pl)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.People) != 0 || len(got.Assessments) != 0 || len(got.Notes) != 1 {
		t.Errorf("plan after a new session of Ana's: %+v", got)
	}
}

// BenchmarkPurge measures the hub's daily purge over NUMERIBUS_BENCH_PURGE_N
// activities (default 200,000; fixture seed 1, 2025–2026, four teams),
// written as BenchmarkOverview1M writes them: "nothing due" is a day when
// the census finds nothing to erase (records and facts read, the old
// activities' notes peeked); "all due" erases, once, every identity,
// assessment and note of the hub.
//
//	go test ./hub/store/sqlite -run '^$' -bench '^BenchmarkPurge$' -benchtime 1x -timeout 30m
func BenchmarkPurge(b *testing.B) {
	n := 200_000
	if v := os.Getenv("NUMERIBUS_BENCH_PURGE_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	ctx := context.Background()
	set := fixture.Generate(fixture.Options{N: n, Seed: 1, Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Days: 730})
	s, _ := openTemp(b)
	defer s.Close()
	teams := map[string]int64{}
	for _, d := range []string{"88", "54", "23", "48"} {
		dev := enroll(b, s, "bus-"+d, "cd"+d)
		var num int64
		if err := s.w.QueryRow(`SELECT num FROM devices WHERE id = ?`, dev.ID).Scan(&num); err != nil {
			b.Fatal(err)
		}
		teams[d] = num
	}
	nrec := bulkRecords(b, s, set, teams)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.rebuildFacts(ctx, tx); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d activities, %d records", n, nrec)
	for _, c := range []struct {
		name string
		now  time.Time
	}{{"nothing due", time.Date(2026, 12, 31, 3, 0, 0, 0, time.UTC)}, {"all due", time.Date(2030, 1, 1, 3, 0, 0, 0, time.UTC)}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				p, err := s.PurgeExpired(ctx, c.now.AddDate(0, 0, i))
				if err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					b.ReportMetric(float64(p.Records), "records-erased")
				}
			}
		})
	}
}
