package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/domain"
)

// An agent's own backup, restored, syncs back to where the team is: the
// work recorded and synced after the backup comes back from the hub, the
// work recorded after the restore reaches the hub and the teammate, and
// every record is the same everywhere — nothing lost, nothing doubled
// (one hub change per change number, none missing). The backup is taken
// by store.Backup while the store is open and the restore is
// store.Restore, as `agent backup` and `agent restore --latest` run them.
func TestAgentBackupRestoreResync(t *testing.T) {
	ctx := context.Background()
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	week1 := records(25, 51)
	a.save(t, week1...)
	a.sync(t)
	if _, err := a.st.Backup(ctx, store.BackupManual); err != nil {
		t.Fatal(err)
	}

	week2 := records(15, 52) // after the backup: synced, then gone with the restore
	var edited domain.Activity
	for _, r := range week1 {
		if act, ok := r.(*domain.Activity); ok {
			edited = *act
			break
		}
	}
	edited.Duree = 105 // an edit of a record the backup holds older
	a.save(t, append(week2, &edited)...)
	a.sync(t)
	b.sync(t)

	a.st.Close()
	latest, _, err := store.LatestBackup(ctx, a.dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := store.Restore(ctx, a.dir, store.RestoreOptions{From: latest.Path})
	if err != nil {
		t.Fatalf("restore (everything was synced, no --force needed): %v", err)
	}
	a.reopen(t)
	if got := len(a.lines(t)); got != len(week1) {
		t.Fatalf("the restored store holds %d records, want the backup's %d", got, len(week1))
	}

	week3 := records(10, 53) // recorded on the restored store
	a.save(t, week3...)
	if rep := a.sync(t); rep.Renumbered == 0 {
		t.Errorf("the sync did not notice the store went back: %+v", rep)
	}
	b.sync(t)
	a.sync(t)

	la := a.lines(t)
	if want := len(week1) + len(week2) + len(week3); len(la) != want {
		t.Fatalf("agent holds %d records, want %d", len(la), want)
	}
	sameLines(t, "hub and restored agent", hubLines(t, h, "cd88"), la)
	sameLines(t, "teammate and restored agent", b.lines(t), la)
	it, err := a.st.Get(ctx, edited.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := it.Record.(*domain.Activity).Duree; d != 105 {
		t.Errorf("the edit made after the backup is lost: duree %d", d)
	}
	changes, distinct, hwm := hubCount(t, h, a.st.Device())
	if changes != distinct || changes != hwm {
		t.Errorf("hub holds %d changes of the agent, %d distinct numbers, mark %d: doubled or missing", changes, distinct, hwm)
	}
	if last, acked, err := a.st.Seqs(ctx); err != nil || last != acked || last != uint64(hwm) {
		t.Errorf("agent's log ends at %d, acked %d, hub's mark %d (%v)", last, acked, hwm, err)
	}
	bs, err := store.Backups(ctx, a.dir)
	if err != nil {
		t.Fatal(err)
	}
	var aside bool
	for _, x := range bs {
		aside = aside || (x.Reason == store.BackupAside && x.Path == res.Aside)
	}
	if !aside {
		t.Errorf("the replaced store is not kept aside: %+v", bs)
	}
}

// `hub backup` taken while the hub serves (an agent syncing meanwhile),
// then `hub restore` once the hub is stopped: the agents send again what
// the backup lacks, pull what they had already passed, and the hub and
// both agents end with the same records. The restore is refused while
// the hub runs.
func TestHubBackupCommandRestores(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	a.save(t, records(20, 61)...)
	a.sync(t)
	b.save(t, records(10, 62)...)
	b.sync(t)

	b.save(t, records(10, 63)...)
	synced := make(chan error, 1)
	go func() { _, err := b.cl.Sync(context.Background()); synced <- err }()
	out := filepath.Join(t.TempDir(), "hub-backup.db")
	if code, msg := h.cli(t, "backup", "--out", out); code != 0 || !strings.Contains(msg, "sauvegardée dans") {
		t.Fatalf("hub backup while serving: %d %s", code, msg)
	}
	if err := <-synced; err != nil {
		t.Fatal(err)
	}

	a.save(t, records(15, 64)...) // reach the hub, then lost with it
	a.sync(t)
	b.sync(t)
	if code, msg := h.cli(t, "restore", "--from", out); code != 5 || !strings.Contains(msg, "arrêtez d'abord `hub serve`") {
		t.Fatalf("hub restore while serving: %d %s", code, msg)
	}
	h.stop()
	if code, msg := h.cli(t, "restore", "--from", out); code != 0 || !strings.Contains(msg, "gardée à part") {
		t.Fatalf("hub restore: %d %s", code, msg)
	}
	h = restartHub(t, dir, a, b)
	a.save(t, records(5, 65)...)
	for _, ag := range []*testAgent{a, b, a, b} {
		ag.sync(t)
	}
	la := a.lines(t)
	want := 0
	for _, rs := range [][2]int{{20, 61}, {10, 62}, {10, 63}, {15, 64}, {5, 65}} {
		want += len(records(rs[0], uint64(rs[1])))
	}
	if len(la) != want {
		t.Fatalf("agent holds %d records, want %d", len(la), want)
	}
	sameLines(t, "hub and agent a", hubLines(t, h, "cd88"), la)
	sameLines(t, "agents a and b", b.lines(t), la)
	for _, ag := range []*testAgent{a, b} {
		changes, distinct, hwm := hubCount(t, h, ag.st.Device())
		last, acked, _ := ag.st.Seqs(context.Background())
		if changes != distinct || changes != hwm || uint64(hwm) != last || last != acked {
			t.Errorf("%s: hub holds %d changes (%d distinct, mark %d); agent's log ends at %d, acked %d", ag.name, changes, distinct, hwm, last, acked)
		}
	}
}
