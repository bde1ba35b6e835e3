package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"numeribus/agent/store"
	hubcli "numeribus/hub/cli"
	"numeribus/internal/sqlitex"
)

// unlockedLine is what `agent seed` prints once it has unlocked the
// store, before its write: the event the tests wait on.
const unlockedLine = "Magasin déverrouillé"

// watched is a child process whose output the test reads as it comes,
// to wait on what it prints rather than on guessed delays.
type watched struct {
	name string // role and command, for messages
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // set before done closes
}

func startWatched(t *testing.T, role string, args ...string) *watched {
	t.Helper()
	w := &watched{name: role + " " + args[0], cmd: child(role, args...), out: &syncBuffer{}, done: make(chan struct{})}
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(w.stop)
	return w
}

// stop kills the process if it still runs, and waits for it.
func (w *watched) stop() {
	select {
	case <-w.done:
	default:
		w.cmd.Process.Kill()
		<-w.done
	}
}

func (w *watched) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// waitPrinted waits, at most limit, until the process has printed re's
// match, and returns it; it fails if the process ends first.
func (w *watched) waitPrinted(t *testing.T, re *regexp.Regexp, limit time.Duration) []string {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(2 * time.Millisecond) {
		if m := re.FindStringSubmatch(w.out.String()); m != nil {
			return m
		}
		if w.exited() {
			t.Fatalf("%s ended (%v) without printing %q:\n%s", w.name, w.err, re, w.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %v:\n%s", w.name, re, limit, w.out.String())
		}
	}
}

// wait waits for the process to end and fails the test on a non-zero exit.
func (w *watched) wait(t *testing.T, limit time.Duration) string {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(limit):
		t.Fatalf("%s did not end within %v:\n%s", w.name, limit, w.out.String())
	}
	if w.err != nil {
		t.Fatalf("%s: %v\n%s", w.name, w.err, w.out.String())
	}
	return w.out.String()
}

// TestTwoSeedsAtOnceOnOneStore runs two `agent seed` processes at the
// same time on one store, as `agent seed` or `agent import` beside a
// running `agent serve`: both must write, and the outbox must number
// every change once, without a gap.
func TestTwoSeedsAtOnceOnOneStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	run(t, "agent", "init", "--data", dir)

	// The test holds the write lock while both start, until each has
	// said it unlocked (and so read the store's last seq) — before
	// either writes, as serve has long before a seed. They wait for the
	// lock well within SQLite's busy timeout.
	w, err := sqlitex.OpenWriter(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tx, err := w.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var seeds []*watched
	for _, k := range []string{"11", "22"} {
		seeds = append(seeds, startWatched(t, "agent", "seed", "--data", dir, "--n", "200", "--seed", k))
	}
	for _, s := range seeds {
		s.waitPrinted(t, regexp.MustCompile(unlockedLine), 20*time.Second)
	}
	tx.Rollback()
	created := uint64(0)
	createdRe := regexp.MustCompile(`: (\d+) créé`)
	for _, s := range seeds {
		out := s.wait(t, 30*time.Second)
		m := createdRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("agent seed printed %q", out)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		created += n
	}

	st := agentStatus(t, dir)
	live := uint64(0)
	for _, k := range st.Records {
		live += k.Live
	}
	if st.LastSeq != created || st.Pending != created || live != created {
		t.Fatalf("status: last seq %d, %d pending, %d records; the seeds created %d", st.LastSeq, st.Pending, live, created)
	}
	noGap(t, dir, created)
}

type statusOut struct {
	Device  string `json:"device_id"`
	LastSeq uint64 `json:"last_seq"`
	Pending uint64 `json:"pending_changes"`
	Records map[string]struct {
		Live uint64 `json:"live"`
	} `json:"records"`
}

// agentStatus is `agent status --json`, run as a process of its own.
func agentStatus(t *testing.T, dir string) statusOut {
	t.Helper()
	var st statusOut
	if err := json.Unmarshal([]byte(run(t, "agent", "status", "--data", dir, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// noGap checks that the store's change log numbers its changes 1..n.
func noGap(t *testing.T, dir string, n uint64) {
	t.Helper()
	s, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	i := uint64(0)
	err = s.Log(context.Background(), func(e store.LogEntry) error {
		i++
		if e.Seq != i {
			return fmt.Errorf("change %d of the log has seq %d", i, e.Seq)
		}
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("log: %d changes (%v), want %d without a gap", i, err, n)
	}
}

// uiClient is a browser of `agent serve`'s web interface: a cookie jar
// and the server's address.
type uiClient struct {
	base string
	c    *http.Client
}

// startServe runs `agent serve` in a process of its own on a free
// loopback port, and returns its web interface once it listens.
func startServe(t *testing.T, dir string) (*watched, *uiClient) {
	t.Helper()
	srv := startWatched(t, "agent", "serve", "--data", dir, "--listen", "127.0.0.1:0")
	m := srv.waitPrinted(t, regexp.MustCompile(`Interface web : (http://127\.0\.0\.1:\d+)/`), 20*time.Second)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return srv, &uiClient{base: m[1], c: c}
}

// unlock signs the browser in with the passphrase, as the unlock page.
func (u *uiClient) unlock(t *testing.T) {
	t.Helper()
	resp, err := u.c.PostForm(u.base+"/unlock", url.Values{"secret": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unlock: %s", resp.Status)
	}
}

// saveActivity creates the i-th activity through the JSON API and
// returns its id; anything but 201 fails the test.
func (u *uiClient) saveActivity(t *testing.T, i int) string {
	t.Helper()
	body := fmt.Sprintf(`{"type":"individuel","date":"2026-03-02","duree":%d,"type_lieu":"a_distance","thematiques":["email"]}`, 1+i%600)
	resp, err := u.c.Post(u.base+"/api/activities", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil || out.ID == "" {
		t.Fatalf("save %d in the UI: %s %s", i, resp.Status, b)
	}
	return out.ID
}

// Issue #10: `agent seed` run while `agent serve` runs made every later
// save in the UI fail (UNIQUE constraint failed: changes.seq) until a
// restart. Here, three real processes — the hub aside: `agent serve`,
// saves through its web interface before, during and after an `agent
// seed` in a second process. Every save succeeds, the change log numbers
// both processes' changes 1..N without a gap, and serve's sync loop
// brings all of them to the hub, each once.
func TestSaveInTheUIWhileSeedRuns(t *testing.T) {
	h := startHub(t)
	a := newProcAgent(t, h, "bus-1", "cd88")
	srv, ui := startServe(t, a.dir)
	ui.unlock(t)

	var uiIDs []string
	save := func() { uiIDs = append(uiIDs, ui.saveActivity(t, len(uiIDs))) }
	for range 3 {
		save()
	}
	seed := startWatched(t, "agent", "seed", "--data", a.dir, "--n", "150", "--seed", "5")
	// Once the seed has unlocked (read the last seq), save until it ends:
	// the saves and its write contend for the store's write lock.
	seed.waitPrinted(t, regexp.MustCompile(unlockedLine), 30*time.Second)
	during := 0
	for {
		save()
		during++
		if seed.exited() {
			break
		}
	}
	m := regexp.MustCompile(`: (\d+) créé`).FindStringSubmatch(seed.wait(t, 30*time.Second))
	if m == nil {
		t.Fatalf("agent seed printed %q", seed.out.String())
	}
	created, _ := strconv.Atoi(m[1])
	for range 3 {
		save()
	}
	t.Logf("%d saves in the UI, %d while the seed ran; the seed created %d", len(uiIDs), during, created)

	want := created + len(uiIDs)
	st := agentStatus(t, a.dir)
	if st.LastSeq != uint64(want) {
		t.Fatalf("last seq %d, want %d (%d from the UI, %d from the seed)", st.LastSeq, want, len(uiIDs), created)
	}
	noGap(t, a.dir, uint64(want))

	// serve's loop pushes both processes' changes: wait until the hub
	// holds them all, at most 30 s.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, d, hwm := hubCountByName(t, h, "bus-1"); hwm == want {
			if c != want || d != want {
				t.Fatalf("hub holds %d changes (%d distinct) up to %d, want %d each once", c, d, hwm, want)
			}
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("hub holds changes up to %d of %d after 30 s\nserve:\n%s", hwm, want, srv.out.String())
		}
	}
	agentIDs := listedIDs(t, a.dir)
	for _, id := range uiIDs {
		if !slices.Contains(agentIDs, id) {
			t.Fatalf("saved %s in the UI, not in agent list", id)
		}
	}
	var hubIDs []string
	for _, l := range hubLines(t, h, "cd88") {
		hubIDs = append(hubIDs, lineID(t, l))
	}
	slices.Sort(hubIDs)
	if len(agentIDs) != want || !slices.Equal(hubIDs, agentIDs) {
		t.Fatalf("agent lists %d records, hub holds %d, want the same %d", len(agentIDs), len(hubIDs), want)
	}
}

// listedIDs returns the ids of `agent list --json`, sorted.
func listedIDs(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "agent", "list", "--data", dir, "--json")), "\n") {
		ids = append(ids, lineID(t, l))
	}
	slices.Sort(ids)
	return ids
}

func lineID(t *testing.T, line string) string {
	t.Helper()
	var v struct{ ID string }
	if err := json.Unmarshal([]byte(line), &v); err != nil || v.ID == "" {
		t.Fatalf("line without id %q: %v", line, err)
	}
	return v.ID
}

// hubCountByName is hubCount for a device known by its name.
func hubCountByName(t *testing.T, h *testHub, name string) (changes, distinct, hwm int) {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(h.dir, hubcli.DBFile), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT count(c.dseq), count(DISTINCT c.dseq), d.hwm FROM devices d LEFT JOIN changes c ON c.device = d.num WHERE d.name = ?`, name).Scan(&changes, &distinct, &hwm)
	if err != nil {
		t.Fatal(err)
	}
	return
}
