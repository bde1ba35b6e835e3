package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/agent/syncclient"
	hubcli "numeribus/hub/cli"
	"numeribus/hub/syncserver"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/jsonl"
	"numeribus/internal/merge"
	"numeribus/internal/seal"
	"numeribus/internal/sqlitex"
)

var testKDF = seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

const pass = "phrase de passe e2e"

// testHub is a hub served in-process on a loopback port.
type testHub struct {
	t      testing.TB
	dir    string
	srv    *hubcli.Server
	cancel context.CancelFunc
	done   chan int
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startHub(t testing.TB, extra ...string) *testHub {
	t.Helper()
	return startHubIn(t, t.TempDir(), extra...)
}

func startHubIn(t testing.TB, dir string, extra ...string) *testHub {
	t.Helper()
	return startHubTuned(t, dir, nil, extra...)
}

// startHubTuned starts a hub whose sync server's options tune adjusts
// (shorter periods, a clock).
func startHubTuned(t testing.TB, dir string, tune func(*syncserver.Options), extra ...string) *testHub {
	t.Helper()
	h := &testHub{t: t, dir: dir, done: make(chan int, 1), logs: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	ready := make(chan *hubcli.Server, 1)
	args := append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}, extra...)
	go func() {
		h.done <- hubcli.Main(ctx, args, hubcli.Env{Stdout: h.logs, Stderr: h.logs, Ready: func(s *hubcli.Server) { ready <- s }, Sync: tune})
	}()
	select {
	case h.srv = <-ready:
	case code := <-h.done:
		t.Fatalf("hub exited %d:\n%s", code, h.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("hub did not start")
	}
	t.Cleanup(h.stop)
	return h
}

func (h *testHub) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(20 * time.Second): // the server's 5 s, then its drain's 10 s
		h.t.Errorf("hub did not stop")
	}
	h.cancel = nil
}

// hubCLI runs a hub command on the hub's data directory.
func (h *testHub) cli(t testing.TB, args ...string) (int, string) {
	t.Helper()
	var out syncBuffer
	code := hubcli.Main(context.Background(), append([]string{args[0], "--data", h.dir}, args[1:]...), hubcli.Env{Stdout: &out, Stderr: &out})
	return code, out.String()
}

func (h *testHub) enrollCode(t testing.TB, name, team string) string {
	t.Helper()
	code, out := h.cli(t, "enroll", "--device", name, "--team", team, "--json")
	if code != 0 {
		t.Fatalf("hub enroll: %d %s", code, out)
	}
	var v struct{ Code string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Code == "" {
		t.Fatalf("enroll output %q: %v", out, err)
	}
	return v.Code
}

// testAgent is an agent store with its sync client, in-process.
type testAgent struct {
	hub  *testHub
	name string
	dir  string
	st   *store.Store
	cl   *syncclient.Client
}

func newAgent(t testing.TB, h *testHub, name, team string, wall func() time.Time) *testAgent {
	t.Helper()
	return newAgentFull(t, h, name, h.enrollCode(t, name, team), wall)
}

func newAgentWithCode(t testing.TB, h *testHub, name, code string) *testAgent {
	t.Helper()
	return newAgentFull(t, h, name, code, nil)
}

func newStore(t testing.TB, name string) *store.Store {
	t.Helper()
	return newStoreWall(t, name, nil)
}

func newStoreWall(t testing.TB, name string, wall func() time.Time) *store.Store {
	t.Helper()
	st, _, err := store.Create(context.Background(), filepath.Join(t.TempDir(), name), []byte(pass), store.Options{KDF: testKDF, Wall: wall})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newAgentFull(t testing.TB, h *testHub, name, code string, wall func() time.Time) *testAgent {
	t.Helper()
	st := newStoreWall(t, name, wall)
	a := &testAgent{hub: h, name: name, dir: filepath.Dir(st.Path()), st: st,
		cl: &syncclient.Client{Store: st, Version: "test", Insecure: true, AnswerTimeout: 10 * time.Second}}
	if wall != nil {
		a.cl.Now = wall
	}
	if _, err := a.cl.Enroll(context.Background(), code); err != nil {
		t.Fatalf("enrolling %s: %v", name, err)
	}
	return a
}

func (a *testAgent) save(t testing.TB, recs ...domain.Record) {
	t.Helper()
	if _, err := a.st.Save(context.Background(), recs...); err != nil {
		t.Fatalf("%s: save: %v", a.name, err)
	}
}

func (a *testAgent) sync(t testing.TB) syncclient.Report {
	t.Helper()
	rep, err := a.cl.Sync(context.Background())
	if err != nil {
		t.Fatalf("%s: sync: %v\nhub log:\n%s", a.name, err, a.hubLog())
	}
	return rep
}

// lines returns the agent's live records as sorted JSON lines.
func (a *testAgent) lines(t testing.TB) []string {
	t.Helper()
	var out []string
	err := a.st.List(context.Background(), "", false, func(it store.Item) error {
		b, err := jsonl.EncodeLine(it.Record)
		out = append(out, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// hubLines returns the hub's live records of a team as sorted JSON lines,
// read straight from its database file.
func hubLines(t testing.TB, h *testHub, team string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(h.dir, hubcli.DBFile), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, kind, state FROM records WHERE team = ? AND deleted = 0`, team)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var idb, state []byte
		var k domain.Kind
		if err := rows.Scan(&idb, &k, &state); err != nil {
			t.Fatal(err)
		}
		st, err := merge.Unmarshal(state)
		if err != nil {
			t.Fatal(err)
		}
		var id ident.ID
		copy(id[:], idb)
		r, err := change.Decode(k, id, st.Live())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := jsonl.EncodeLine(r)
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

func sameLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var diff []string
	for _, g := range got {
		if !slices.Contains(want, g) {
			diff = append(diff, "+ "+g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			diff = append(diff, "- "+w)
		}
	}
	if len(diff) > 10 {
		diff = diff[:10]
	}
	t.Fatalf("%s differ (%d vs %d lines):\n%s", what, len(got), len(want), strings.Join(diff, "\n"))
}

func (a *testAgent) hubLog() string {
	l := a.hub.logs.String()
	if len(l) > 4000 {
		l = "…" + l[len(l)-4000:]
	}
	return l
}
