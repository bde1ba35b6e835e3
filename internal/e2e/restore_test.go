package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// copyDir copies every regular file of src into dst, as a person restoring
// a backup of a data directory does.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// reopen closes the agent's store and opens the one in its directory
// again, unlocked, with the same sync client settings.
func (a *testAgent) reopen(t testing.TB) {
	t.Helper()
	a.st.Close()
	st, err := store.Open(context.Background(), a.dir, store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Unlock(context.Background(), []byte(pass)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a.st, a.cl.Store = st, st
}

// An agent whose data directory is restored from last week's copy, then
// records new work: the new work reaches the hub (it used to be taken for
// retries of change numbers the hub had seen), the work made after the
// copy comes back from the hub, and the agent, the hub and a teammate end
// with the same records, none doubled.
func TestAgentRestoredFromACopy(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	week1 := records(30, 11)
	a.save(t, week1...)
	a.sync(t)

	backup := filepath.Join(t.TempDir(), "backup")
	a.st.Close()
	copyDir(t, a.dir, backup)
	a.reopen(t)

	week2 := records(20, 12) // made after the copy, synced, then lost
	a.save(t, week2...)
	a.sync(t)

	a.st.Close()
	copyDir(t, backup, a.dir)
	a.reopen(t)
	if got := len(a.lines(t)); got != len(week1) {
		t.Fatalf("restored store holds %d records, want %d", got, len(week1))
	}

	week3 := records(15, 13) // new work on the restored store
	var edited domain.Activity
	for _, r := range week1 {
		if act, ok := r.(*domain.Activity); ok {
			edited = *act
			break
		}
	}
	edited.Duree = 95
	a.save(t, append(week3, &edited)...)
	rep := a.sync(t)
	if rep.Renumbered == 0 {
		t.Errorf("the sync did not notice the store went back: %+v", rep)
	}
	b.sync(t)
	a.sync(t) // a second round changes nothing

	want := len(week1) + len(week2) + len(week3)
	la := a.lines(t)
	if len(la) != want {
		t.Fatalf("agent holds %d records, want %d (week 1 %d, lost week 2 %d, new week 3 %d)", len(la), want, len(week1), len(week2), len(week3))
	}
	sameLines(t, "hub and restored agent", hubLines(t, h, "cd88"), la)
	sameLines(t, "teammate and restored agent", b.lines(t), la)
	it, err := a.st.Get(context.Background(), edited.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := it.Record.(*domain.Activity).Duree; d != 95 {
		t.Errorf("the edit made after the restore lost: duree %d", d)
	}
	last, acked, err := a.st.Seqs(context.Background())
	if err != nil || last != acked {
		t.Errorf("outbox not empty after recovery: last %d acked %d (%v)", last, acked, err)
	}
	if ss, _ := a.st.SyncState(context.Background()); ss.Recovering {
		t.Error("still pulling its own changes after a complete round")
	}
}

// A hub restored from a backup: its agents send again what it lost, pull
// again what their cursors had passed, and everyone converges — where they
// used to be refused forever with out_of_order.
func TestHubRestoredFromABackup(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	a.save(t, records(25, 21)...)
	a.sync(t)
	b.save(t, records(10, 22)...)
	b.sync(t)
	a.sync(t)

	h.stop()
	backup := filepath.Join(t.TempDir(), "hub-backup")
	copyDir(t, dir, backup)
	h = restartHub(t, dir, a, b)

	a.save(t, records(20, 23)...) // reach the hub, then lost with it
	a.sync(t)
	b.save(t, records(10, 24)...)
	b.sync(t)
	a.sync(t)

	h.stop()
	copyDir(t, backup, dir)
	h = restartHub(t, dir, a, b)

	// New work at the restored hub before the agents come back: it takes
	// the hub seqs the agents' cursors had already passed.
	stop := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-02", Lieu: "Place de la mairie", Commune: "88413", HeureDebut: "09:00", HeureFin: "12:00"}
	b.save(t, stop)
	rep := b.sync(t)
	if rep.Resent == 0 {
		t.Errorf("b did not send again what the hub lost: %+v", rep)
	}
	a.save(t, records(5, 25)...)
	for _, ag := range []*testAgent{a, b, a} {
		ag.sync(t)
	}

	la := a.lines(t)
	want := 1
	for _, rs := range [][2]int{{25, 21}, {10, 22}, {20, 23}, {10, 24}, {5, 25}} {
		want += len(records(rs[0], uint64(rs[1])))
	}
	if len(la) != want {
		t.Fatalf("agent holds %d records, want %d", len(la), want)
	}
	sameLines(t, "hub and agent a", hubLines(t, h, "cd88"), la)
	sameLines(t, "agents a and b", b.lines(t), la)
}

// restartHub starts the hub again on dir (a new port) and points the
// agents at it.
func restartHub(t *testing.T, dir string, agents ...*testAgent) *testHub {
	t.Helper()
	h := startHubIn(t, dir)
	for _, a := range agents {
		a.hub, a.cl.URL = h, h.srv.URL
	}
	return h
}

// A laptop that loses the tail of its write-ahead log (a power cut on a
// disk that lied about flushing, a damaged -wal): SQLite silently drops
// the transactions after the last good frame, so the store goes back in
// time as with a restored copy, synced work included. The next rounds
// find it out at the handshake, send the new work and bring the lost work
// back from the hub.
func TestAgentLosesItsWALTail(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	a.save(t, records(30, 31)...)
	a.sync(t)
	a.reopen(t) // closing checkpoints: what follows stays in the WAL

	a.save(t, records(20, 32)...) // synced, then lost with the WAL's tail
	a.sync(t)
	db := filepath.Join(a.dir, "agent.db")
	walCopy, err := os.ReadFile(db + "-wal")
	if err != nil || len(walCopy) < 64<<10 {
		t.Fatalf("the WAL holds %d bytes (%v): nothing to lose", len(walCopy), err)
	}
	dbCopy, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	a.st.Close()
	// The database file as it was before the close's checkpoint, and a
	// WAL cut in the middle of a frame: its first frames survive.
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		os.Remove(f)
	}
	if err := os.WriteFile(db, dbCopy, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db+"-wal", walCopy[:len(walCopy)/3+1000], 0o600); err != nil {
		t.Fatal(err)
	}
	a.reopen(t)
	if got, before := len(a.lines(t)), len(records(30, 31))+len(records(20, 32)); got >= before {
		t.Fatalf("the store kept %d records of %d: the WAL's tail was not lost", got, before)
	}

	a.save(t, records(10, 33)...)
	if rep := a.sync(t); rep.Renumbered == 0 {
		t.Errorf("the sync did not notice the store went back: %+v", rep)
	}
	b.sync(t)
	a.sync(t)
	la := a.lines(t)
	if want := len(records(30, 31)) + len(records(20, 32)) + len(records(10, 33)); len(la) != want {
		t.Fatalf("agent holds %d records after recovery, want %d", len(la), want)
	}
	sameLines(t, "hub and agent", hubLines(t, h, "cd88"), la)
	sameLines(t, "teammate and agent", b.lines(t), la)
	if last, acked, err := a.st.Seqs(context.Background()); err != nil || last != acked {
		t.Errorf("outbox not empty after recovery: last %d acked %d (%v)", last, acked, err)
	}
}

// A hub restored from a backup, then fed again in another order: the
// change at an agent's pull cursor can come back identical at the same
// hub seq (its device sends it again first) while an earlier seq now
// holds a change the agent never saw. The cursor's check must cover the
// log before it, not only the one entry, or the agent steps over that
// change for good.
func TestRestoredHubRefilledInAnotherOrder(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	d := newAgent(t, h, "bus-3", "cd88", nil)
	for _, ag := range []*testAgent{a, b, d} {
		ag.sync(t)
	}
	h.stop()
	backup := filepath.Join(t.TempDir(), "hub-backup")
	copyDir(t, dir, backup)
	h = restartHub(t, dir, a, b, d)

	b.save(t, stops(1)...) // b's own: at the copy point + 1…
	b.sync(t)
	a.save(t, stops(1)...) // …then a's, which b pulls: b's cursor
	a.sync(t)
	b.sync(t)

	h.stop()
	copyDir(t, backup, dir)
	h = restartHub(t, dir, a, b, d)
	d.save(t, stops(1)...) // d's new work takes the seqs b's work had
	d.sync(t)
	a.sync(t) // a sends its change again: it lands where it was, identical
	for range 2 {
		for _, ag := range []*testAgent{b, a, d} {
			ag.sync(t)
		}
	}
	la := a.lines(t)
	sameLines(t, "agents a and b", b.lines(t), la)
	sameLines(t, "agents a and d", d.lines(t), la)
	sameLines(t, "hub and agent a", hubLines(t, h, "cd88"), la)
}
