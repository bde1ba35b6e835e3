package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// A `hub` command beside `hub serve` is a guest while its store is open,
// and no longer once it is closed: the host stops leaving it gaps at
// once, not guestPresent later.
func TestGuestGoneWhenItsStoreCloses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	host, err := Open(ctx, path, Options{Host: true})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	guest, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !host.guestThere() || !guest.hostThere() {
		t.Fatalf("host sees a guest: %v, guest sees the host: %v; want both", host.guestThere(), guest.hostThere())
	}
	if err := guest.Close(); err != nil {
		t.Fatal(err)
	}
	if host.guestThere() {
		t.Fatal("the host still sees a guest whose store is closed")
	}

	// And the other way: a guest no longer leaves the facts to a host
	// that has closed.
	guest, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	if err := host.Close(); err != nil {
		t.Fatal(err)
	}
	if guest.hostThere() {
		t.Fatal("a guest still sees a host whose store is closed")
	}
}
