//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	agentcli "numeribus/agent/cli"
	"numeribus/agent/store"
	"numeribus/agent/syncclient"
	"numeribus/internal/diskspace"
	"numeribus/internal/sqlitex"
)

// A laptop whose disk is full still pushes: sending needs no room beyond
// its acks. The agent's store is on a small tmpfs that the test fills, so
// its writes fail as on a full disk (ENOSPC, SQLITE_FULL), each phase with
// the WAL emptied first so that the room left is counted in WAL frames:
//
//  1. room for the ack's frame and nothing more: the round succeeds and
//     says so, though its contact and outcome could not be recorded;
//  2. the same room, with a team mate's changes to pull: the push stands,
//     acked, and only receiving fails;
//  3. not a byte: the ack cannot be written and the round fails cleanly,
//     with everything at the hub;
//  4. space freed: the next round sends nothing again and receives the
//     rest; the hub holds every change exactly once.
//
// (SQLite's max_page_count is no full disk: the round's bookkeeping
// rewrites rows of a page already there, and a page limit lets it.)
func TestPushWithAFullDisk(t *testing.T) {
	onSmallDisk(t, 8<<20, func(d *smallDisk) {
		ctx := context.Background()
		h := startHub(t) // on the test's ordinary disk
		a := newAgentOn(t, h, d.dir, "bus-1", "cd88")
		b := newAgent(t, h, "bus-2", "cd88", nil)
		logs := &syncBuffer{}
		a.cl.Log = slog.New(slog.NewTextHandler(logs, nil))
		frames := d.walFrames(t, a)

		hubHolds := func(phase string, n int) {
			t.Helper()
			changes, distinct, hwm := hubCount(t, h, a.st.Device())
			if changes != n || distinct != n || hwm != n {
				t.Fatalf("%s: hub holds %d changes (%d distinct), hwm %d; want exactly %d", phase, changes, distinct, hwm, n)
			}
		}
		outbox := func(phase string, wantLast, wantAcked uint64) {
			t.Helper()
			last, acked, err := a.st.Seqs(ctx)
			if err != nil || last != wantLast || acked != wantAcked {
				t.Fatalf("%s: outbox last %d acked %d (%v); want %d acked %d", phase, last, acked, err, wantLast, wantAcked)
			}
		}
		full := func(phase string) {
			t.Helper()
			if _, err := a.st.Save(ctx, stops(1)...); !sqlitex.IsFull(err) {
				t.Fatalf("%s: the disk is not full: a save gave %v", phase, err)
			}
		}

		// 1. Room for one WAL frame: the ack's.
		a.save(t, stops(200)...)
		d.fill(t, a, frames(1))
		full("room for the ack")
		rep, err := a.cl.Sync(ctx)
		if err != nil {
			t.Fatalf("sync with room for its ack: %v", err)
		}
		if rep.Pushed != 200 || rep.Acked != 200 || rep.PendingAfter != 0 {
			t.Fatalf("sync with room for its ack: %+v", rep)
		}
		t.Logf("room for the ack: %+v", rep)
		hubHolds("room for the ack", 200)
		outbox("room for the ack", 200, 200)
		if ss, _ := a.st.SyncState(ctx); ss.LastContact != "" || ss.LastSync != "" {
			t.Fatalf("the disk had room for the bookkeeping: %+v", ss)
		}
		if l := logs.String(); !strings.Contains(l, "sync bookkeeping not recorded") || strings.Contains(l, "mairie") {
			t.Fatalf("log of the round:\n%s", l)
		}

		// 2. The same room, and a team mate's changes to receive.
		d.free(t)
		b.save(t, stops(5)...)
		b.sync(t)
		a.save(t, stops(100)...)
		d.fill(t, a, frames(1))
		full("room for the ack, changes to pull")
		rep, err = a.cl.Sync(ctx)
		if !sqlitex.IsFull(err) || !strings.Contains(err.Error(), "receiving") {
			t.Fatalf("sync with no room for the pull: %v", err)
		}
		if rep.Pushed != 100 || rep.Acked != 300 || rep.PendingAfter != 0 || rep.Pulled != 0 {
			t.Fatalf("sync with no room for the pull: %+v", rep)
		}
		t.Logf("room for the ack, changes to pull: %v", err)
		hubHolds("no room for the pull", 300)
		outbox("no room for the pull", 300, 300)

		// 3. Not a byte: the ack cannot be written. `agent sync`, as the
		// mediator would run it, says why.
		d.free(t)
		a.save(t, stops(50)...)
		d.fill(t, a, 0)
		full("no room")
		var stdout, stderr syncBuffer
		code := agentcli.Main(ctx, []string{"sync", "--data", a.dir, "--insecure"}, agentcli.Env{Stdout: &stdout, Stderr: &stderr,
			Getenv: func(k string) string { return map[string]string{"NUMERIBUS_PASSPHRASE": pass}[k] }})
		if code != agentcli.ExitFailure || !strings.Contains(stderr.String(), "agent : disque plein : libérez de la place") ||
			!strings.Contains(stderr.String(), "recording ack 350") || !strings.Contains(stdout.String(), "50 modification(s) envoyée(s)") {
			t.Fatalf("agent sync with a full disk: exit %d\n%s%s", code, stdout.String(), stderr.String())
		}
		t.Logf("no room: agent sync exits %d:\n%s%s", code, stdout.String(), stderr.String())
		hubHolds("no room", 350)
		outbox("no room", 350, 300) // acked as far as the acks could be written

		// 4. Space freed: nothing sent again, nothing doubled.
		d.free(t)
		rep = a.sync(t)
		if rep.Pushed != 0 || rep.Pulled != 5 || rep.Acked != 350 || rep.PendingAfter != 0 {
			t.Fatalf("sync once space is freed: %+v", rep)
		}
		hubHolds("space freed", 350)
		outbox("space freed", 350, 350)
		b.sync(t)
		sameLines(t, "hub and bus-1", hubLines(t, h, "cd88"), a.lines(t))
		sameLines(t, "bus-1 and bus-2", a.lines(t), b.lines(t))
		if ss, _ := a.st.SyncState(ctx); ss.LastContact == "" || ss.LastSync == "" || ss.LastError != "" {
			t.Fatalf("sync state once space is freed: %+v", ss)
		}
	})
}

// newAgentOn is newAgent with its store in dir.
func newAgentOn(t *testing.T, h *testHub, dir, name, team string) *testAgent {
	t.Helper()
	// The low-disk guard (agent/store/disk.go) refuses saves on an 8 MiB
	// disk from the start: told there is room, so that what is tested is
	// the full disk underneath, as when the guard's margin is used up.
	room := func(string) (diskspace.Space, error) { return diskspace.Space{Avail: 1 << 40, Total: 1 << 40}, nil }
	st, _, err := store.Create(context.Background(), filepath.Join(dir, name), []byte(pass), store.Options{KDF: testKDF, FreeSpace: room})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &testAgent{hub: h, name: name, dir: filepath.Dir(st.Path()), st: st,
		cl: &syncclient.Client{Store: st, Version: "test", Insecure: true, AnswerTimeout: 10 * time.Second}}
	if _, err := a.cl.Enroll(context.Background(), h.enrollCode(t, name, team)); err != nil {
		t.Fatalf("enrolling %s: %v", name, err)
	}
	return a
}

// smallDisk is a tmpfs that the test fills with a filler file.
type smallDisk struct {
	dir, filler string
	bsize       int64
}

const smallDiskEnv = "NUMERIBUS_E2E_SMALL_DISK"

// onSmallDisk runs fn with a tmpfs of size bytes. The mount lives in a
// mount namespace of its own: the test binary runs the test again in a
// child process with new user and mount namespaces (unprivileged where
// the kernel allows them; as root, a mount namespace alone), so nothing
// is mounted outside it and the mount ends with the child. Skipped where
// neither works.
func onSmallDisk(t *testing.T, size int64, fn func(*smallDisk)) {
	if os.Getenv(smallDiskEnv) == "" {
		inMountNamespace(t)
		return
	}
	dir := t.TempDir()
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		skipOrFail(t, "cannot keep mounts private: %v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		skipOrFail(t, "cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) }) // after the store closes
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	fn(&smallDisk{dir: dir, filler: filepath.Join(dir, "filler"), bsize: fs.Bsize})
}

func inMountNamespace(t *testing.T) {
	t.Helper()
	attrs := []*syscall.SysProcAttr{{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
	}}
	if os.Getuid() == 0 {
		attrs = append([]*syscall.SysProcAttr{{Cloneflags: syscall.CLONE_NEWNS}}, attrs...)
	}
	var why []string
	for _, attr := range attrs {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), smallDiskEnv+"=1")
		cmd.SysProcAttr = attr
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			t.Fatalf("in a mount namespace: %v\n%s", err, out)
		case err != nil:
			why = append(why, err.Error()) // namespaces refused: try the next way
			continue
		case strings.Contains(string(out), "--- SKIP"):
			skipOrFail(t, "in a mount namespace:\n%s", out)
		}
		t.Logf("in a mount namespace:\n%s", out)
		return
	}
	skipOrFail(t, "no mount namespace for a tmpfs: %s", strings.Join(why, "; "))
}

// walFrames empties the agent's WAL (its content goes to the database
// file), and returns how many bytes of the disk n frames written to the
// empty WAL take: the WAL header, then each frame a header and a page.
func (d *smallDisk) walFrames(t *testing.T, a *testAgent) func(n int) int64 {
	t.Helper()
	var page int64
	db, err := sqlitex.OpenReader(a.st.Path(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&page); err != nil {
		t.Fatal(err)
	}
	bytes := func(n int) int64 {
		end := 32 + int64(n)*(24+page)
		return (end + d.bsize - 1) / d.bsize * d.bsize
	}
	if bytes(2) == bytes(1) {
		skipOrFail(t, "disk blocks of %d bytes hold two WAL frames of %d: no room for exactly one", d.bsize, 24+page)
	}
	return bytes
}

// fill empties the agent's WAL, then fills the disk to leave exactly
// leave bytes free.
func (d *smallDisk) fill(t *testing.T, a *testAgent, leave int64) {
	t.Helper()
	w, err := sqlitex.OpenWriter(a.st.Path())
	if err != nil {
		t.Fatal(err)
	}
	var busy, log, done int
	err = w.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done)
	w.Close()
	if fi, serr := os.Stat(a.st.Path() + "-wal"); err != nil || busy != 0 || serr != nil || fi.Size() != 0 {
		t.Fatalf("emptying the WAL: busy %d, %v, %v", busy, err, serr)
	}
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); errors.Is(err, syscall.ENOSPC) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(fi.Size() - leave); err != nil {
		t.Fatal(err)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &fs); err != nil {
		t.Fatal(err)
	}
	if free := int64(fs.Bavail) * fs.Bsize; free != leave {
		t.Fatalf("disk filled with %d bytes free, want %d", free, leave)
	}
}

// free removes the filler.
func (d *smallDisk) free(t *testing.T) {
	t.Helper()
	if err := os.Remove(d.filler); err != nil {
		t.Fatal(err)
	}
}

// skipOrFail skips outside CI where the machine cannot give the test its
// full disk, and fails under CI, where no test may skip.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("under CI: "+format, args...)
	}
	t.Skipf(format, args...)
}
