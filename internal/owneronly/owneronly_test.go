package owneronly

import (
	"os"
	"path/filepath"
	"testing"
)

// Files made readable by others before the rule lose those bits, and
// nothing else; a missing file is no error.
func TestTightensLooseFilesOnly(t *testing.T) {
	if !enforced {
		t.Skip("modes are not enforced on this system")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // whatever the umask
	modes := map[string]os.FileMode{"a.db": 0o644, "a.db-wal": 0o666, "ro": 0o444, "ok": 0o600}
	want := map[string]os.FileMode{"a.db": 0o600, "a.db-wal": 0o600, "ro": 0o400, "ok": 0o600}
	var paths []string
	for name, m := range modes {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, m); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, m)
		paths = append(paths, p)
	}
	if err := Files(append(paths, filepath.Join(dir, "a.db-shm"))...); err != nil {
		t.Fatal(err)
	}
	if err := Dir(dir); err != nil {
		t.Fatal(err)
	}
	for name, m := range want {
		if fi, _ := os.Stat(filepath.Join(dir, name)); fi.Mode().Perm() != m {
			t.Errorf("%s: mode %o, want %o", name, fi.Mode().Perm(), m)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: mode %o, want 700", fi.Mode().Perm())
	}
	if err := Dir(filepath.Join(dir, "missing")); err == nil {
		t.Error("Dir of a missing directory: no error")
	}
}
