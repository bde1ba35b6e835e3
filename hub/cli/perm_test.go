package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// A hub data directory an earlier version left at 0755, with its
// public-url file at 0644, is taken back to its owner by the next command
// that opens the store.
func TestDataDirTightened(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are ACLs on Windows")
	}
	dir := filepath.Join(t.TempDir(), "hub")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	url := filepath.Join(dir, urlFile)
	if err := os.WriteFile(url, []byte("wss://127.0.0.1:8443/sync\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, m := range map[string]os.FileMode{dir: 0o755, url: 0o644} {
		if err := os.Chmod(p, m); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	if code, out := hub("devices", "--data", dir); code != ExitOK {
		t.Fatalf("hub devices: %d %s", code, out)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, url: 0o600, filepath.Join(dir, DBFile): 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != want {
			t.Errorf("%s: mode %o, want %o", filepath.Base(p), m, want)
		}
	}
}
