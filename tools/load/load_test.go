package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"numeribus/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestLoad runs the generator small against a real hub binary, built
// once: a burst on SQLite, two hubs over PostgreSQL with one killed
// midway, and a run whose agent loses a batch, which the checks must
// catch (a generator whose verification always passes tests nothing).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hub and runs it under load")
	}
	hub := filepath.Join(t.TempDir(), "hub")
	build := exec.Command("go", "build", "-o", hub, "numeribus/hub")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the hub: %v\n%s", err, out)
	}
	small := []string{"-hub", hub, "-agents", "20", "-changes", "50", "-teams", "4", "-agent-timeout", "1m"}

	t.Run("BurstOnSQLite", func(t *testing.T) {
		rep := run(t, append(small, "-scenario", "burst"))
		exactlyOnce(t, rep, 20, 50)
		if rep.HubPeakRSSMiB <= 0 || rep.HubMaxFDs <= 20 {
			t.Errorf("hub figures not sampled: %.1f MiB, %d fds", rep.HubPeakRSSMiB, rep.HubMaxFDs)
		}
	})

	t.Run("TwoHubsOnPostgres", func(t *testing.T) {
		// Batches of 10 changes: five per agent, the window of four in
		// flight when the first hub is killed.
		rep := run(t, append(small, "-scenario", "two", "-backend", "postgres", "-pg-url", pgtest.NewDB(t), "-batch-count", "10"))
		exactlyOnce(t, rep, 20, 50)
		if len(rep.Hubs) != 2 || !rep.Hubs[0].Killed || rep.Hubs[1].Killed {
			t.Errorf("hubs %+v: the first one killed midway expected", rep.Hubs)
		}
		// The throwaway server runs here: its CPU time is measured.
		if rep.PostgresCPUS == nil || *rep.PostgresCPUS <= 0 {
			t.Errorf("PostgreSQL's CPU time not measured: %v", rep.PostgresCPUS)
		}
	})

	t.Run("VerificationCatchesALostBatch", func(t *testing.T) {
		cfg, err := parseFlags(append(small, "-agents", "6", "-changes", "20", "-teams", "2", "-batch-count", "5",
			"-out", filepath.Join(t.TempDir(), "load.json")), os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		cfg.dropLastBatch = true
		rep := runConfig(t, cfg)
		if rep.OK {
			t.Fatalf("a lost batch passed the checks: %+v", rep)
		}
		all := strings.Join(rep.Problems, "\n")
		for _, want := range []string{"log holds 115 changes, 120 expected", "high-water mark", "did not pull"} {
			if !strings.Contains(all, want) {
				t.Errorf("problems do not say %q:\n%s", want, all)
			}
		}
	})
}

func run(t *testing.T, args []string) *Report {
	t.Helper()
	cfg, err := parseFlags(append(args, "-out", filepath.Join(t.TempDir(), "load.json")), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return runConfig(t, cfg)
}

func runConfig(t *testing.T, cfg config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, cfg, t.Output())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("%s in %v", cfg.scenario, time.Since(start).Round(time.Millisecond))
	if err := rep.write(cfg.out); err != nil {
		t.Fatal(err)
	}
	return rep
}

// exactlyOnce checks the report's own verdict and its counts.
func exactlyOnce(t *testing.T, rep *Report, agents, changes int) {
	t.Helper()
	if !rep.OK || len(rep.Problems) > 0 {
		t.Fatalf("not ok: %q", rep.Problems)
	}
	if got, want := rep.ChangesAccepted, uint64(agents*changes); got != want {
		t.Errorf("changes accepted %d, want %d", got, want)
	}
	want := fmt.Sprintf("%d/%d", agents, agents)
	if rep.PushesComplete != want || rep.PullsComplete != want {
		t.Errorf("pushes %s, pulls %s: want %s", rep.PushesComplete, rep.PullsComplete, want)
	}
	if rep.AckMaxMs <= 0 || rep.PushWallS <= 0 || rep.PullWallS <= 0 {
		t.Errorf("figures missing: ack max %v ms, push %v s, pull %v s", rep.AckMaxMs, rep.PushWallS, rep.PullWallS)
	}
}
