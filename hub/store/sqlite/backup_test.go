package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A backup taken while batches are applied is the hub as of one commit;
// a restore is refused while the hub has the file open, then puts the
// copy in place, the replaced database kept aside, and the hub carries
// on from the copy's state.
func TestBackupWhileApplyingThenRestore(t *testing.T) {
	ctx := context.Background()
	s, p := openTemp(t)
	a := enroll(t, s, "bus-a", "cd88")
	cs := activities(t, 600)
	if _, _, err := s.ApplyBatch(ctx, a.ID, cs[:100], 1); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // batches committed during the copy
		defer wg.Done()
		for i := 100; i < 500; i += 50 {
			if _, _, err := s.ApplyBatch(ctx, a.ID, cs[i:i+50], 1); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	out := filepath.Join(t.TempDir(), "hub-backup.db")
	err := Backup(ctx, p, out)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if err := Backup(ctx, p, out); err == nil {
		t.Fatal("a backup overwrote an existing file")
	}

	if _, err := Restore(ctx, p, out); !errors.Is(err, ErrHubRunning) {
		t.Fatalf("restore with the hub open: %v, want ErrHubRunning", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	aside, err := Restore(ctx, p, out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Fatalf("replaced database not kept aside: %v", err)
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
	log, _, _, err := s.ChangesSince(ctx, "cd88", "", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	// One commit's state: the mark and the log agree, on a whole batch.
	if d.HWM < 100 || d.HWM > 500 || (d.HWM-100)%50 != 0 || uint64(len(log)) != d.HWM {
		t.Fatalf("restored hub: mark %d, %d changes in the log", d.HWM, len(log))
	}
	// The hub goes on from there: the rest arrives again.
	hwm, _, err := s.ApplyBatch(ctx, a.ID, cs[d.HWM:], 1)
	if err != nil || hwm != 600 {
		t.Fatalf("apply after restore: %d %v", hwm, err)
	}

	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte("pas une base"), 0o600)
	s.Close()
	if _, err := Restore(ctx, p, junk); err == nil {
		t.Fatal("a file that is no hub database was restored")
	}
}
