package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"numeribus/internal/seal"
)

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertSlot(ctx context.Context, db execer, sl seal.Slot) error {
	_, err := db.ExecContext(ctx, `INSERT INTO keyslots(kind, salt, kdf_time, kdf_memory, kdf_threads, wrapped, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, sl.Kind, sl.Salt, sl.Params.Time, sl.Params.MemoryKiB, sl.Params.Threads,
		sl.Wrapped, time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("writing key slot: %w", err)
	}
	return nil
}

// slots reads the key slots, passphrase slots first.
func (s *Store) slots(ctx context.Context) ([]seal.Slot, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kind, salt, kdf_time, kdf_memory, kdf_threads, wrapped
		FROM keyslots ORDER BY kind = 'recovery', id`)
	if err != nil {
		return nil, fmt.Errorf("reading key slots: %w", err)
	}
	defer rows.Close()
	var out []seal.Slot
	for rows.Next() {
		var sl seal.Slot
		if err := rows.Scan(&sl.Kind, &sl.Salt, &sl.Params.Time, &sl.Params.MemoryKiB, &sl.Params.Threads, &sl.Wrapped); err != nil {
			return nil, fmt.Errorf("reading key slots: %w", err)
		}
		out = append(out, sl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading key slots: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("the store has no key slot: it cannot be unlocked")
	}
	return out, nil
}

// SetPassphrase replaces every passphrase slot with one for passphrase.
// The store must be unlocked (with the old passphrase or the recovery
// code): this is how a forgotten passphrase is reset.
func (s *Store) SetPassphrase(ctx context.Context, passphrase []byte) error {
	if len(passphrase) == 0 {
		return errors.New("empty passphrase")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return ErrLocked
	}
	sl, err := seal.Wrap(s.key, passphrase, seal.SlotPassphrase, s.opts.KDF)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("changing passphrase: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM keyslots WHERE kind = 'passphrase'`); err != nil {
		return fmt.Errorf("changing passphrase: %w", err)
	}
	if err := insertSlot(ctx, tx, sl); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("changing passphrase: %w", err)
	}
	s.log.Info("passphrase changed")
	return nil
}
