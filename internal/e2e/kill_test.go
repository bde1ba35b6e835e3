package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentcli "numeribus/agent/cli"
	"numeribus/agent/store"
	hubcli "numeribus/hub/cli"
	"numeribus/internal/pgtest"
	"numeribus/internal/sqlitex"
)

// TestMain lets the test binary run as a hub or an agent in a child
// process, so that tests can SIGKILL real processes mid-sync.
func TestMain(m *testing.M) {
	args := strings.Split(os.Getenv("E2E_ARGS"), "\x1f")
	switch os.Getenv("E2E_CHILD") {
	case "hub":
		os.Exit(hubcli.Main(context.Background(), args, hubcli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
	case "agent":
		os.Exit(agentcli.Main(context.Background(), args, agentcli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	pgtest.Main(m) // runs the tests, then stops the PostgreSQL cluster if one was started
}

func child(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "E2E_CHILD="+role, "E2E_ARGS="+strings.Join(args, "\x1f"), "NUMERIBUS_PASSPHRASE="+pass)
	return cmd
}

// hubProc is a hub in a child process on a fixed loopback port.
type hubProc struct {
	dir, addr string
	cmd       *exec.Cmd
}

func (p *hubProc) start(t *testing.T) {
	t.Helper()
	p.cmd = child("hub", "serve", "--data", p.dir, "--listen", p.addr)
	out, _ := p.cmd.StdoutPipe()
	p.cmd.Stderr = nil
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "hub à l'écoute sur") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("hub child exited before listening")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("hub child did not start")
	}
}

func (p *hubProc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

// waitProgress waits until the hub holds more than from changes of device.
func waitProgress(t *testing.T, h *testHub, device string, from int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, _, hwm := hubCount(t, h, device); hwm > from {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func integrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("%s: integrity_check %q %v", path, ok, err)
	}
}

// Killing the hub and the agent with SIGKILL in the middle of syncs,
// again and again, loses nothing and duplicates nothing, and both files
// stay sound.
func TestKillHubAndAgentMidSync(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; run without -short")
	}
	ctx := context.Background()
	hp := &hubProc{dir: t.TempDir(), addr: freePort(t)}
	hp.start(t)
	defer hp.kill()
	h := &testHub{t: t, dir: hp.dir}
	a := newAgentFull(t, h, "bus-1", h.enrollCode(t, "bus-1", "cd88"), nil)
	device := a.st.Device()
	agentDir := filepath.Dir(a.st.Path())
	a.st.Close()
	all := stops(80000)
	n := 0
	// add saves the next k stops in the agent's store, as the mediator
	// would between two syncs.
	add := func(k int) {
		st, err := store.Open(ctx, agentDir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Unlock(ctx, []byte(pass)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Save(ctx, all[n:n+k]...); err != nil {
			t.Fatal(err)
		}
		st.Close()
		n += k
	}
	const perRound = 6000
	add(perRound)
	start := time.Now()
	if out, err := child("agent", "sync", "--data", agentDir).CombinedOutput(); err != nil {
		t.Fatalf("calibration sync: %v\n%s", err, out)
	}
	full := time.Since(start)
	t.Logf("one sync of %d changes in a child process: %v", perRound, full)

	rng := rand.New(rand.NewPCG(3, 4))
	kills := map[string]int{}
	partial, prev := 0, 0
	for round := 0; round < 12; round++ {
		add(perRound)
		cmd := child("agent", "sync", "--data", agentDir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once the hub has taken part of this round's push, a random
		// moment later: in the middle of the push, not before or after it.
		waitProgress(t, h, device, prev, 20*time.Second)
		time.Sleep(time.Duration(rng.Int64N(int64(full / 4))))
		switch rng.IntN(3) {
		case 0:
			cmd.Process.Kill()
			kills["agent"]++
		case 1:
			hp.kill()
			kills["hub"]++
		case 2:
			cmd.Process.Kill()
			hp.kill()
			kills["both"]++
		}
		cmd.Wait()
		if hp.cmd == nil {
			integrity(t, filepath.Join(hp.dir, hubcli.DBFile))
			hp.start(t)
		}
		integrity(t, filepath.Join(agentDir, store.FileName))
		integrity(t, filepath.Join(hp.dir, hubcli.DBFile))
		c, d, hwm := hubCount(t, h, device)
		if c != d || c != hwm {
			t.Fatalf("round %d: hub has %d changes, %d distinct, hwm %d", round, c, d, hwm)
		}
		if hwm < n && hwm > prev {
			partial++ // killed after some batches landed, before the end
		}
		prev = hwm
		t.Logf("round %d: hub holds %d of %d changes", round, hwm, n)
	}
	if partial == 0 {
		t.Fatal("no kill landed in the middle of a push: the test tested nothing")
	}
	t.Logf("kills: %v", kills)
	out, err := child("agent", "sync", "--data", agentDir).CombinedOutput()
	if err != nil {
		t.Fatalf("final sync: %v\n%s", err, out)
	}
	changes, distinct, hwm := hubCount(t, h, device)
	if changes != n || distinct != n || hwm != n {
		t.Fatalf("hub holds %d changes (%d distinct), hwm %d; want exactly %d", changes, distinct, hwm, n)
	}
	st, err := store.Open(ctx, agentDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if last, acked, _ := st.Seqs(ctx); last != uint64(n) || acked != uint64(n) {
		t.Fatalf("agent: last %d acked %d, want %d", last, acked, n)
	}
}
