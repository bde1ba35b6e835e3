package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hubcli "numeribus/hub/cli"
	"numeribus/internal/domain"
	"numeribus/internal/sqlitex"
)

// Every hub command run as a process of its own beside a `hub serve` that
// agents keep busy writing either reads or waits for the writer, and
// exits 0: none fails with "database is locked" (SQLITE_BUSY).
func TestHubCommandsBesideABusyHub(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes under load; run without -short")
	}
	hp := &hubProc{dir: t.TempDir(), addr: freePort(t)}
	hp.start(t)
	defer hp.kill()
	h := &testHub{t: t, dir: hp.dir}
	pushers := []*testAgent{
		newAgentFull(t, h, "bus-1", h.enrollCode(t, "bus-1", "cd88"), nil),
		newAgentFull(t, h, "bus-2", h.enrollCode(t, "bus-2", "cd88"), nil),
		newAgentFull(t, h, "bus-3", h.enrollCode(t, "bus-3", "cd88"), nil),
	}
	// The hub's writer at its worst: four vehicles back in coverage push
	// rounds of 10,000 records, back to back.
	pushers = append(pushers, newAgentFull(t, h, "bus-4", h.enrollCode(t, "bus-4", "cd88"), nil))
	for _, a := range pushers {
		// A hub this busy (more so under the race detector, and making way
		// for the commands) answers a batch in more than the tests' usual
		// 10 s: the agent's own default is 2 minutes.
		a.cl.AnswerTimeout = 2 * time.Minute
	}
	const rounds = 3 // each command runs this many times
	for i := range rounds {
		name := fmt.Sprintf("spare-%d", i)
		newAgentFull(t, h, name, h.enrollCode(t, name, "cd88"), nil)
	}
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("une phrase de passe assez longue\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	load := startPushLoad(t, pushers)
	load.waitBusy(t)
	db := filepath.Join(hp.dir, hubcli.DBFile)
	from := logged(t, db)
	start := time.Now()
	for r := range rounds {
		cmds := map[string][]string{
			"stats":    {"stats", "--data", hp.dir, "--json"},
			"devices":  {"devices", "--data", hp.dir},
			"enroll":   {"enroll", "--data", hp.dir, "--device", fmt.Sprintf("new-%d", r), "--team", "cd88", "--json"},
			"revoke":   {"revoke", "--data", hp.dir, "--device", fmt.Sprintf("spare-%d", r)},
			"user add": {"user", "add", "--data", hp.dir, "--email", fmt.Sprintf("coord%d@example.org", r), "--role", "coordinator", "--territory", "dep:88", "--password-file", pw},
			"plan add": {"plan", "add", "--data", hp.dir, "--team", "cd88", "--vehicle", fmt.Sprintf("Numéribus %d", 10+r), "--date", "2026-09-01",
				"--place", "Place de la mairie", "--commune", "88413"},
		}
		outs := runAll(t, cmds)
		checkBesideOutputs(t, r, outs)
	}
	// Batches the hub committed while the commands ran, or right after:
	// an agent's round may outlast them (a command catching the facts up
	// holds the lock a while, and the race detector slows everything).
	n := logged(t, db) - from
	for deadline := time.Now().Add(30 * time.Second); n == 0 && time.Now().Before(deadline); n = logged(t, db) - from {
		time.Sleep(50 * time.Millisecond)
	}
	load.stop(t)
	if n == 0 {
		t.Fatal("no change reached the hub while the commands ran: the hub was not busy")
	}
	t.Logf("%d commands in %v while the hub logged %d changes", rounds*6, time.Since(start).Round(time.Millisecond), n)
}

// logged counts the laptops' changes in the hub's log (the planned stops
// aside), read beside it.
func logged(t *testing.T, db string) int {
	t.Helper()
	c, err := sql.Open("sqlite", sqlitex.DSN(db, true))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.QueryRow(`SELECT count(*) FROM changes c JOIN devices d ON d.num = c.device WHERE d.team <> ''`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// pushLoad is agents pushing new records to the hub, round after round,
// until stopped.
type pushLoad struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pushed atomic.Int64
	errs   chan error
}

// perRound is how many records an agent saves, then pushes, each round
// (fewer under the race detector, ten times slower: the hub stays busy).
var perRound = map[bool]int{false: 10000, true: 3000}[raceOn]

func startPushLoad(t *testing.T, agents []*testAgent) *pushLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &pushLoad{ctx: ctx, cancel: cancel, errs: make(chan error, len(agents)+1)}
	for _, a := range agents {
		l.wg.Go(func() {
			// Bounded: 60 rounds of perRound records at most.
			for range 60 {
				if ctx.Err() != nil {
					return
				}
				if _, err := a.st.Save(ctx, stops(perRound)...); err != nil {
					if ctx.Err() == nil { // not the load's end
						l.errs <- fmt.Errorf("%s: save: %w", a.name, err)
					}
					return
				}
				rep, err := a.cl.Sync(ctx)
				if err != nil {
					if ctx.Err() == nil {
						l.errs <- fmt.Errorf("%s: sync: %w", a.name, err)
					}
					return
				}
				l.pushed.Add(int64(rep.Pushed))
			}
		})
	}
	t.Cleanup(func() { l.stop(t) })
	return l
}

// waitBusy waits, at most 60 s, until the agents have pushed a first
// round: the hub is writing.
func (l *pushLoad) waitBusy(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); l.pushed.Load() < int64(perRound); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-l.errs:
			t.Fatal(err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the agents pushed nothing within 60 s")
		}
	}
}

func (l *pushLoad) stop(t *testing.T) {
	l.cancel()
	l.wg.Wait()
	select {
	case err := <-l.errs:
		t.Fatal(err)
	default:
	}
}

type cmdResult struct {
	code int
	out  string
	took time.Duration
}

// runAll runs each hub command in a process of its own, all at once, each
// bounded to 60 s.
func runAll(t *testing.T, cmds map[string][]string) map[string]cmdResult {
	t.Helper()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]cmdResult{}
	)
	for name, args := range cmds {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := child("hub", args...)
			cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
			cmd.Env = child("hub", args...).Env
			start := time.Now()
			b, err := cmd.CombinedOutput()
			r := cmdResult{out: string(b), took: time.Since(start)}
			if ee, ok := err.(*exec.ExitError); ok {
				r.code = ee.ExitCode()
			} else if err != nil {
				r.code = -1
				r.out += err.Error()
			}
			mu.Lock()
			out[name] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// checkBesideOutputs checks that each command exited 0 and printed what
// it prints on a quiet hub.
func checkBesideOutputs(t *testing.T, round int, outs map[string]cmdResult) {
	t.Helper()
	for name, r := range outs {
		t.Logf("round %d: hub %s: exit %d in %v", round, name, r.code, r.took.Round(time.Millisecond))
		if r.code != 0 {
			t.Errorf("round %d: hub %s beside a busy hub: exit %d\n%s", round, name, r.code, r.out)
			continue
		}
		ok := true
		switch name {
		case "stats":
			var s struct {
				Changes  uint64
				Devices  int
				Overview json.RawMessage
			}
			ok = json.Unmarshal([]byte(jsonPart(r.out)), &s) == nil && s.Changes > 0 && s.Devices >= 2 && len(s.Overview) > 0
		case "devices":
			ok = strings.Contains(r.out, "bus-1") && strings.Contains(r.out, "bus-2")
		case "enroll":
			var v struct{ Code string }
			ok = json.Unmarshal([]byte(jsonPart(r.out)), &v) == nil && v.Code != ""
		case "revoke":
			ok = strings.Contains(r.out, fmt.Sprintf("Poste spare-%d révoqué", round))
		case "user add":
			ok = strings.Contains(r.out, fmt.Sprintf("Compte coord%d@example.org créé", round))
		case "plan add":
			ok = strings.Contains(r.out, "planifié pour l'équipe cd88")
		}
		if !ok {
			t.Errorf("round %d: hub %s printed:\n%s", round, name, r.out)
		}
	}
}

// jsonPart is the output from its first brace: a warning logged on
// stderr may come first.
func jsonPart(s string) string {
	if i := strings.IndexByte(s, '{'); i >= 0 {
		return s[i:]
	}
	if i := strings.IndexByte(s, '['); i >= 0 {
		return s[i:]
	}
	return s
}

// `hub stats` right after a sync, beside the `hub serve` that took it:
// the facts are a little behind (the hub's follower waits for a pause in
// the pushes), and the command brings them up to date itself rather than
// show nothing of the sync (a command leaves only a large backlog to the
// hub's follower).
func TestStatsRightAfterASyncBesideTheHub(t *testing.T) {
	hp := &hubProc{dir: t.TempDir(), addr: freePort(t)}
	hp.start(t)
	defer hp.kill()
	h := &testHub{t: t, dir: hp.dir}
	a := newAgentFull(t, h, "bus-1", h.enrollCode(t, "bus-1", "cd88"), nil)
	recs := records(40, 7)
	acts := 0
	for _, r := range recs {
		if r.Kind() == domain.KindActivity {
			acts++
		}
	}
	a.save(t, recs...)
	a.sync(t)
	out := runAll(t, map[string][]string{"stats": {"stats", "--data", hp.dir, "--json", "--from", "2000-01-01", "--to", "2099-12-31"}})["stats"]
	var s struct {
		Overview struct {
			Headline struct{ Activites int }
		}
	}
	if out.code != 0 || json.Unmarshal([]byte(jsonPart(out.out)), &s) != nil {
		t.Fatalf("hub stats: exit %d\n%s", out.code, out.out)
	}
	if s.Overview.Headline.Activites != acts {
		t.Fatalf("hub stats right after a sync counts %d activities, want %d", s.Overview.Headline.Activites, acts)
	}
}
