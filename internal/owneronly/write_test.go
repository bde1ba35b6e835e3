package owneronly

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "dossier.html")
	if err := WriteFile(p, func(w io.Writer) error { _, err := io.WriteString(w, "ok"); return err }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || (enforced && fi.Mode().Perm() != 0o600) {
		t.Fatalf("written file: %v %v, want mode 0600", fi, err)
	}
	// A write that fails leaves no half-written file behind.
	bad := filepath.Join(dir, "half.html")
	boom := errors.New("boom")
	if err := WriteFile(bad, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing write: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("the half-written file stayed: %v", err)
	}
}

func TestWithin(t *testing.T) {
	dir := t.TempDir()
	for file, want := range map[string]bool{
		dir:                                 true,
		filepath.Join(dir, "a.html"):        true,
		filepath.Join(dir, "sub", "a.html"): true,
		filepath.Join(dir, "..", "a.html"):  false,
		dir + "-autre/a.html":               false,
	} {
		if got, err := Within(file, dir); err != nil || got != want {
			t.Errorf("Within(%s): %v %v, want %v", file, got, err, want)
		}
	}
}
