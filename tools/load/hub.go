package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hubProc is one running `hub serve` process and what was sampled of it.
type hubProc struct {
	name string // "hub0", "hub1"
	addr string // host:port it listens on
	cmd  *exec.Cmd
	log  *os.File

	dead   atomic.Bool // killed or exited: agents stop choosing it
	killed atomic.Bool // by kill: its exit is expected
	exited chan struct{}
	err    error // Wait's result, once exited is closed

	mu       sync.Mutex
	peakRSS  int64 // VmHWM, bytes, last sampled
	rss      int64 // VmRSS, bytes, last sampled
	peakAnon int64 // the most RssAnon sampled: the heap, not the mapped database
	cpu      time.Duration
	maxFDs   int
	stopSamp chan struct{}
	sampled  chan struct{}
	once     sync.Once // closeSampling
}

// hubEnv is the environment of the hub's processes: ours, without the
// variables that would point it at another data directory or database
// than the flags say.
func hubEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NUMERIBUS_HUB_DATA=") || strings.HasPrefix(kv, "NUMERIBUS_HUB_DB=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startHub starts `hub serve` on a free loopback port with data dir and,
// for PostgreSQL, db; its log goes to logPath. It returns once the hub
// says it listens, and starts sampling its memory and descriptors.
func startHub(ctx context.Context, bin, name, dir, db, logPath string) (*hubProc, error) {
	args := []string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}
	if db != "" {
		args = append(args, "--db", db)
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("hub log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = hubEnv()
	cmd.Stderr = lf
	cmd.SysProcAttr = childAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	h := &hubProc{name: name, cmd: cmd, log: lf, exited: make(chan struct{}), stopSamp: make(chan struct{}), sampled: make(chan struct{})}
	go h.sample()
	addr := make(chan string, 1)
	go func() {
		// The first line says where it listens; the rest is drained so
		// that the hub never blocks on a full pipe.
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "hub à l'écoute sur "); ok {
				a, _, _ = strings.Cut(a, " ")
				select {
				case addr <- a:
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		h.err = cmd.Wait()
		h.dead.Store(true)
		close(h.exited)
	}()
	select {
	case h.addr = <-addr:
	case <-h.exited:
		h.closeSampling()
		return nil, fmt.Errorf("%s exited before listening (%v): see %s", name, h.err, logPath)
	case <-time.After(2 * time.Minute):
		h.kill()
		return nil, fmt.Errorf("%s did not listen within 2 minutes: see %s", name, logPath)
	case <-ctx.Done():
		h.kill()
		return nil, ctx.Err()
	}
	return h, nil
}

// sample reads the process's peak memory and counts its descriptors every
// 100 ms until stopped or the process is gone: a peak between two
// samples is still seen (VmHWM is the kernel's own high-water mark), a
// descriptor peak may be missed by at most 100 ms of connections.
func (h *hubProc) sample() {
	defer close(h.sampled)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	pid := h.cmd.Process.Pid
	for {
		hwm, rss, anon, err := memOf(pid)
		n, ferr := fdsOf(pid)
		cpu, cerr := cpuOf(pid)
		h.mu.Lock()
		if err == nil {
			h.peakRSS, h.rss, h.peakAnon = max(h.peakRSS, hwm), rss, max(h.peakAnon, anon)
		}
		if cerr == nil {
			h.cpu = cpu
		}
		if ferr == nil {
			h.maxFDs = max(h.maxFDs, n)
		}
		h.mu.Unlock()
		select {
		case <-h.stopSamp:
			return
		case <-h.exited:
			return
		case <-t.C:
		}
	}
}

// figures returns the peak memory (MiB), the current memory (MiB) and the
// most descriptors seen.
func (h *hubProc) figures() (peakMiB, rssMiB float64, fds int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return mib(h.peakRSS), mib(h.rss), h.maxFDs
}

// more returns the most anonymous memory sampled (MiB) and the CPU time
// used, last sampled.
func (h *hubProc) more() (anonMiB float64, cpu time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return mib(h.peakAnon), h.cpu
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// kill stops the process with SIGKILL: what the two-hub scenario does to
// one instance midway. It waits for the process to be gone.
func (h *hubProc) kill() {
	h.killed.Store(true)
	h.dead.Store(true)
	h.cmd.Process.Kill()
	<-h.exited
	h.closeSampling()
}

// stop asks the hub to stop (SIGTERM: it closes its connections and its
// store), and kills it after 15 s. It reports a hub that exited on its
// own during the run, or failed to stop cleanly.
func (h *hubProc) stop() error {
	defer h.closeSampling()
	select {
	case <-h.exited:
		if h.killed.Load() {
			return nil
		}
		return fmt.Errorf("%s exited during the run (%v): see its log", h.name, h.err)
	default:
	}
	h.dead.Store(true)
	h.cmd.Process.Signal(terminate)
	select {
	case <-h.exited:
	case <-time.After(15 * time.Second):
		h.cmd.Process.Kill()
		<-h.exited
		return fmt.Errorf("%s did not stop within 15 s of SIGTERM: killed", h.name)
	}
	if h.err != nil {
		return fmt.Errorf("%s stopping: %w", h.name, h.err)
	}
	return nil
}

func (h *hubProc) closeSampling() {
	h.once.Do(func() {
		close(h.stopSamp)
		<-h.sampled
		h.log.Close()
	})
}

// hubCommand runs another hub command (revoke) against the same data
// directory and database, and returns its output.
func hubCommand(ctx context.Context, bin, dir, db string, args ...string) ([]byte, error) {
	args = append(args, "--data", dir)
	if db != "" {
		args = append(args, "--db", db)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = hubEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("hub %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return out, nil
}
