// Command load is the hub's load generator (issue #16, `make load`). It
// starts real `hub serve` processes (the built binary), drives hundreds or
// thousands of simulated agents through the real sync protocol — TLS,
// websocket, Hello, Challenge, Auth, pushes with batches in flight, pulls
// page by page — measures what the hub does under that load (ack
// latencies, walls, memory, file descriptors, refusals), then opens the
// hub's store and checks that every change arrived exactly once: the log
// holds agents × changes, each device's mark is its last change, each
// agent pulled each teammate's changes once, in order. It writes the
// figures as JSON and prints a short table.
//
// Every simulated agent is a goroutine of this process: a second program
// per agent would measure process start-up, not the hub. What the agent's
// store does (SQLite, sealing) is left out on purpose: the load is on the
// hub.
//
// Scenarios (-scenario): burst (all agents at once behind a barrier, then
// all pull), morning (arrivals spread over -spread), idle (connections
// held open, then one device revoked), two (two hubs over one PostgreSQL
// database, one killed -9 midway).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"numeribus/agent/syncclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second Ctrl-C kills at once; the first one lets the deferred
		// clean-up stop the hubs and the PostgreSQL cluster.
		<-ctx.Done()
		stop()
	}()
	os.Exit(Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the generator and returns the exit code: 0 when every check
// passed, 1 when a check failed or the run could not be completed, 2 for
// a bad command line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 2
	}
	rep, err := Run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
	}
	if rep == nil {
		return 1
	}
	rep.print(stdout)
	if werr := rep.write(cfg.out); werr != nil {
		fmt.Fprintln(stderr, "load:", werr)
		return 1
	}
	fmt.Fprintf(stdout, "written to %s\n", cfg.out)
	if !rep.OK {
		return 1
	}
	return 0
}

// config sizes and shapes a run.
type config struct {
	hubBin   string
	backend  string // "sqlite" or "postgres"
	pgURL    string // postgres: an existing database; "" starts a throwaway cluster
	scenario string
	agents   int
	changes  int // per agent
	teams    int
	spread   time.Duration // morning: arrivals spread over this
	hold     time.Duration // idle: how long the connections stay open before the revocation
	out      string
	work     string // data directories and hub logs; "" : a temporary directory, removed after
	// The agent's sync settings (agent/syncclient defaults).
	batchBytes, batchCount, window, pullBudget int
	agentTimeout                               time.Duration // per agent, from its release
	seed                                       uint64

	// dropLastBatch makes agent 0 leave out its last batch, as a buggy
	// agent would: set by the test that checks verification catches it.
	dropLastBatch bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.hubBin, "hub", "bin/hub", "the hub binary (make build)")
	fs.StringVar(&c.backend, "backend", "sqlite", "the hub's database: sqlite or postgres")
	fs.StringVar(&c.pgURL, "pg-url", "", "postgres: a database to use (emptied by nobody: give a fresh one); default a throwaway cluster")
	fs.StringVar(&c.scenario, "scenario", "burst", "burst, morning, idle or two")
	fs.IntVar(&c.agents, "agents", 1000, "simulated agents")
	fs.IntVar(&c.changes, "changes", 200, "changes each agent pushes (ignored by idle)")
	fs.IntVar(&c.teams, "teams", 20, "teams; agents are spread over them round-robin")
	fs.DurationVar(&c.spread, "spread", time.Minute, "morning: arrivals spread uniformly over this")
	fs.DurationVar(&c.hold, "hold", 30*time.Second, "idle: how long the connections stay open before one device is revoked (the hub pings every 20 s)")
	fs.StringVar(&c.out, "out", ".bench/load.json", "JSON output (parent directories are created)")
	fs.StringVar(&c.work, "work", "", "keep the hubs' data directories and logs here (default: a temporary directory, removed)")
	fs.IntVar(&c.batchBytes, "batch-bytes", syncclient.DefaultBatchBytes, "bytes of changes per push batch (the agent's default)")
	fs.IntVar(&c.batchCount, "batch-count", syncclient.DefaultBatchCount, "changes per push batch (the agent's default)")
	fs.IntVar(&c.window, "window", syncclient.DefaultWindow, "push batches in flight (the agent's default)")
	fs.IntVar(&c.pullBudget, "pull-budget", syncclient.DefaultPullBudget, "bytes asked per pull page (the agent's default)")
	fs.DurationVar(&c.agentTimeout, "agent-timeout", 8*time.Minute, "an agent gives up this long after its release: the run always ends")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the generated activities and of the random choices")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case c.backend != "sqlite" && c.backend != "postgres":
		return c, fmt.Errorf("-backend %q: sqlite or postgres", c.backend)
	case c.scenario != "burst" && c.scenario != "morning" && c.scenario != "idle" && c.scenario != "two":
		return c, fmt.Errorf("-scenario %q: burst, morning, idle or two", c.scenario)
	case c.scenario == "two" && c.backend != "postgres":
		return c, errors.New("-scenario two needs -backend postgres: two hubs share one database")
	case c.agents < 1 || c.teams < 1:
		return c, errors.New("-agents and -teams must be at least 1")
	case c.changes < 1 && c.scenario != "idle":
		return c, errors.New("-changes must be at least 1")
	case c.batchBytes < 1 || c.batchCount < 1 || c.window < 1 || c.pullBudget < 1:
		return c, errors.New("-batch-bytes, -batch-count, -window and -pull-budget must be positive")
	}
	if c.scenario == "idle" {
		c.changes = 0 // idle agents push nothing: the checks expect an empty log
	}
	return c, nil
}
