package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/store/storetest"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/sqlitex"
)

var _ storetest.Inspector = (*Store)(nil)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

// TestConformancePrepared runs the suite with every batch prepared
// before its turn, as the sync does (store.Preparer).
func TestConformancePrepared(t *testing.T) {
	storetest.RunPrepared(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func enroll(t testing.TB, s *Store, name, team string) store.Device {
	t.Helper()
	var tok [32]byte
	rand.Read(tok[:])
	ctx := context.Background()
	if err := s.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: []byte("dk"), PushKey: []byte("pk")}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// activities returns n upserts of new activities from the fixture, seqs
// from 1.
func activities(t testing.TB, n int) []change.Change {
	t.Helper()
	set := fixture.Generate(fixture.Options{N: n, Seed: 1})
	out := make([]change.Change, 0, n)
	for i, a := range set.Activities[:n] {
		f, err := change.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f,
			HLC: hlc.FromTime(a.ID.Time()) + hlc.Timestamp(i), Seq: uint64(i + 1)})
	}
	return out
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	s, p := openTemp(t)
	a := enroll(t, s, "bus-a", "cd88")
	cs := activities(t, 300)
	if _, _, err := s.ApplyBatch(ctx, a.ID, cs[:200], 1234); err != nil {
		t.Fatal(err)
	}
	before, _, _, err := s.ChangesSince(ctx, "cd88", "", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.Device(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "bus-a" || d.HWM != 200 || d.BytesReceived != 1234 || d.ChangesReceived != 200 || !d.EnrolledAt.Equal(t0) {
		t.Fatalf("device after reopen: %+v", d)
	}
	after, _, _, err := s.ChangesSince(ctx, "cd88", "", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || after[199].HubSeq != before[199].HubSeq {
		t.Fatalf("log after reopen: %d changes", len(after))
	}
	hwm, n, err := s.ApplyBatch(ctx, a.ID, cs[150:], 1)
	if err != nil || hwm != 300 || n != 100 {
		t.Fatalf("apply after reopen: hwm %d applied %d err %v", hwm, n, err)
	}
	more, _, _, err := s.ChangesSince(ctx, "cd88", "", before[len(before)-1].HubSeq, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(more) != 100 || more[0].HubSeq != before[len(before)-1].HubSeq+1 {
		t.Fatalf("hub sequence does not continue: %d changes from %d", len(more), more[0].HubSeq)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records[domain.KindActivity] != 300 || st.Changes != 300 || st.ByDevice["bus-a"][domain.KindActivity] != 300 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	s, p := openTemp(t)
	s.Close()
	db, err := sqlitex.OpenWriter(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations(version, name, applied_at) VALUES (99, '0099_future', '')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(ctx, p, Options{})
	if !errors.Is(err, ErrTooNew) {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

func TestOpenNeedsDirectory(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing", "hub.db"), Options{})
	if err == nil {
		t.Fatal("opened in a missing directory")
	}
}

func TestFileIsPrivate(t *testing.T) {
	s, p := openTemp(t)
	defer s.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("hub store mode %v", fi.Mode())
	}
}

// A batch failing midway leaves nothing of it.
func TestFailedBatchLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	a := enroll(t, s, "bus-a", "cd88")
	cs := activities(t, 1001)
	bad := append(cs[:499:499], cs[500:]...) // the 500th change is seq 501: a gap
	if _, _, err := s.ApplyBatch(ctx, a.ID, bad, 100); !errors.Is(err, store.ErrGap) {
		t.Fatalf("got %v, want ErrGap", err)
	}
	d, _ := s.Device(ctx, a.ID)
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.HWM != 0 || d.BytesReceived != 0 || d.ChangesReceived != 0 || st.Changes != 0 || len(st.Records) != 0 {
		t.Fatalf("after a failed batch: device %+v stats %+v", d, st)
	}
	// Invalid changes fail the batch the same way.
	inv := append([]change.Change(nil), cs[:10]...)
	inv[5].Kind = "spaceship"
	if _, _, err := s.ApplyBatch(ctx, a.ID, inv, 100); err == nil || !strings.Contains(err.Error(), "spaceship") {
		t.Fatalf("unknown kind: %v", err)
	}
	if hwm, n, err := s.ApplyBatch(ctx, a.ID, cs[:1000], 100); err != nil || hwm != 1000 || n != 1000 {
		t.Fatalf("the good batch: hwm %d applied %d err %v", hwm, n, err)
	}
}

// After an erasure no erased value is left in the files: not in the
// records, not in the log, not in freed pages, not in the WAL.
func TestErasureLeavesNoTraceInFiles(t *testing.T) {
	ctx := context.Background()
	s, p := openTemp(t)
	defer s.Close()
	a := enroll(t, s, "bus-a", "cd88")
	k := domain.KindBeneficiary
	id := ident.New()
	secret := "Zéphyrine-Quatremère"
	name := func(v string) change.Fields {
		b, _ := change.Marshal(v)
		g, _ := change.Marshal("feminin")
		return change.Fields{2: b, 10: g}
	}
	cs := []change.Change{
		{Kind: k, ID: id, Op: change.OpUpsert, Fields: name(secret), HLC: 1 << 20, Seq: 1},
		{Kind: k, ID: id, Op: change.OpUpsert, Fields: name(secret + "-bis"), HLC: 2 << 20, Seq: 2},
	}
	if _, _, err := s.ApplyBatch(ctx, a.ID, cs, 1); err != nil {
		t.Fatal(err)
	}
	if !fileContains(t, p, secret) {
		t.Fatal("test is broken: the name is not in the files before erasure")
	}
	if _, _, err := s.ApplyBatch(ctx, a.ID, []change.Change{{Kind: k, ID: id, Op: change.OpErase, HLC: 3 << 20, Seq: 3}}, 1); err != nil {
		t.Fatal(err)
	}
	if fileContains(t, p, secret) {
		t.Fatal("the erased name is still in the database files")
	}
}

func fileContains(t *testing.T, p, s string) bool {
	t.Helper()
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(p + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// The pull query walks the (team, hseq) index, not the whole log.
func TestPullUsesIndex(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	rows, err := s.r.Query(`EXPLAIN QUERY PLAN SELECT c.hseq, c.kind, c.record_id, c.op, c.hlc, d.id, c.dseq, c.fields
		FROM changes c JOIN devices d ON d.num = c.device
		WHERE c.team = ? AND c.hseq > ? AND c.device != ?
		ORDER BY c.hseq LIMIT ?`, "t", 0, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, "; ")
	if !strings.Contains(all, "changes_team_hseq") || strings.Contains(all, "TEMP B-TREE") {
		t.Fatalf("plan: %s", all)
	}
}

func BenchmarkApplyBatch(b *testing.B) {
	const batch = 1000
	ctx := context.Background()
	cs := activities(b, b.N*batch)
	var bytes int
	for _, c := range cs[:batch] {
		for _, v := range c.Fields {
			bytes += len(v) + 2
		}
	}
	s, _ := openTemp(b)
	defer s.Close()
	d := enroll(b, s, "bus-a", "cd88")
	b.ResetTimer()
	for i := range b.N {
		if _, n, err := s.ApplyBatch(ctx, d.ID, cs[i*batch:(i+1)*batch], bytes); err != nil || n != batch {
			b.Fatalf("applied %d: %v", n, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "changes/s")
	b.ReportMetric(float64(bytes)/batch, "B/change")
}

// Batches reuse the memory of the ones before (scratchPool): what each
// logged must be its own changes' fields, also with batches of two
// devices applied at once.
func TestBatchesDoNotShareMemory(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	devs := []store.Device{enroll(t, s, "bus-a", "cd88"), enroll(t, s, "bus-b", "cd88")}
	cs := activities(t, 1200)
	want := map[ident.ID][]byte{}
	for i := range cs {
		want[cs[i].ID] = cs[i].Fields.Encode()
	}
	errs := make(chan error, len(devs))
	for d, dev := range devs {
		go func() {
			// Each device sends its half, renumbered from 1, in batches
			// of varying sizes.
			mine := append([]change.Change(nil), cs[d*600:(d+1)*600]...)
			for i := range mine {
				mine[i].Seq = uint64(i + 1)
			}
			for i, size := 0, 7; i < len(mine); i, size = i+size, size*2%97+1 {
				end := min(i+size, len(mine))
				if _, n, err := s.ApplyBatch(ctx, dev.ID, mine[i:end], 1); err != nil || n != end-i {
					errs <- fmt.Errorf("device %d, changes %d-%d: applied %d, %v", d, i, end, n, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range devs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	logged, _, _, err := s.ChangesSince(ctx, "cd88", "", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != len(cs) {
		t.Fatalf("%d changes logged, want %d", len(logged), len(cs))
	}
	for _, l := range logged {
		if got := l.Raw; !bytes.Equal(got, want[l.ID]) {
			t.Fatalf("change %d of %s logged %x, want %x", l.Seq, l.Device, got, want[l.ID])
		}
		_, _, st, err := s.Record(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Fields.Encode(); !bytes.Equal(got, want[l.ID]) {
			t.Fatalf("record %s holds %x, want %x", l.ID, got, want[l.ID])
		}
	}
}

// Commits are checkpointed in the background: the database file grows
// with a batch that leaves the WAL well under the writer's backstop.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	s, p := openTemp(t)
	defer s.Close()
	var n int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil || n != walBackstop {
		t.Fatalf("writer's automatic checkpoint at %d pages (%v), want %d", n, err, walBackstop)
	}
	a := enroll(t, s, "bus-a", "cd88")
	size := func() int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	if _, _, err := s.ApplyBatch(ctx, a.ID, activities(t, 500), 1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); size() < before+100<<10; {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes (%d before the batch): no checkpoint", size(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close ends the checkpoint goroutine, also when closed twice.
func TestCloseStopsCheckpointer(t *testing.T) {
	before := runtime.NumGoroutine()
	s, _ := openTemp(t)
	a := enroll(t, s, "bus-a", "cd88")
	if _, _, err := s.ApplyBatch(context.Background(), a.ID, activities(t, 10), 1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A hub file an earlier version left at 0644, with its -wal and -shm, is
// taken back to 0600 when opened: it holds personal data in clear.
func TestOpenTightensAnOlderFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are ACLs on Windows")
	}
	s, p := openTemp(t)
	s.Close()
	for _, f := range []string{p, p + "-wal", p + "-shm"} {
		if _, err := os.Stat(f); os.IsNotExist(err) {
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range []string{p, p + "-wal", p + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s after Open: mode %o, want 600", filepath.Base(f), m)
		}
	}
}

// A hub upgraded to schema version 6 with consents already merged finds
// them by person after its next open: the migration flags them, Open
// fills consent_subjects.
func TestConsentSubjectsBackfillAtOpen(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	d := enroll(t, s, "bus-1", "cd88")
	person, consent := ident.New(), ident.New()
	f := change.Fields{}
	for n, v := range map[uint64]any{2: person, 3: []string{domain.FinaliteSuivi}, 4: "oral", 6: "2026-03-02"} {
		b, err := change.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		f[n] = b
	}
	c := change.Change{Kind: domain.KindConsent, ID: consent, Op: change.OpUpsert, Fields: f, HLC: hlc.FromTime(t0), Seq: 1}
	if _, _, err := s.ApplyBatch(ctx, d.ID, []change.Change{c}, 10); err != nil {
		t.Fatal(err)
	}
	// What a hub of version 5 holds: the consent, no index of it, and the
	// flag the migration sets.
	for _, q := range []string{`DELETE FROM consent_subjects`, `INSERT INTO facts_meta(key, value) VALUES ('consent_subjects', 1)`} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if cs, err := s.Consents(ctx, "cd88", []ident.ID{person}, nil); err != nil || len(cs) != 0 {
		t.Fatalf("index not cleared: %v %v", cs, err)
	}
	s.Close()
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cs, err := s.Consents(ctx, "cd88", []ident.ID{person}, nil)
	if err != nil || len(cs) != 1 || cs[0].ID != consent {
		t.Fatalf("after the backfill: %v %v, want consent %s", cs, err, consent)
	}
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM facts_meta WHERE key = 'consent_subjects'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("backfill flag left: %d %v", n, err)
	}
}

// A burst of commits is checkpointed once it pauses, not during it (each
// checkpoint copies the indexes' hot pages back again); commits that
// never pause are still checkpointed, at most maxLag after the first.
func TestCheckpointsWaitForAPause(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		pause     ckptPause
		burst     time.Duration
		duringMax int64 // how much the file may grow while the commits go on
	}{
		// The commits come every few ms, well within quiet: no
		// checkpoint until they stop.
		{"a burst", ckptPause{quiet: time.Second, maxLag: time.Hour}, 1500 * time.Millisecond, 0},
		// They never pause long enough: maxLag checkpoints them anyway.
		{"no pause", ckptPause{quiet: time.Hour, maxLag: 300 * time.Millisecond}, 1500 * time.Millisecond, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "hub.db")
			s, err := Open(ctx, p, Options{pause: tc.pause})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			a := enroll(t, s, "bus-a", "cd88")
			size := func() int64 {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				return fi.Size()
			}
			before := size()
			cs := activities(t, 20000)
			seq := 0
			for t0 := time.Now(); time.Since(t0) < tc.burst && seq < len(cs); seq += 100 {
				if _, _, err := s.ApplyBatch(ctx, a.ID, cs[seq:seq+100], 1); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			grew := size() - before
			if tc.duringMax >= 0 && grew > tc.duringMax {
				t.Fatalf("the file grew %d bytes during the burst: checkpointed before it paused", grew)
			}
			if tc.duringMax < 0 && grew < 100<<10 {
				t.Fatalf("the file grew %d bytes in %v of commits without a pause: no checkpoint within maxLag", grew, tc.burst)
			}
			if tc.duringMax >= 0 {
				// Paused: checkpointed within quiet (and the test's patience).
				for deadline := time.Now().Add(10 * time.Second); size() < before+100<<10; {
					if time.Now().After(deadline) {
						t.Fatalf("database file still %d bytes after the burst paused: no checkpoint", size())
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}

// A store closed while its checkpointer waits for a pause checkpoints
// what it committed all the same: another process keeping the file open
// (a guest beside the host), SQLite itself would not at the close.
func TestCloseCheckpointsWhatWaited(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(ctx, p, Options{pause: ckptPause{quiet: time.Hour, maxLag: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	guest, err := Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	a := enroll(t, s, "bus-a", "cd88")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	before := fi.Size()
	if _, _, err := s.ApplyBatch(ctx, a.ID, activities(t, 500), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err = os.Stat(p); err != nil {
		t.Fatal(err)
	}
	if fi.Size() < before+100<<10 {
		t.Fatalf("database file %d bytes after the close (%d before the batch): what waited was not checkpointed", fi.Size(), before)
	}
}
