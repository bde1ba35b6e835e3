package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/internal/release"
)

// winFS is the operating system's files with Windows' rule for running
// programs: one can be renamed (the name follows it), but not removed,
// written or replaced. The switch's tests run under it on any system.
type winFS struct {
	OSFS
	mu    sync.Mutex
	procs map[int]string // running program → the path it runs from
	next  int
}

var errBusy = errors.New("Access is denied (the file is a running program)")

func (w *winFS) busy(p string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, q := range w.procs {
		if q == p {
			return true
		}
	}
	return false
}

func (w *winFS) Rename(oldpath, newpath string) error {
	if w.busy(newpath) {
		return &fs.PathError{Op: "rename", Path: newpath, Err: errBusy}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	for id, q := range w.procs {
		if q == oldpath {
			w.procs[id] = newpath // the name follows the running program
		}
	}
	return nil
}

func (w *winFS) Remove(name string) error {
	if w.busy(name) {
		return &fs.PathError{Op: "remove", Path: name, Err: errBusy}
	}
	return os.Remove(name)
}

func (w *winFS) WriteFile(name string, data []byte) error {
	if w.busy(name) {
		return &fs.PathError{Op: "write", Path: name, Err: errBusy}
	}
	return w.OSFS.WriteFile(name, data)
}

func (w *winFS) Copy(dst, src string, perm fs.FileMode) error {
	if w.busy(dst) {
		return &fs.PathError{Op: "copy", Path: dst, Err: errBusy}
	}
	return w.OSFS.Copy(dst, src, perm)
}

// start records a program running from p until the returned func is
// called, and returns its id.
func (w *winFS) start(p string) (id int, stop func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	id = w.next
	w.procs[id] = p
	return id, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.procs, id)
	}
}

// pathOf is where program id runs from now.
func (w *winFS) pathOf(id int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.procs[id]
}

// A fake program is a text file: "fake-agent VERSION BEHAVIOUR".
//
//	ok    writes its marker (when on trial), then ends with code 0
//	exit  ends at once with code 3, without a marker
//	hang  never writes its marker, runs until killed
//	plain ends at once with code 0 (a version run without trial)
func fakeProgram(version, behaviour string) []byte {
	return []byte("fake-agent " + version + " " + behaviour + "\n")
}

type fakeRunner struct {
	t      *testing.T
	fs     *winFS
	mu     sync.Mutex
	starts []string // "VERSION BEHAVIOUR" of each start
}

type fakeChild struct {
	done chan struct{}
	once sync.Once
	code int
	stop func()
}

func (c *fakeChild) end(code int) {
	c.once.Do(func() {
		c.code = code
		c.stop()
		close(c.done)
	})
}
func (c *fakeChild) Done() <-chan struct{} { return c.done }
func (c *fakeChild) ExitCode() int         { return c.code }
func (c *fakeChild) Stop()                 { c.end(0) }
func (c *fakeChild) Kill()                 { c.end(1) }

func (r *fakeRunner) Start(path string, args, env []string) (Child, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != "fake-agent" {
		return nil, errors.New("exec format error")
	}
	r.mu.Lock()
	r.starts = append(r.starts, f[1]+" "+f[2])
	r.mu.Unlock()
	c := &fakeChild{done: make(chan struct{})}
	_, c.stop = r.fs.start(path)
	marker := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, MarkerEnv+"="); ok {
			marker = v
		}
	}
	switch f[2] {
	case "ok":
		go func() {
			if marker != "" {
				if err := MarkStarted(marker, f[1]); err != nil {
					r.t.Error(err)
				}
			}
			time.Sleep(20 * time.Millisecond)
			c.end(0)
		}()
	case "exit":
		c.end(3)
	case "plain":
		c.end(0)
	case "hang":
	}
	return c, nil
}

type rig struct {
	t    *testing.T
	dir  string // data directory
	exe  string
	fs   *winFS
	run  *fakeRunner
	said []string
	self int // this test's "process", running from exe
	exit func()
}

// newRig makes an install of version (agent.exe, running) and a data
// directory.
func newRig(t *testing.T, version string) *rig {
	root := t.TempDir()
	r := &rig{t: t, dir: filepath.Join(root, "data"), exe: filepath.Join(root, "bin", "agent.exe"), fs: &winFS{procs: map[int]string{}}}
	r.run = &fakeRunner{t: t, fs: r.fs}
	os.MkdirAll(filepath.Join(r.dir, SubDir), 0o700)
	os.MkdirAll(filepath.Dir(r.exe), 0o755)
	os.WriteFile(r.exe, fakeProgram(version, "plain"), 0o755)
	r.self, r.exit = r.fs.start(r.exe)
	return r
}

func (r *rig) sw(version string, grace time.Duration) *Switch {
	return &Switch{Dir: r.dir, Exe: r.exe, Version: version, Args: []string{"serve", "--data", r.dir}, Grace: grace,
		FS: r.fs, Run: r.run, Say: func(m string) { r.said = append(r.said, m) }}
}

// stage puts a verified release of program in DIR/update.
func (r *rig) stage(version string, program []byte) {
	sum := sha256.Sum256(program)
	os.WriteFile(filepath.Join(r.dir, SubDir, stagedBin), program, 0o600)
	st := Staged{Info: release.Info{Version: version, OS: runtime.GOOS, Arch: runtime.GOARCH, Size: int64(len(program)), SHA256: hex.EncodeToString(sum[:])}}
	if err := writeJSON(filepath.Join(r.dir, SubDir, stagedInfo), st); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) content(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "(absent)"
	}
	return strings.TrimSpace(string(b))
}

func (r *rig) exists(name string) bool {
	_, err := os.Stat(filepath.Join(r.dir, SubDir, name))
	return err == nil
}

func (r *rig) saidHas(s string) bool {
	return slices.ContainsFunc(r.said, func(m string) bool { return strings.Contains(m, s) })
}

func TestWindowsRulesOfTheFake(t *testing.T) {
	// The switch's tests mean something only if the fake refuses what
	// Windows refuses: replacing or removing a running program.
	r := newRig(t, "1.0.0")
	other := filepath.Join(filepath.Dir(r.exe), "agent.new.exe")
	os.WriteFile(other, fakeProgram("1.1.0", "ok"), 0o755)
	if err := r.fs.Rename(other, r.exe); !errors.Is(err, errBusy) {
		t.Fatalf("replacing a running program: %v", err)
	}
	if err := r.fs.Remove(r.exe); !errors.Is(err, errBusy) {
		t.Fatalf("removing a running program: %v", err)
	}
	prev := filepath.Join(filepath.Dir(r.exe), "agent.prev.exe")
	if err := r.fs.Rename(r.exe, prev); err != nil {
		t.Fatalf("renaming a running program: %v", err)
	}
	if err := r.fs.Remove(prev); !errors.Is(err, errBusy) {
		t.Fatalf("the running program's new name is free: %v", err)
	}
}

func TestSwitchInstallsTheNewVersionAndKeepsThePrevious(t *testing.T) {
	r := newRig(t, "1.0.0")
	r.stage("1.1.0", fakeProgram("1.1.0", "ok"))
	out := r.sw("1.0.0", 5*time.Second).AtStart(context.Background())
	if !out.Ran || out.Exit != 0 {
		t.Fatalf("outcome %+v; want the new version to have run the command", out)
	}
	if got := r.content(r.exe); got != "fake-agent 1.1.0 ok" {
		t.Fatalf("agent.exe holds %q", got)
	}
	if got := r.content(filepath.Join(filepath.Dir(r.exe), "agent.prev.exe")); got != "fake-agent 1.0.0 plain" {
		t.Fatalf("agent.prev.exe holds %q", got)
	}
	for _, f := range []string{trialInfo, stagedInfo, stagedBin, markerPrefix + "1.1.0"} {
		if r.exists(f) {
			t.Errorf("%s left behind", f)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(r.exe), "agent.new.exe")); err == nil {
		t.Error("agent.new.exe left behind")
	}
	if !r.saidHas("Version 1.1.0 installée") {
		t.Errorf("said %q", r.said)
	}
	// The next start of the new version has nothing to do.
	if out := r.sw("1.1.0", time.Second).AtStart(context.Background()); out.Ran {
		t.Fatalf("second start: %+v", out)
	}
}

func TestSwitchBringsBackThePreviousVersion(t *testing.T) {
	for _, tt := range []struct {
		name, behaviour string
		says            string
	}{
		{"exits at once", "exit", "arrêtée sans avoir démarré (code 3)"},
		{"never says it started", "hang", "arrêtée sans avoir démarré"},
		{"does not run at all", "", "ne se lance pas"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, "1.0.0")
			program := fakeProgram("1.1.0", tt.behaviour)
			if tt.behaviour == "" {
				program = []byte("\x7fELF not for this machine")
			}
			r.stage("1.1.0", program)
			out := r.sw("1.0.0", 300*time.Millisecond).AtStart(context.Background())
			if out.Ran {
				t.Fatalf("outcome %+v; want this program to go on", out)
			}
			if got := r.content(r.exe); got != "fake-agent 1.0.0 plain" {
				t.Fatalf("agent.exe holds %q after the rollback", got)
			}
			bad, _ := readBad(filepath.Join(r.dir, SubDir))
			if _, ok := isBad(bad, "1.1.0"); !ok {
				t.Fatalf("1.1.0 not remembered as bad: %+v", bad)
			}
			if r.exists(stagedBin) || r.exists(trialInfo) {
				t.Fatal("the failed version is still staged, or its trial")
			}
			if !r.saidHas(tt.says) || !r.saidHas("ne sera plus installée") {
				t.Fatalf("said %q", r.said)
			}
			// Staged again (the hub still announces it): never installed.
			r.stage("1.1.0", program)
			n := len(r.run.starts)
			if out := r.sw("1.0.0", time.Second).AtStart(context.Background()); out.Ran || len(r.run.starts) != n {
				t.Fatalf("a bad version installed again: %+v, starts %v", out, r.run.starts)
			}
			if r.exists(stagedBin) {
				t.Fatal("a bad version left staged")
			}
		})
	}
}

func TestInterruptedTrialBringsBackThePrevious(t *testing.T) {
	// The machine stopped while the new version ran its trial, before its
	// marker: at the next start the new version runs, without a marker.
	r := newRig(t, "1.1.0")
	os.WriteFile(r.exe, fakeProgram("1.1.0", "hang"), 0o755)
	prev := filepath.Join(filepath.Dir(r.exe), "agent.prev.exe")
	os.WriteFile(prev, fakeProgram("1.0.0", "plain"), 0o755)
	writeJSON(filepath.Join(r.dir, SubDir, trialInfo), trial{Version: "1.1.0", Previous: "1.0.0"})
	out := r.sw("1.1.0", time.Second).AtStart(context.Background())
	if !out.Ran || out.Exit != 0 || r.run.starts[len(r.run.starts)-1] != "1.0.0 plain" {
		t.Fatalf("outcome %+v, starts %v; want the previous version to run the command", out, r.run.starts)
	}
	if got := r.content(r.exe); got != "fake-agent 1.0.0 plain" {
		t.Fatalf("agent.exe holds %q", got)
	}
	bad, _ := readBad(filepath.Join(r.dir, SubDir))
	if _, ok := isBad(bad, "1.1.0"); !ok || r.exists(trialInfo) {
		t.Fatalf("bad %+v, trial left: %v", bad, r.exists(trialInfo))
	}
	// This process (1.1.0, now agent.bad.exe) still runs: Windows keeps
	// the file. The next start, once it has ended, removes it.
	gone := filepath.Join(filepath.Dir(r.exe), "agent.bad.exe")
	if r.content(gone) != "fake-agent 1.1.0 hang" {
		t.Fatalf("agent.bad.exe holds %q", r.content(gone))
	}
	if r.fs.pathOf(r.self) != gone {
		t.Fatalf("this process runs from %s", r.fs.pathOf(r.self))
	}
	r.exit() // it ends; the next start is 1.0.0's
	r.fs.start(r.exe)
	r.sw("1.0.0", time.Second).AtStart(context.Background())
	if _, err := os.Stat(gone); err == nil {
		t.Fatal("agent.bad.exe not removed at the next start")
	}
}

func TestStoppedDuringTheTrialIsNotAFailure(t *testing.T) {
	r := newRig(t, "1.0.0")
	r.stage("1.1.0", fakeProgram("1.1.0", "hang"))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel) // Ctrl-C before it said it started
	out := r.sw("1.0.0", 10*time.Second).AtStart(ctx)
	if out.Ran || r.content(r.exe) != "fake-agent 1.0.0 plain" {
		t.Fatalf("outcome %+v, agent.exe %q", out, r.content(r.exe))
	}
	if bad, _ := readBad(filepath.Join(r.dir, SubDir)); len(bad) != 0 {
		t.Fatalf("a version interrupted by the person remembered as bad: %+v", bad)
	}
	if !r.exists(stagedBin) {
		t.Fatal("the staged version was dropped: it must be tried again")
	}
}

func TestSwitchRefusals(t *testing.T) {
	for _, tt := range []struct {
		name    string
		version string
		prepare func(r *rig)
		staged  bool // still staged after
	}{
		{"development build", "dev", func(r *rig) { r.stage("1.1.0", fakeProgram("1.1.0", "ok")) }, true},
		{"not newer", "1.1.0", func(r *rig) { r.stage("1.1.0", fakeProgram("1.1.0", "ok")) }, false},
		{"staged bytes changed on disk", "1.0.0", func(r *rig) {
			r.stage("1.1.0", fakeProgram("1.1.0", "ok"))
			os.WriteFile(filepath.Join(r.dir, SubDir, stagedBin), fakeProgram("6.6.6", "ok"), 0o600)
		}, false},
		{"previous version still running (Windows)", "1.0.0", func(r *rig) {
			r.stage("1.1.0", fakeProgram("1.1.0", "ok"))
			prev := filepath.Join(filepath.Dir(r.exe), "agent.prev.exe")
			os.WriteFile(prev, fakeProgram("0.9.0", "plain"), 0o755)
			r.fs.start(prev)
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, "1.0.0")
			tt.prepare(r)
			out := r.sw(tt.version, time.Second).AtStart(context.Background())
			if out.Ran || len(r.run.starts) != 0 || r.content(r.exe) != "fake-agent 1.0.0 plain" {
				t.Fatalf("outcome %+v, starts %v, agent.exe %q", out, r.run.starts, r.content(r.exe))
			}
			if r.exists(stagedBin) != tt.staged {
				t.Fatalf("staged after: %v, want %v", r.exists(stagedBin), tt.staged)
			}
			if r.exists(trialInfo) {
				t.Fatal("a trial left behind")
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(r.exe), "agent.new.exe")); err == nil {
				t.Fatal("agent.new.exe left behind")
			}
		})
	}
}

func TestUnfinishedSwitchIsTriedAgain(t *testing.T) {
	// The previous start stopped between writing its trial and the
	// renames: this program is still in place, agent.new.exe beside it.
	r := newRig(t, "1.0.0")
	r.stage("1.1.0", fakeProgram("1.1.0", "ok"))
	os.WriteFile(filepath.Join(filepath.Dir(r.exe), "agent.new.exe"), []byte("half a copy"), 0o755)
	writeJSON(filepath.Join(r.dir, SubDir, trialInfo), trial{Version: "1.1.0", Previous: "1.0.0"})
	out := r.sw("1.0.0", 5*time.Second).AtStart(context.Background())
	if !out.Ran || r.content(r.exe) != "fake-agent 1.1.0 ok" {
		t.Fatalf("outcome %+v, agent.exe %q", out, r.content(r.exe))
	}
}

func TestSiblingNames(t *testing.T) {
	for exe, want := range map[string]string{
		filepath.Join("C:", "Numeribus", "agent.exe"): filepath.Join("C:", "Numeribus", "agent.prev.exe"),
		filepath.Join("/opt", "numeribus", "agent"):   filepath.Join("/opt", "numeribus", "agent.prev"),
		filepath.Join("/opt", "agent-1.0"):            filepath.Join("/opt", "agent-1.0.prev"),
	} {
		if got := (&Switch{Exe: exe}).sibling("prev"); got != want {
			t.Errorf("sibling(%s) = %s, want %s", exe, got, want)
		}
	}
}
