package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

// The release key is pinned once, while locked too, survives a reopen,
// and is never replaced by another.
func TestReleaseKeyPinnedOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	if k, err := s.ReleaseKey(ctx); k != nil || err != nil {
		t.Fatalf("key of a new store: %x, %v", k, err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	dir := s.dir
	s.Close()
	locked, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Close()
	if err := locked.PinReleaseKey(ctx, pub); err != nil {
		t.Fatalf("pinning while locked: %v", err)
	}
	if err := locked.PinReleaseKey(ctx, pub); err != nil {
		t.Fatalf("pinning the same key again: %v", err)
	}
	if err := locked.PinReleaseKey(ctx, other); !errors.Is(err, ErrReleaseKeyPinned) {
		t.Fatalf("another key: %v, want ErrReleaseKeyPinned", err)
	}
	if err := locked.PinReleaseKey(ctx, pub[:5]); err == nil {
		t.Fatal("a short key pinned")
	}
	again, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if k, err := again.ReleaseKey(ctx); err != nil || !k.Equal(pub) {
		t.Fatalf("key after reopening: %x, %v; want the first one pinned", k, err)
	}
}
