// Command agentbench measures the agent store: record save latency with and
// without encryption, import throughput against raw SQLite inserts, unlock
// time, the agent's cold start, and database size per record. It prints a
// table and writes the figures as JSON (`make bench`).
//
// Every measure runs in a fresh temporary data directory, removed at the
// end, with the exact SQLite settings of the store (sqlitex.OpenWriter)
// and the production key derivation costs (seal.DefaultParams).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"numeribus/internal/benchreport"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agentbench:", err)
		os.Exit(1)
	}
}

// config sizes a run.
type config struct {
	out        string
	n          int    // records imported
	saves      int    // single-record saves timed
	seed       uint64 // fixture seed
	unlocks    int    // unlock repetitions (median)
	statusRuns int    // `agent status` runs (median)
	listRuns   int    // `agent list` runs (median)
	cpuProfile string // CPU profile of the import's store.Save
	agentBin   string // prebuilt agent binary (built from ./agent when empty)
	lookup     []int  // fixture sizes (activities) of the page and search measures
	lookupOnly bool   // skip every other measure
	quick      bool
}

// Params records the sizes of the run.
type Params struct {
	N      int    `json:"n"`
	Saves  int    `json:"saves"`
	Lookup []int  `json:"lookup_activities"`
	Seed   uint64 `json:"seed"`
	Quick  bool   `json:"quick"`
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("agentbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.out, "out", ".bench/results.json", "JSON results file (parent directories are created)")
	fs.IntVar(&c.n, "n", 20000, "records imported in one batch (import throughput, size per record)")
	fs.IntVar(&c.saves, "saves", 2000, "single-record saves timed (save latency)")
	fs.Uint64Var(&c.seed, "seed", 1, "fixture seed")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the first import to this file")
	fs.StringVar(&c.agentBin, "agent", "", "time this agent binary (e.g. bin/agent from make build) instead of building ./agent")
	lookup := fs.String("lookup", "20000,100000", "fixture sizes, in activities, at which a person's page and a name search are timed (comma-separated)")
	fs.BoolVar(&c.lookupOnly, "lookup-only", false, "time only the page and search measures (no build, save, import, unlock, cold start)")
	fs.BoolVar(&c.quick, "quick", false, "smoke run: n=300, saves=50, lookup=300 unless given")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.unlocks, c.statusRuns, c.listRuns = 5, 5, 3
	if c.quick {
		if !set["n"] {
			c.n = 300
		}
		if !set["saves"] {
			c.saves = 50
		}
		if !set["lookup"] {
			*lookup = "300"
		}
	}
	for _, f := range strings.Split(*lookup, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-lookup: %q is not a size", f)
		}
		c.lookup = append(c.lookup, n)
	}
	if c.n < 1 || c.saves < 1 {
		return c, errors.New("-n and -saves must be at least 1")
	}
	return c, nil
}

// run is the whole program: the test calls it in-process.
func run(args []string, stdout io.Writer) error {
	c, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	root, err := benchreport.ModuleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "agentbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	res := benchreport.New(Params{N: c.n, Saves: c.saves, Lookup: c.lookup, Seed: c.seed, Quick: c.quick})
	fmt.Fprintf(stdout, "agentbench: %d CPU, %s/%s, %s, load %.2f; n=%d saves=%d\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), res.Machine.LoadAvgStart, c.n, c.saves)

	if !c.lookupOnly {
		if err := benchStore(ctx, c, root, tmp, stdout, res); err != nil {
			return err
		}
	}
	for _, n := range c.lookup {
		d := filepath.Join(tmp, fmt.Sprintf("lookup-%d", n))
		if err := benchLookup(ctx, c, n, d, res); err != nil {
			return fmt.Errorf("page and search at %d activities: %w", n, err)
		}
		os.RemoveAll(d)
	}

	res.Finish()
	if l := max(res.Machine.LoadAvgStart, res.Machine.LoadAvgEnd); l > 0.5*float64(runtime.NumCPU()) {
		res.Note("the machine was busy (load average %.2f on %d CPUs): timings are inflated", l, runtime.NumCPU())
	}
	if err := res.PrintTable(stdout); err != nil {
		return err
	}
	if err := res.WriteJSON(c.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "written %s\n", c.out)
	return nil
}

// benchStore runs the store measures: save latency, import, unlock and
// the agent's cold start.
func benchStore(ctx context.Context, c config, root, tmp string, stdout io.Writer, res *benchreport.Results) error {
	// The agent binary is built first (concurrently would skew timings).
	bin := c.agentBin
	var err error
	if bin == "" {
		bin = filepath.Join(tmp, "agent")
		if runtime.GOOS == "windows" {
			bin += ".exe"
		}
		t0 := time.Now()
		if err := buildAgent(ctx, root, bin); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "built ./agent in %.1f s\n", time.Since(t0).Seconds())
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}

	if err := benchSaves(ctx, c, filepath.Join(tmp, "saves"), res); err != nil {
		return fmt.Errorf("save latency: %w", err)
	}
	// The imported store is reused by the unlock and cold start measures.
	importDir := filepath.Join(tmp, "import")
	if err := benchImport(ctx, c, importDir, filepath.Join(tmp, "raw"), res); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := benchUnlock(ctx, c, importDir, res); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	if err := benchColdStart(ctx, c, bin, importDir, res); err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	if err := benchBackup(ctx, c, importDir, res); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// Small statistics over durations.

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the nearest-rank p-th percentile (0 < p <= 100).
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// median of durations or ratios.
func median[T time.Duration | float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
