package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// The TLS session is kept for its name only, sealed, readable and
// writable only while unlocked, and outlives the process (`agent sync`
// is one process per sync).
func TestTLSSession(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _, err := Create(ctx, dir, []byte(testPass), Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	session := bytes.Repeat([]byte("ticket-secret-"), 20)
	const name = "hub.example.fr\x00fingerprint"
	if got, err := s.TLSSession(ctx, name); err != nil || got != nil {
		t.Fatalf("a new store holds a session: %q %v", got, err)
	}
	if err := s.SetTLSSession(ctx, name, session); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TLSSession(ctx, name); err != nil || !bytes.Equal(got, session) {
		t.Fatalf("got %q %v, want the session recorded", got, err)
	}
	if got, _ := s.TLSSession(ctx, "another hub"); got != nil {
		t.Fatal("the session given for another name")
	}
	s.Lock()
	if got, err := s.TLSSession(ctx, name); err != nil || got != nil {
		t.Fatalf("locked: %q %v, want nothing", got, err)
	}
	if err := s.SetTLSSession(ctx, name, session); !errors.Is(err, ErrLocked) {
		t.Fatalf("recorded while locked: %v", err)
	}
	s.Close()
	// Nowhere in clear on the disk.
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		b, err := os.ReadFile(dir + "/" + f.Name())
		if err == nil && bytes.Contains(b, []byte("ticket-secret-")) {
			t.Errorf("%s holds the session in clear", f.Name())
		}
	}
	// Another process: the session is there after its unlock.
	s, err = Open(ctx, dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TLSSession(ctx, name); err != nil || !bytes.Equal(got, session) {
		t.Fatalf("after reopening: %q %v", got, err)
	}
	if err := s.SetTLSSession(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TLSSession(ctx, name); got != nil {
		t.Fatal("a forgotten session is still given")
	}
}
