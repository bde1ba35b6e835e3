package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"numeribus/internal/pgtest"
	"numeribus/internal/wire"
)

// Run runs one scenario from an empty hub to the checks and returns the
// report, with what went wrong among its problems. The error says why
// the run could not be carried out (setup, hubs); the report is then
// partial, or nil when nothing was measured. Whatever happens, the hubs
// and the PostgreSQL cluster it started are stopped before it returns.
func Run(ctx context.Context, cfg config, logw io.Writer) (rep *Report, err error) {
	t0 := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "load: %6.1fs "+format+"\n", append([]any{time.Since(t0).Seconds()}, args...)...)
	}
	if _, err := os.Stat(cfg.hubBin); err != nil {
		return nil, fmt.Errorf("the hub binary: %w (make build)", err)
	}
	nofile, lerr := raiseFileLimit()
	if lerr != nil {
		logf("warning: %v", lerr)
	}
	rep = &Report{Scenario: cfg.scenario, Backend: cfg.backend, Agents: cfg.agents, Changes: cfg.changes, Teams: cfg.teams,
		Machine: machine(nofile), Started: t0.UTC()}
	if need := uint64(2*cfg.agents + 200); nofile != 0 && nofile < need {
		logf("warning: %d open files allowed, about %d needed: expect connect errors", nofile, need)
	}

	work := cfg.work
	if work == "" {
		if work, err = os.MkdirTemp("", "numeribus-load-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	} else if work, err = filepath.Abs(work); err != nil {
		return nil, err
	}
	db := ""
	if cfg.backend == "postgres" {
		db = cfg.pgURL
		if db == "" {
			logf("starting a throwaway PostgreSQL cluster")
			url, stop, err := pgtest.StartCluster()
			if err != nil {
				return nil, fmt.Errorf("starting PostgreSQL: %w", err)
			}
			defer stop()
			context.AfterFunc(ctx, stop) // Ctrl-C: stopped even if a step hangs
			db = url
		}
	}
	nHubs := 1
	if cfg.scenario == "two" {
		nHubs = 2
	}
	dirs, err := prepareDirs(work, nHubs)
	if err != nil {
		return nil, err
	}
	logf("making %d agents × %d changes", cfg.agents, cfg.changes)
	agents, err := newAgents(cfg)
	if err != nil {
		return nil, err
	}
	logf("writing %d enrollments into the hub's store", len(agents))
	if err := createEnrollments(ctx, dirs[0], db, agents); err != nil {
		return nil, err
	}
	var hubs []*hubProc
	defer func() {
		for _, h := range hubs {
			h.stop() // a no-op for those already stopped
		}
	}()
	for i, d := range dirs {
		name := fmt.Sprintf("hub%d", i)
		h, err := startHub(ctx, cfg.hubBin, name, d, db, logPath(cfg, work, name))
		if err != nil {
			return nil, err
		}
		hubs = append(hubs, h)
		logf("%s listening on %s (pid %d, log %s)", name, h.addr, h.cmd.Process.Pid, h.log.Name())
	}
	logf("enrolling %d agents through the protocol", len(agents))
	if err := enrollAll(ctx, hubs[0], agents); err != nil {
		return nil, err
	}
	f := &fleet{cfg: cfg, hubs: hubs, teams: map[string]int{}, logf: logf}
	for _, a := range agents {
		f.teams[a.id] = a.team
	}
	if cfg.changes > 0 {
		rep.BatchesPerAgent = batches(cfg, agents[0].changes)
	}
	if cfg.scenario == "two" {
		f.onAck = killMidway(hubs[0], int64(cfg.agents*rep.BatchesPerAgent/2), logf)
	}
	rep.SetupS = secs(time.Since(t0))

	pgSpent := func() *float64 { return nil }
	if db != "" {
		pgSpent = pgCPU(ctx, db)
	}
	logf("scenario %s", cfg.scenario)
	var p phases
	switch cfg.scenario {
	case "burst", "two":
		p = burst(ctx, f, agents)
	case "morning":
		p = morning(ctx, f, agents)
	case "idle":
		revoke := func(ctx context.Context, name string) error {
			_, err := hubCommand(ctx, cfg.hubBin, dirs[0], db, "revoke", "--device", name)
			return err
		}
		if p, err = idle(ctx, f, agents, revoke); err != nil {
			rep.problem("idle: %v", err)
		}
	}
	if ctx.Err() != nil {
		rep.problem("interrupted: %v", ctx.Err())
	}
	logf("stopping the hubs")
	for _, h := range hubs {
		if err := h.stop(); err != nil {
			rep.problem("%v", err)
		}
	}
	rep.hubs(hubs, p)
	rep.measure(agents, p)
	rep.Machine.GeneratorCPUS = secs(selfCPU())
	rep.PostgresCPUS = pgSpent()
	rep.ConnectErrors, rep.BusyAnswers, rep.SessionsCut = f.connectErrors.Load(), f.busy.Load(), f.cuts.Load()
	revoked := ""
	if cfg.scenario == "idle" {
		revoked = agents[0].name
	}
	logf("checking the hub's store")
	if err := verify(context.WithoutCancel(ctx), rep, cfg, dirs[0], db, agents, revoked); err != nil {
		rep.problem("%v", err)
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// logPath puts a hub's log beside the JSON output (make load keeps it),
// or in the working directory when the output has no .json name.
func logPath(cfg config, work, name string) string {
	if base, ok := strings.CutSuffix(cfg.out, ".json"); ok {
		if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err == nil {
			return base + "." + name + ".log"
		}
	}
	return filepath.Join(work, name+".log")
}

// batches is how many push batches the agent's cutter makes of cs.
func batches(cfg config, cs []wire.Change) int {
	n := 0
	for len(cs) > 0 {
		p := cutBatch(0, cs, cfg.batchCount, cfg.batchBytes)
		cs = cs[len(p.Changes):]
		n++
	}
	return n
}

// killMidway returns the ack hook of the two-hub scenario: once half the
// batches of the run are acked, h is killed with SIGKILL, its agents cut
// in the middle of their work.
func killMidway(h *hubProc, half int64, logf func(string, ...any)) func(int64) {
	var once sync.Once
	half = max(half, 1)
	return func(acked int64) {
		if acked >= half {
			once.Do(func() {
				go func() {
					h.kill()
					logf("%s killed (SIGKILL) after %d acked batches", h.name, acked)
				}()
			})
		}
	}
}
