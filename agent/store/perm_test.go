package store

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"numeribus/internal/fixture"
)

// Every file of the agent's data directory is readable by its owner only:
// the database, its WAL and shared-memory files.
func TestDataFilesAreOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, _, err := Create(context.Background(), dir, []byte("phrase"), Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Save(context.Background(), fixture.Generate(fixture.Options{N: 5, Seed: 1}).Records()...); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().IsRegular() {
			n++
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s has mode %o, want 600", e.Name(), m)
			}
		}
	}
	if n < 2 {
		t.Fatalf("only %d files in the data directory", n)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory has mode %o, want 700", fi.Mode().Perm())
	}
}

// A store an earlier agent left readable by others (0644 files, a 0755
// directory) is taken back to its owner when opened — even by a command
// that never unlocks it.
func TestOpenTightensAnOlderStore(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are ACLs on Windows")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s, _, err := Create(ctx, dir, []byte("phrase"), Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, fixture.Generate(fixture.Options{N: 5, Seed: 1}).Records()...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The -wal and -shm of a store an earlier version left open.
	p := filepath.Join(dir, FileName)
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
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, dir, Options{})
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
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory after Open: mode %o, want 700", fi.Mode().Perm())
	}
}
