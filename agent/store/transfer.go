package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"numeribus/internal/wire"
)

// metaLastReceipt is the bundle ID of the last hub receipt imported
// (agent/transfer): the same receipt imported again records nothing
// again, so refusals already dealt with (ResendConsented forgets them)
// do not come back.
const metaLastReceipt = "last_receipt"

// TakeReceipt records a hub receipt brought back on a USB stick: the
// refusals it lists, then the ack up to hwm (never moving backwards), in
// one transaction, like a live Ack. A receipt of the bundle whose receipt
// was the last one taken records its ack only. The caller has checked
// the receipt's signature and that this store's change hwm has the tag
// the hub holds. It needs no passphrase. It reports whether the
// refusals were recorded (false: the receipt was taken already).
func (s *Store) TakeReceipt(ctx context.Context, bundle []byte, hwm uint64, rs []wire.Rejection, at time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return false, err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("recording a receipt: %w", err)
	}
	defer tx.Rollback()
	var last []byte
	err = tx.QueryRowContext(ctx, `SELECT CAST(value AS BLOB) FROM meta WHERE key = ?`, metaLastReceipt).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("reading the last receipt: %w", err)
	}
	fresh := !bytes.Equal(last, bundle)
	if fresh {
		when := at.UTC().Format(time.RFC3339)
		for _, r := range rs {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO rejected(seq, code, reason, ahead_ms, at) VALUES (?, ?, ?, ?, ?)`,
				int64(r.Seq), r.Code, r.Reason, int64(min(r.Ahead, 1<<62)), when); err != nil {
				return false, fmt.Errorf("recording refused change %d: %w", r.Seq, err)
			}
		}
		if err := setMeta(ctx, tx, map[string]any{metaLastReceipt: append([]byte{}, bundle...)}); err != nil {
			return false, err
		}
	}
	var lastSeq uint64
	if err := tx.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?`, metaLastSeq).Scan(&lastSeq); err != nil {
		return false, fmt.Errorf("reading the last seq: %w", err)
	}
	if hwm > lastSeq {
		return false, fmt.Errorf("ack %d is beyond the last change %d", hwm, lastSeq)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ? AND CAST(value AS INTEGER) < ?`, int64(hwm), metaAckedSeq, int64(hwm)); err != nil {
		return false, fmt.Errorf("recording ack %d: %w", hwm, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("recording a receipt: %w", err)
	}
	return fresh, nil
}
