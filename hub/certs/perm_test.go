package certs

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The hub's own key files — TLS key, certificate, envelope key — are made
// 0600, and ones an earlier hub left at 0644 are taken back to 0600 when
// loaded, with the same keys.
func TestKeyFilesArePrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are ACLs on Windows")
	}
	dir := t.TempDir()
	load := func() []byte {
		t.Helper()
		_, fp, err := LoadOrCreate(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateEnvelopeKey(dir); err != nil {
			t.Fatal(err)
		}
		return fp
	}
	files := []string{KeyFile, CertFile, EnvelopeFile}
	check := func(when string) {
		t.Helper()
		for _, f := range files {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s %s: mode %o, want 600", f, when, m)
			}
		}
	}
	fp := load()
	check("when made")
	for _, f := range files {
		if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if string(load()) != string(fp) {
		t.Fatal("another certificate after tightening")
	}
	check("after loading 0644 files")
}
