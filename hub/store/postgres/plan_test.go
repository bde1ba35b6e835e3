package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"numeribus/hub/dashboard"
	"numeribus/hub/plan"
	"numeribus/hub/plan/plantest"
	"numeribus/internal/domain"
	"numeribus/internal/pgtest"
)

var _ dashboard.Planner = (*Store)(nil)

// The conformance suite of planning stores, on PostgreSQL; a restart is a
// new Open of the same database.
func TestPlanConformance(t *testing.T) {
	plantest.Run(t, func(t *testing.T) (plantest.Store, plantest.Reopen) {
		url := pgtest.NewDB(t)
		reopen := func(t *testing.T) plantest.Store {
			s, err := Open(context.Background(), url, Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return reopen(t), reopen
	})
}

// Two hub instances over one database plan the same stops at once, as a
// coordinator's form sent twice and landing on both: each stop is planned
// once (the second is refused as already planned), the hub's own device
// row is created once, and its changes carry seqs 1…n, stamps growing
// along them, in the log's commit order.
func TestPlanOnTwoInstances(t *testing.T) {
	s1, url := open(t)
	s2, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ctx := context.Background()
	agent := plantest.Enroll(t, s1, "bus-1", "cd88")
	// A slow commit on one instance: the other plans meanwhile.
	s1.beforeCommit = func(string) { time.Sleep(5 * time.Millisecond) }

	const n = 30
	stops := make([]domain.TourStop, n)
	for i := range stops {
		stops[i] = plantest.Planned("N1", plantest.T0.AddDate(0, 0, i).Format(domain.DateLayout), "09:00", "12:00", "Mairie", "88413")
	}
	planned := make([]int, 2) // per instance
	var wg sync.WaitGroup
	for k, s := range []*Store{s1, s2} {
		wg.Go(func() {
			for i := range stops {
				_, err := s.PlanStops(ctx, "cd88", stops[i:i+1], plantest.T0)
				var ve *domain.ValidationError
				switch {
				case err == nil:
					planned[k]++
				case !errors.As(err, &ve):
					t.Errorf("instance %d, stop %d: %v", k+1, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("instances planned %d and %d stops", planned[0], planned[1])
	if planned[0]+planned[1] != n {
		t.Fatalf("instances planned %d and %d stops, want %d in all", planned[0], planned[1], n)
	}
	list, err := s2.PlannedStops(ctx, plan.Filter{Team: "cd88"})
	if err != nil || len(list) != n {
		t.Fatalf("%d stops listed (%v), want %d", len(list), err, n)
	}
	for i := 1; i < len(list); i++ {
		if list[i].Date == list[i-1].Date {
			t.Fatalf("stop of %s planned twice", list[i].Date)
		}
	}
	hubSeqsWithoutGap(t, s1, n)
	cs := plantest.Pull(t, s2, "cd88", agent.ID)
	for i, c := range cs {
		if c.Seq != uint64(i+1) || (i > 0 && c.HLC <= cs[i-1].HLC) {
			t.Fatalf("pulled change %d: hub seq %d, stamp %s after %s", i, c.Seq, c.HLC, cs[max(i-1, 0)].HLC)
		}
	}
}

// hubSeqsWithoutGap checks that the hub has one device row, whose n
// changes carry seqs 1…n once each, its mark at n.
func hubSeqsWithoutGap(t *testing.T, s *Store, n int) {
	t.Helper()
	var rows, count, distinct, lo, hi, hwm int64
	err := s.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM devices WHERE `+hubTeamSQL+`),
			count(*), count(DISTINCT c.dseq), coalesce(min(c.dseq), 0), coalesce(max(c.dseq), 0), coalesce(max(d.hwm), 0)
		FROM changes c JOIN devices d ON d.num = c.device WHERE d.`+hubTeamSQL).
		Scan(&rows, &count, &distinct, &lo, &hi, &hwm)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 1 || count != int64(n) || distinct != count || lo != 1 || hi != count || hwm != hi {
		t.Fatalf("%d hub rows; %d hub changes, %d distinct seqs from %d to %d, mark %d: want seqs 1…%d once each",
			rows, count, distinct, lo, hi, hwm, n)
	}
}
