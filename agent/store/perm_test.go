package store

import (
	"context"
	"os"
	"path/filepath"
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
