package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"numeribus/hub/report"
	"numeribus/internal/benchreport"
	"numeribus/internal/fixture"
)

// The export benchmark of `make bench`:
//
//	NUMERIBUS_BENCH_EXPORT_OUT=.bench/export.json go test ./hub/store/sqlite -run '^$' -bench '^BenchmarkExport1M$' -benchtime 1x -timeout 20m
//
// It builds a hub of NUMERIBUS_BENCH_EXPORT_N activities (default
// 1,000,000) as BenchmarkOverview1M does (fixture seed 1, 2025–2026, four
// départements), closes it, then runs exports in a child process each
// (this test binary, in TestExportChild) — the functions the dashboard
// streams to the response — writing to a counter of bytes: the CSV and
// the XLSX of all the activities, the XLSX of one month beside it (the
// memory does not follow the size), and the « format La Coop » of one
// département over one year (a row per accompagnement: the whole hub
// would be 2.6 million rows and as long again as the rest; `go test
// -run TestExportChild` with NUMERIBUS_EXPORT_CHILD runs it on any
// file). Each child reports its time, its bytes, its peak anonymous
// memory (sampled: what the export holds) and its VmHWM (read by the
// child itself: a fork's high-water mark starts from its parent's; it
// counts the database pages SQLite maps, up to 1 GiB). The figures go
// as JSON (internal/benchreport) to NUMERIBUS_BENCH_EXPORT_OUT (default
// <module root>/.bench/export.json).

// exportChildEnv carries a child's task: "path|format|from|to|territory"
// (territory may be empty).
const exportChildEnv = "NUMERIBUS_EXPORT_CHILD"

// childResult is what TestExportChild prints, one JSON line.
type childResult struct {
	Format  string  `json:"format"`
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
	VmHWM   int64   `json:"vmhwm"`     // bytes
	Anon    int64   `json:"peak_anon"` // bytes
}

func BenchmarkExport1M(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("NUMERIBUS_BENCH_EXPORT_N"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			b.Fatalf("NUMERIBUS_BENCH_EXPORT_N=%q: a positive number of activities expected", v)
		}
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
	s, path := openTemp(b)
	teams := map[string]int64{}
	for _, d := range []string{"88", "54", "23", "48"} {
		dev := enroll(b, s, "bus-"+d, "cd"+d)
		var num int64
		if err := s.w.QueryRow(`SELECT num FROM devices WHERE id = ?`, dev.ID).Scan(&num); err != nil {
			b.Fatal(err)
		}
		teams[d] = num
	}
	bulkRecords(b, s, set, teams)
	set = nil
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
	if _, err := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	var all, month, dep, depAcc int
	s.r.QueryRow(`SELECT count(*) FROM activity_facts`).Scan(&all)
	s.r.QueryRow(`SELECT count(*) FROM activity_facts WHERE day BETWEEN 20260301 AND 20260331`).Scan(&month)
	s.r.QueryRow(`SELECT count(*), coalesce(sum(participants), 0) FROM activity_facts WHERE departement = '54' AND day BETWEEN 20260101 AND 20261231`).
		Scan(&dep, &depAcc)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	build := time.Since(t0)

	b.ResetTimer()
	runs := []struct {
		key, format, from, to, territory, what string
		n                                      int
	}{
		{"csv", "csv", "2025-01-01", "2026-12-31", "", fmt.Sprintf("CSV, all %d activities", all), all},
		{"xlsx", "xlsx", "2025-01-01", "2026-12-31", "", fmt.Sprintf("XLSX, all %d activities", all), all},
		{"xlsx_month", "xlsx", "2026-03-01", "2026-03-31", "", fmt.Sprintf("XLSX, one month (%d activities)", month), month},
		{"lacoop_dep_year", "lacoop", "2026-01-01", "2026-12-31", "dep:54",
			fmt.Sprintf("« format La Coop », dep 54 in 2026 (%d activities, %d rows)", dep, depAcc), dep},
	}
	for _, r := range runs {
		c := exportChild(b, path, r.format, r.from, r.to, r.territory)
		res.Add(r.key+"_s", r.what+": time", c.Seconds, "s")
		res.Add(r.key+"_per_s", r.what+": activities per second", float64(r.n)/c.Seconds, "activities/s")
		res.Add(r.key+"_mb", r.what+": file size", float64(c.Bytes)/1e6, "MB")
		res.Add(r.key+"_peak_anon_mib", r.what+": peak anonymous memory (RssAnon, sampled every 10 ms)", float64(c.Anon)/(1<<20), "MiB")
		res.Add(r.key+"_peak_rss_mib", r.what+": peak resident memory (VmHWM, mapped database pages included)", float64(c.VmHWM)/(1<<20), "MiB")
	}
	b.StopTimer()
	res.Add("build_s", "hub built: fixture, records, facts", build.Seconds(), "s")
	res.Note("each export runs alone in a child process (this test binary) over the closed hub file and writes to a byte counter;" +
		" VmHWM is the child's own resident high-water mark, the SQLite page cache and Go runtime included")
	if l := benchreport.LoadAvg(); l > 1.5 {
		res.Note("the machine was busy (load average %.2f on %d CPUs): timings are inflated", l, res.Machine.NumCPU)
	}
	res.Finish()
	res.PrintTable(os.Stdout)
	out := os.Getenv("NUMERIBUS_BENCH_EXPORT_OUT")
	if out == "" {
		root, err := benchreport.ModuleRoot()
		if err != nil {
			b.Fatal(err)
		}
		out = filepath.Join(root, ".bench", "export.json")
	}
	if err := res.WriteJSON(out); err != nil {
		b.Fatal(err)
	}
}

// exportChild runs one export in a child process and returns its
// figures.
func exportChild(b *testing.B, path, format, from, to, territory string) childResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestExportChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), exportChildEnv+"="+strings.Join([]string{path, format, from, to, territory}, "|"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("export %s: %v\n%s%s", format, err, stdout.String(), stderr.String())
	}
	for _, l := range strings.Split(stdout.String(), "\n") {
		if j, ok := strings.CutPrefix(strings.TrimSpace(l), "EXPORT "); ok {
			var c childResult
			if err := json.Unmarshal([]byte(j), &c); err != nil {
				b.Fatal(err)
			}
			return c
		}
	}
	b.Fatalf("export %s: no result in\n%s", format, stdout.String())
	return childResult{}
}

// counter counts the bytes written to it.
type counter int64

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }

// TestExportChild is the child process of BenchmarkExport1M: with
// NUMERIBUS_EXPORT_CHILD set it writes one export of a hub file and
// prints its figures; in a test run it has nothing to do.
func TestExportChild(t *testing.T) {
	spec := os.Getenv(exportChildEnv)
	if spec == "" {
		return
	}
	p := strings.Split(spec, "|")
	if len(p) != 5 {
		t.Fatalf("%s=%q", exportChildEnv, spec)
	}
	ctx := context.Background()
	s, err := Open(ctx, p[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f report.Filter
	if f.From, err = time.Parse("2006-01-02", p[2]); err != nil {
		t.Fatal(err)
	}
	if f.To, err = time.Parse("2006-01-02", p[3]); err != nil {
		t.Fatal(err)
	}
	if f.Territory, err = report.ParseTerritory(p[4]); err != nil {
		t.Fatal(err)
	}
	x := report.ExportInfo{By: "bench@hub.fr", Role: "administrateur", At: time.Now()}
	var w counter
	// VmHWM counts the pages of the database file SQLite maps (up to its
	// mmap_size, 1 GiB): file pages the kernel may drop at will. The
	// memory the export holds is the anonymous one, which has no
	// high-water mark: sampled.
	var peakAnon int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if a, err := procStatus("RssAnon:"); err == nil {
				peakAnon = max(peakAnon, a)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	switch p[1] {
	case "csv":
		err = report.WriteActivitiesCSV(ctx, &w, s, f, report.Scope{}, report.Options{}, x)
	case "xlsx":
		err = report.WriteActivitiesXLSX(ctx, &w, s, f, report.Scope{}, report.Options{}, x)
	case "lacoop":
		err = report.WriteLaCoopXLSX(ctx, &w, s, f, report.Scope{}, report.Options{}, x)
	default:
		t.Fatalf("format %q", p[1])
	}
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	close(stop)
	<-done
	hwm, err := procStatus("VmHWM:")
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(childResult{Format: p[1], Seconds: elapsed.Seconds(), Bytes: int64(w), VmHWM: hwm, Anon: peakAnon})
	fmt.Printf("EXPORT %s\n", j)
}

// procStatus reads one of this process's memory figures ("VmHWM:",
// "RssAnon:") from /proc/self/status, in bytes.
func procStatus(key string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", key)
}
