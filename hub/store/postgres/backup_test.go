package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"numeribus/internal/pgtest"
)

// `hub backup` on PostgreSQL is pg_dump; the restore is the commands
// RestoreCommands prints (and docs/OPERATIONS.md gives), run here as an
// operator would, into a new database: the hub opened on it holds the
// devices and the log of the one backed up.
func TestDumpAndDocumentedRestore(t *testing.T) {
	ctx := context.Background()
	s, url := open(t)
	dev := enroll(t, s, "bus-1", "cd88")
	if _, _, err := s.ApplyBatch(ctx, dev, tourStops(t, 0, 40), 100); err != nil {
		t.Fatal(err)
	}
	bin := pgtest.BinDir()
	out := filepath.Join(t.TempDir(), "hub.dump")
	if err := Dump(ctx, url, out, bin); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dump file: %v %v", fi, err)
	}
	if err := Dump(ctx, url, out, bin); err == nil {
		t.Fatal("a dump overwrote an existing file")
	}
	if err := Dump(ctx, url, filepath.Join(t.TempDir(), "x"), t.TempDir()); !errors.Is(err, ErrNoTool) {
		t.Fatalf("pg_dump missing from PG_BIN: %v, want ErrNoTool", err)
	}

	newDB := fmt.Sprintf("restored_%d", time.Now().UnixNano())
	t.Cleanup(func() { s.pool.Exec(context.Background(), `DROP DATABASE IF EXISTS `+newDB+` WITH (FORCE)`) })
	for _, c := range RestoreCommands(url, out) {
		c = strings.ReplaceAll(c, "NEWDB", newDB)
		cmd := exec.CommandContext(ctx, "sh", "-c", c)
		if bin != "" {
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, b)
		}
	}
	restoredURL := strings.Replace(url, filepath.Base(url), newDB, 1)
	r, err := Open(ctx, restoredURL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := r.Device(ctx, dev)
	if err != nil || d.HWM != 40 || d.Name != "bus-1" {
		t.Fatalf("restored device %+v %v", d, err)
	}
	log, _, _, err := r.ChangesSince(ctx, "cd88", "", 0, 1<<30)
	if err != nil || len(log) != 40 {
		t.Fatalf("restored log: %d changes %v", len(log), err)
	}
	// It takes batches where the original left off.
	if hwm, _, err := r.ApplyBatch(ctx, dev, tourStops(t, 40, 5), 10); err != nil || hwm != 45 {
		t.Fatalf("apply on the restored hub: %d %v", hwm, err)
	}
}
