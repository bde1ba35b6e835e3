package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// A store can go back in time: the data directory restored from a copy,
// or a damaged WAL whose tail SQLite drops. The hub can too. The sync then
// finds that the two sides disagree on this device's change numbers; the
// methods here are the store's half of the recovery (docs/PROTOCOL.md, "A
// store that went back in time").

// Meta keys of the recovery.
const (
	// metaPullTag is the hub's tag of the entry at the pull cursor.
	metaPullTag = "pull_tag"
	// metaPullOwn, when "1", asks pulls to include this device's own
	// changes: after a restore the hub holds some the store lost.
	metaPullOwn = "pull_own"
)

// ChangeTag returns wire.ChangeTag of this device's change seq, or nil
// when the log holds none. It needs no passphrase.
func (s *Store) ChangeTag(ctx context.Context, seq uint64) ([]byte, error) {
	var (
		h  int64
		id []byte
		op int
	)
	err := s.r.QueryRowContext(ctx, `SELECT hlc, record_id, op FROM changes WHERE seq = ?`, int64(seq)).Scan(&h, &id, &op)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading change %d: %w", seq, err)
	}
	var rid ident.ID
	copy(rid[:], id)
	return wire.ChangeTag(seq, uint64(h), rid, uint8(op)), nil
}

// Rewind lowers the acknowledged mark to seq: the hub lost the changes
// after it (restored from a backup) and they go out again. It needs no
// passphrase.
func (s *Store) Rewind(ctx context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	_, err = w.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ? AND CAST(value AS INTEGER) > ?`, int64(seq), metaAckedSeq, int64(seq))
	if err != nil {
		return fmt.Errorf("rewinding the acknowledged mark to %d: %w", seq, err)
	}
	return nil
}

// Renumber moves this device's changes after seq after to follow base
// (the first becomes base+1, and so on, without gaps, even where the log
// has none of the numbers just after after: an earlier renumbering left
// them out), marks everything up to base acknowledged, and asks the next pulls for this device's own
// changes. The sync calls it when the hub holds changes numbered base and
// below that this store does not have (it went back in time and reused
// those numbers for new work): renumbered, the new work reaches the hub
// instead of being taken for a retry, and the hub's copies of the lost
// changes come back by the pull. Changes between after and the store's
// old end that the hub already holds are sent again under new numbers,
// which the merge makes harmless. Bodies are sealed to their seq, so the
// store must be unlocked. It returns how many changes moved.
func (s *Store) Renumber(ctx context.Context, after, base uint64) (int, error) {
	if base < after {
		return 0, fmt.Errorf("renumbering after %d from %d would move changes back", after, base)
	}
	n := 0
	_, err := s.write(ctx, func(w *writeTx) error {
		moved, err := w.renumber(after, base)
		if err != nil {
			return err
		}
		n = moved
		w.seq = base + uint64(moved)
		if err := setMeta(w.ctx, w.tx, map[string]any{metaAckedSeq: int64(base), metaPullOwn: "1"}); err != nil {
			return err
		}
		w.clockMoved = true // persist the new last seq even with nothing moved
		return w.sealPendingForHub()
	})
	return n, err
}

// renumber re-seals and moves each change after seq after to base+1,
// base+2… in order. A change may move down as well as up (the log has a
// hole where an earlier renumbering moved changes away), so each first
// takes its new number negated, where no change is, then all flip back:
// no new number meets an old one whatever the order.
func (w *writeTx) renumber(after, base uint64) (int, error) {
	type row struct {
		seq  uint64
		k    domain.Kind
		id   ident.ID
		body []byte
	}
	// The hub's refusals of the changes that move were of their old
	// numbers: sent again, they are judged again.
	if _, err := w.tx.ExecContext(w.ctx, `DELETE FROM rejected WHERE seq > ?`, int64(after)); err != nil {
		return 0, fmt.Errorf("clearing refusals before renumbering: %w", err)
	}
	rows, err := w.tx.QueryContext(w.ctx, `SELECT seq, kind, record_id, body FROM changes WHERE seq > ? ORDER BY seq`, int64(after))
	if err != nil {
		return 0, fmt.Errorf("reading the changes to renumber: %w", err)
	}
	var rs []row
	for rows.Next() {
		var r row
		var idb []byte
		if err := rows.Scan(&r.seq, &r.k, &idb, &r.body); err != nil {
			rows.Close()
			return 0, fmt.Errorf("reading the changes to renumber: %w", err)
		}
		copy(r.id[:], idb)
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for i, r := range rs {
		to := base + uint64(i) + 1
		raw, err := w.s.key.Open(nil, r.body, changeAD(r.k, r.id, r.seq))
		if err != nil {
			return 0, fmt.Errorf("opening change %d: %w", r.seq, err)
		}
		body, err := w.s.key.Seal(nil, raw, changeAD(r.k, r.id, to))
		clear(raw)
		if err != nil {
			return 0, err
		}
		if _, err := w.tx.ExecContext(w.ctx, `UPDATE changes SET seq = ?, body = ?, hub_body = NULL, hub_key = NULL WHERE seq = ?`,
			-int64(to), body, int64(r.seq)); err != nil {
			return 0, fmt.Errorf("renumbering change %d to %d: %w", r.seq, to, err)
		}
	}
	if _, err := w.tx.ExecContext(w.ctx, `UPDATE changes SET seq = -seq WHERE seq < 0`); err != nil {
		return 0, fmt.Errorf("renumbering changes: %w", err)
	}
	return len(rs), nil
}
