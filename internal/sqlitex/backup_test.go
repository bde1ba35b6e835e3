package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

func mustWriter(t *testing.T, p string) *sql.DB {
	t.Helper()
	w, err := OpenWriter(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Exec(`CREATE TABLE IF NOT EXISTS t(n INTEGER PRIMARY KEY, pad BLOB)`); err != nil {
		t.Fatal(err)
	}
	return w
}

// A copy taken while another connection commits, row after row, is the
// database as of one of those commits: its rows are 1..n without a gap,
// and it is one file, readable by the owner only, that passes
// quick_check.
func TestVacuumIntoWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "a.db")
	w := mustWriter(t, src)
	for i := 1; i <= 200; i++ {
		if _, err := w.Exec(`INSERT INTO t(n, pad) VALUES (?, randomblob(512))`, i); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 201; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.Exec(`INSERT INTO t(n, pad) VALUES (?, randomblob(512))`, i); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	dst := filepath.Join(dir, "copy.db")
	err := VacuumInto(ctx, src, dst)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("copy's mode %v, want 0600", fi.Mode().Perm())
	}
	c, err := OpenCopy(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := QuickCheck(ctx, c); err != nil {
		t.Fatalf("quick_check of the copy: %v", err)
	}
	var n, maxN int
	if err := c.QueryRow(`SELECT count(*), max(n) FROM t`).Scan(&n, &maxN); err != nil {
		t.Fatal(err)
	}
	if n < 200 || n != maxN {
		t.Fatalf("copy holds %d rows up to %d: not one commit's state", n, maxN)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(dst + suffix); err == nil {
			t.Errorf("the copy has a %s file beside it", suffix)
		}
	}
	if err := VacuumInto(ctx, src, dst); err == nil {
		t.Error("a copy over an existing file succeeded")
	}
}

// Exclusive refuses a database another connection has open, even idle,
// and while it holds one nobody else reads it; a file that is no
// database is reported damaged.
func TestExclusive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "a.db")
	w := mustWriter(t, p)
	r, err := OpenReader(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := r.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := Exclusive(ctx, p); !errors.Is(err, ErrInUse) {
		t.Fatalf("Exclusive with the file open elsewhere: %v, want ErrInUse", err)
	}
	r.Close()
	w.Close()
	held, err := Exclusive(ctx, p)
	if err != nil {
		t.Fatalf("Exclusive with nobody there: %v", err)
	}
	other, err := OpenReader(p, 1, "busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.QueryRow(`SELECT count(*) FROM t`).Scan(&n); !isBusy(err) {
		t.Errorf("a reader while held: %v, want busy", err)
	}
	if err := held.Conn.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Errorf("reading through the held connection: %v", err)
	}
	held.Release()
	if err := other.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Errorf("a reader after the release: %v", err)
	}

	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, append([]byte("not a database at all"), make([]byte, 8192)...), 0o600); err != nil {
		t.Fatal(err)
	}
	held, err = Exclusive(ctx, junk)
	var de *DamagedError
	if !errors.As(err, &de) || held != nil {
		t.Fatalf("Exclusive of a file that is no database: %v, want DamagedError", err)
	}
	held.Release()
}

// QuickCheck finds a damaged page: a copy whose table pages are
// overwritten with noise.
func TestQuickCheckFindsDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "a.db")
	w := mustWriter(t, p)
	for i := 1; i <= 300; i++ {
		if _, err := w.Exec(`INSERT INTO t(n, pad) VALUES (?, randomblob(300))`, i); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(dir, "copy.db")
	if err := VacuumInto(ctx, p, dst); err != nil {
		t.Fatal(err)
	}
	check := func() error {
		c, err := OpenCopy(dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return QuickCheck(ctx, c)
	}
	if err := check(); err != nil {
		t.Fatalf("sound copy: %v", err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	// Page 3 onward hold the table's b-tree: scribble over a page's
	// header and cell pointers.
	const page = 4096
	for i := 3 * page; i < 3*page+64; i++ {
		b[i] = 0xA5
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var de *DamagedError
	if err := check(); !errors.As(err, &de) {
		t.Fatalf("damaged copy: %v, want DamagedError", err)
	}
}
