package postgres

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/releases"
)

// Agent releases (schema/hubpg/0003_releases.sql), behind releases.Store.

var _ releases.Store = (*Store)(nil)

// AddRelease stores a release and its binary in one transaction. Two
// instances adding releases at once agree on one release key: the first
// commit's (ON CONFLICT waits for it), and the second is checked against
// it; the same release twice fails on the unique index.
func (s *Store) AddRelease(ctx context.Context, r releases.Release, key ed25519.PublicKey, body io.Reader) (releases.Release, error) {
	now := time.Now()
	r.AddedAt = time.UnixMilli(now.UnixMilli()).UTC()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO release_key(id, public_key, added_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
			[]byte(key), now.UnixMilli()); err != nil {
			return fmt.Errorf("recording the release key: %w", err)
		}
		var hubKey []byte
		if err := tx.QueryRow(ctx, `SELECT public_key FROM release_key WHERE id = 1`).Scan(&hubKey); err != nil {
			return fmt.Errorf("reading the release key: %w", err)
		}
		if err := releases.SameKey(hubKey, true, key); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO releases(version, os, arch, size, sha256, signature, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			r.Version, r.OS, r.Arch, r.Size, r.SHA256[:], r.Signature, r.AddedAt.UnixMilli()).Scan(&r.ID)
		if isUniqueViolation(err) {
			return fmt.Errorf("%w: %s %s", releases.ErrExists, r.Version, r.Platform())
		}
		if err != nil {
			return err
		}
		return releases.Chunks(r.Manifest, body, func(n int64, data []byte) error {
			_, err := tx.Exec(ctx, `INSERT INTO release_chunks(release_id, n, data) VALUES ($1, $2, $3)`, r.ID, n, data)
			return err
		})
	})
	if err != nil {
		if errors.Is(err, releases.ErrExists) || errors.Is(err, releases.ErrOtherKey) || errors.Is(err, releases.ErrMismatch) {
			return r, err
		}
		return r, fmt.Errorf("adding a release: %w", err)
	}
	return r, nil
}

// Releases returns every release, oldest first.
func (s *Store) Releases(ctx context.Context) ([]releases.Release, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, version, os, arch, size, sha256, signature, added_at FROM releases ORDER BY id`)
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
	err := s.pool.QueryRow(ctx, `SELECT public_key FROM release_key WHERE id = 1`).Scan(&k)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := s.pool.QueryRow(ctx, `SELECT data FROM release_chunks WHERE release_id = $1 AND n = $2`, id, n).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: release %d, chunk %d", releases.ErrNotFound, id, n)
	}
	if err != nil {
		return nil, fmt.Errorf("reading release %d, chunk %d: %w", id, n, err)
	}
	return b, nil
}
