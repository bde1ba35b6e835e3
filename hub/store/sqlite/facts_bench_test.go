package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"numeribus/hub/report"
	"numeribus/internal/benchreport"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/merge"
	"numeribus/internal/territoire"
)

// The report benchmark of `make bench`:
//
//	NUMERIBUS_BENCH_REPORT_OUT=.bench/report.json go test ./hub/store/sqlite -run '^$' -bench '^BenchmarkOverview1M$' -benchtime 1x -timeout 20m
//
// It builds a hub of NUMERIBUS_BENCH_REPORT_N activities (default
// 1,000,000) of fixture seed 1 over two years (2025–2026) in four
// départements (88, 54, 23, 48), each département a team of its own, with
// their beneficiaries, assessments and stops: records are written
// directly (not through the sync), then the facts are built by the
// backfill (the fact writer the change-log follower uses too). It then times, on that file,
// report.ComputeOverview, ComputeCoverage, ComputeVehicles and ComputeSeries for one
// département and one year (target: the overview under 1 s), and writes
// the figures as JSON (internal/benchreport) to
// NUMERIBUS_BENCH_REPORT_OUT (default <module root>/.bench/report.json).
// The database lives in a temporary directory removed at the end.

func BenchmarkOverview1M(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("NUMERIBUS_BENCH_REPORT_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	ctx := context.Background()
	res := benchreport.New(map[string]any{"activities": n, "seed": 1, "days": 730, "departements": []string{"88", "54", "23", "48"}})

	t0 := time.Now()
	var veh, med []string
	for i := range 80 {
		veh = append(veh, fmt.Sprintf("Numéribus %d", i+1))
		med = append(med, fmt.Sprintf("Médiateur %d A.", i+1), fmt.Sprintf("Médiateur %d B.", i+1))
	}
	set := fixture.Generate(fixture.Options{N: n, Seed: 1, Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Days: 730,
		Vehicules: veh, Mediateurs: med})
	gen := time.Since(t0)

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
	t1 := time.Now()
	nrec := bulkRecords(b, s, set, teams)
	loadRecords := time.Since(t1)
	t2 := time.Now()
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
	buildFacts := time.Since(t2)
	if _, err := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	var rows54 int
	s.r.QueryRow(`SELECT count(*) FROM activity_facts WHERE departement = '54' AND day BETWEEN 20260101 AND 20261231`).Scan(&rows54)

	f := report.Filter{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}
	f.Territory, err = report.ParseTerritory("dep:54")
	if err != nil {
		b.Fatal(err)
	}
	timeIt := func(fn func() error) (best, median time.Duration) {
		var ds []time.Duration
		for range 5 {
			t := time.Now()
			if err := fn(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t))
		}
		slices.Sort(ds)
		return ds[0], ds[len(ds)/2]
	}
	var ov *report.Overview
	b.ResetTimer()
	for range b.N {
		ov, err = report.ComputeOverview(ctx, s, f, report.Scope{}, report.Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ovBest, ovMed := timeIt(func() error {
		_, err := report.ComputeOverview(ctx, s, f, report.Scope{}, report.Options{})
		return err
	})
	cvBest, cvMed := timeIt(func() error {
		_, err := report.ComputeCoverage(ctx, s, f, report.Scope{}, report.Options{})
		return err
	})
	vhBest, vhMed := timeIt(func() error {
		_, err := report.ComputeVehicles(ctx, s, f, report.Scope{}, report.Options{})
		return err
	})
	// The dashboard's overview computes the vehicles' series beside the
	// overview (hub/dashboard/overview.go): its page takes the longer.
	seBest, seMed := timeIt(func() error {
		_, err := report.ComputeSeries(ctx, s, f, report.Scope{}, report.Options{}, report.SeriesVehicles)
		return err
	})
	fe := f
	fe.Territory, _ = report.ParseTerritory("epci:245400676")
	epBest, epMed := timeIt(func() error {
		_, err := report.ComputeOverview(ctx, s, fe, report.Scope{}, report.Options{})
		return err
	})
	ft := f
	ft.Territory, ft.Team = report.Territory{}, "cd54"
	tmBest, tmMed := timeIt(func() error {
		_, err := report.ComputeOverview(ctx, s, ft, report.Scope{}, report.Options{})
		return err
	})

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.Add("generate_s", "fixture generation", gen.Seconds(), "s")
	res.Add("load_records_s", fmt.Sprintf("records written (%d)", nrec), loadRecords.Seconds(), "s")
	res.Add("build_facts_s", "facts built from records (backfill)", buildFacts.Seconds(), "s")
	res.Add("facts_per_s", "facts built per second", float64(nrec)/buildFacts.Seconds(), "records/s")
	res.Add("rows_dep_year", "activities of dep 54 in 2026", float64(rows54), "rows")
	res.AddTarget("overview_dep_year_ms", "Overview, one département, one year (median of 5)", ms(ovMed), "ms", "<", 1000)
	res.Add("overview_dep_year_best_ms", "Overview, one département, one year (best of 5)", ms(ovBest), "ms")
	res.AddTarget("coverage_dep_year_ms", "Coverage, one département, one year (median of 5)", ms(cvMed), "ms", "<", 1000)
	res.Add("coverage_dep_year_best_ms", "Coverage (best of 5)", ms(cvBest), "ms")
	res.Add("vehicles_dep_year_ms", "Vehicles, one département, one year (median of 5)", ms(vhMed), "ms")
	res.Add("vehicles_dep_year_best_ms", "Vehicles (best of 5)", ms(vhBest), "ms")
	res.Add("series_dep_year_ms", "Vehicles month by month (the overview's series), one département, 12 months (median of 5)", ms(seMed), "ms")
	res.Add("series_dep_year_best_ms", "Vehicles month by month (best of 5)", ms(seBest), "ms")
	res.Add("overview_epci_year_ms", "Overview, Grand Nancy EPCI, one year (median of 5)", ms(epMed), "ms")
	res.Add("overview_epci_year_best_ms", "Overview, EPCI (best of 5)", ms(epBest), "ms")
	res.Add("overview_team_year_ms", "Overview, one team (no territory), one year (median of 5)", ms(tmMed), "ms")
	res.Add("overview_team_year_best_ms", "Overview, one team (best of 5)", ms(tmBest), "ms")
	res.Note("dep 54, 2026: %d activities, %d accompagnements, %d distinct beneficiaries; the previous year is read too (comparison)",
		ov.Headline.Activites, ov.Headline.Accompagnements, ov.Beneficiaires.Distincts)
	if l := benchreport.LoadAvg(); l > 1.5 {
		res.Note("the machine was busy (load average %.2f on %d CPUs): timings are inflated", l, res.Machine.NumCPU)
	}
	res.Finish()
	res.PrintTable(os.Stdout)
	out := os.Getenv("NUMERIBUS_BENCH_REPORT_OUT")
	if out == "" {
		root, err := benchreport.ModuleRoot()
		if err != nil {
			b.Fatal(err)
		}
		out = filepath.Join(root, ".bench", "report.json")
	}
	if err := res.WriteJSON(out); err != nil {
		b.Fatal(err)
	}
}

// bulkRecords writes the records of set as the hub would hold them after
// a sync (one upsert each, merged), in one transaction, with the team and
// origin device of their département. It returns how many it wrote.
func bulkRecords(b *testing.B, s *Store, set *fixture.Set, devs map[string]int64) int {
	ctx := context.Background()
	x := territoire.Default()
	depOf := func(commune string) string {
		if c, ok := x.Commune(commune); ok {
			if _, ok := devs[c.Departement]; ok {
				return c.Departement
			}
		}
		return "88"
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	var args []any
	flush := func() {
		if err := s.putRecs.exec(ctx, tx, args); err != nil {
			b.Fatal(err)
		}
		args = args[:0]
	}
	n := 0
	put := func(r domain.Record, commune string) {
		f, err := change.Encode(r)
		if err != nil {
			b.Fatal(err)
		}
		id := r.RecordID()
		c := change.Change{Kind: r.Kind(), ID: id, Op: change.OpUpsert, Fields: f, HLC: hlc.FromTime(id.Time()), Device: "bench"}
		st := merge.NewStateCap(len(f))
		merge.Apply(st, r.Kind(), &c)
		state, err := st.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		d := depOf(commune)
		args = append(args, append([]byte(nil), id[:]...), string(r.Kind()), "cd"+d, devs[d], int64(c.HLC), false, false, state)
		n++
		if len(args) >= 64*8*50 {
			flush()
		}
	}
	for _, r := range set.TourStops {
		put(r, r.Commune)
	}
	for _, r := range set.Beneficiaries {
		put(r, r.Commune)
	}
	for _, r := range set.Assessments {
		put(r, r.Commune)
	}
	for _, r := range set.Activities {
		put(r, r.Commune)
	}
	flush()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return n
}
