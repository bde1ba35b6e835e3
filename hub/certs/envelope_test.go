package certs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The envelope key is drawn on first start, kept private, and the same
// key is loaded on the next start.
func TestEnvelopeKeyKeptAcrossStarts(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateEnvelopeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, EnvelopeFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 32 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %d bytes, mode %v", EnvelopeFile, fi.Size(), fi.Mode().Perm())
	}
	again, err := LoadOrCreateEnvelopeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Public(), again.Public()) {
		t.Fatal("another key on the second start")
	}
	if err := os.WriteFile(filepath.Join(dir, EnvelopeFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateEnvelopeKey(dir); err == nil {
		t.Fatal("a damaged key file accepted")
	}
}
