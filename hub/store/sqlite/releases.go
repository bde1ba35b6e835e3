package sqlite

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"numeribus/hub/releases"
)

// Agent releases (schema/hub/0008_releases.sql), behind releases.Store.

var _ releases.Store = (*Store)(nil)

// AddRelease stores a release and its binary in one immediate
// transaction: a failure, or bytes that are not the manifest's, leave
// nothing behind.
func (s *Store) AddRelease(ctx context.Context, r releases.Release, key ed25519.PublicKey, body io.Reader) (releases.Release, error) {
	defer s.hostWrite()()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return r, fmt.Errorf("adding a release: %w", err)
	}
	defer tx.Rollback()
	var hubKey []byte
	err = tx.QueryRowContext(ctx, `SELECT public_key FROM release_key WHERE id = 1`).Scan(&hubKey)
	had := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("adding a release: reading the release key: %w", err)
	}
	if err := releases.SameKey(hubKey, had, key); err != nil {
		return r, err
	}
	now := time.Now()
	if !had {
		if _, err := tx.ExecContext(ctx, `INSERT INTO release_key(id, public_key, added_at) VALUES (1, ?, ?)`, []byte(key), now.UnixMilli()); err != nil {
			return r, fmt.Errorf("adding a release: recording the release key: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM releases WHERE os = ? AND arch = ? AND version = ?`, r.OS, r.Arch, r.Version).Scan(&n); err != nil {
		return r, fmt.Errorf("adding a release: %w", err)
	}
	if n > 0 {
		return r, fmt.Errorf("%w: %s %s", releases.ErrExists, r.Version, r.Platform())
	}
	r.AddedAt = time.UnixMilli(now.UnixMilli()).UTC()
	res, err := tx.ExecContext(ctx, `INSERT INTO releases(version, os, arch, size, sha256, signature, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.Version, r.OS, r.Arch, r.Size, r.SHA256[:], r.Signature, r.AddedAt.UnixMilli())
	if err != nil {
		return r, fmt.Errorf("adding a release: %w", err)
	}
	if r.ID, err = res.LastInsertId(); err != nil {
		return r, fmt.Errorf("adding a release: %w", err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO release_chunks(release_id, n, data) VALUES (?, ?, ?)`)
	if err != nil {
		return r, fmt.Errorf("adding a release: %w", err)
	}
	defer ins.Close()
	if err := releases.Chunks(r.Manifest, body, func(n int64, data []byte) error {
		_, err := ins.ExecContext(ctx, r.ID, n, data)
		return err
	}); err != nil {
		return r, err
	}
	if err := tx.Commit(); err != nil {
		return r, fmt.Errorf("adding a release: %w", err)
	}
	s.checkpointed()
	return r, nil
}

// Releases returns every release, oldest first.
func (s *Store) Releases(ctx context.Context) ([]releases.Release, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, version, os, arch, size, sha256, signature, added_at FROM releases ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading releases: %w", err)
	}
	defer rows.Close()
	var out []releases.Release
	for rows.Next() {
		var (
			r   releases.Release
			sum []byte
			at  int64
		)
		if err := rows.Scan(&r.ID, &r.Version, &r.OS, &r.Arch, &r.Size, &sum, &r.Signature, &at); err != nil {
			return nil, fmt.Errorf("reading releases: %w", err)
		}
		if len(sum) != len(r.SHA256) {
			return nil, fmt.Errorf("reading releases: release %d has a SHA-256 of %d bytes", r.ID, len(sum))
		}
		copy(r.SHA256[:], sum)
		r.AddedAt = time.UnixMilli(at).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading releases: %w", err)
	}
	return out, nil
}

// ReleaseKey returns the hub's release key.
func (s *Store) ReleaseKey(ctx context.Context) (ed25519.PublicKey, bool, error) {
	var k []byte
	err := s.r.QueryRowContext(ctx, `SELECT public_key FROM release_key WHERE id = 1`).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the release key: %w", err)
	}
	return ed25519.PublicKey(k), true, nil
}

// ReleaseChunk returns one chunk of a release's binary.
func (s *Store) ReleaseChunk(ctx context.Context, id, n int64) ([]byte, error) {
	var b []byte
	err := s.r.QueryRowContext(ctx, `SELECT data FROM release_chunks WHERE release_id = ? AND n = ?`, id, n).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: release %d, chunk %d", releases.ErrNotFound, id, n)
	}
	if err != nil {
		return nil, fmt.Errorf("reading release %d, chunk %d: %w", id, n, err)
	}
	return b, nil
}
