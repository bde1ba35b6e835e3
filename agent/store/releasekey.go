package store

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"

	"numeribus/internal/apperr"
)

// The release key (issue #14): the public key of the operator's offline
// key that signs agent releases, pinned once — right after enrollment,
// or at the first sync of an agent enrolled before updates existed — and
// never replaced: an update is installed only when this key signed it
// (agent/update). It is public, kept in clear in meta, readable while
// locked; whoever can write this file can replace the agent's binary
// anyway.
const metaReleaseKey = "release_key"

// ErrReleaseKeyPinned is returned when another release key than the
// pinned one is offered.
var ErrReleaseKeyPinned = apperr.New(apperr.State, "another release key is already pinned")

// ReleaseKey returns the pinned release key, or nil when none is.
func (s *Store) ReleaseKey(ctx context.Context) (ed25519.PublicKey, error) {
	var k []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaReleaseKey).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the release key: %w", err)
	}
	if len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("the pinned release key is corrupted (%d bytes)", len(k))
	}
	return ed25519.PublicKey(k), nil
}

// PinReleaseKey pins k, unless a key is pinned already: the same one is
// a no-op, another one ErrReleaseKeyPinned. It works while locked.
func (s *Store) PinReleaseKey(ctx context.Context, k ed25519.PublicKey) error {
	if len(k) != ed25519.PublicKeySize {
		return fmt.Errorf("pinning the release key: %d bytes, want %d", len(k), ed25519.PublicKeySize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	// INSERT OR IGNORE, then read back: two processes pinning at once
	// agree on the first.
	if _, err := w.ExecContext(ctx, `INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)`, metaReleaseKey, []byte(k)); err != nil {
		return fmt.Errorf("pinning the release key: %w", err)
	}
	var got []byte
	if err := w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaReleaseKey).Scan(&got); err != nil {
		return fmt.Errorf("pinning the release key: %w", err)
	}
	if !k.Equal(ed25519.PublicKey(got)) {
		return ErrReleaseKeyPinned
	}
	return nil
}
