package store

import (
	"context"
	"fmt"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// Pending returns up to max changes of the outbox after seq after, in
// order: what the sync sends next. Changes are decrypted, so the store
// must be unlocked.
func (s *Store) Pending(ctx context.Context, after uint64, max int) ([]change.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return nil, ErrLocked
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, hlc, kind, record_id, op, body FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, max)
	if err != nil {
		return nil, fmt.Errorf("reading outbox: %w", err)
	}
	defer rows.Close()
	var out []change.Change
	for rows.Next() {
		var c change.Change
		var idb, body []byte
		var op int
		var ts int64
		if err := rows.Scan(&c.Seq, &ts, &c.Kind, &idb, &op, &body); err != nil {
			return nil, fmt.Errorf("reading outbox: %w", err)
		}
		c.HLC = hlc.Timestamp(ts)
		c.Op = change.Op(op)
		c.Device = s.device
		copy(c.ID[:], idb)
		raw, err := s.key.Open(nil, body, changeAD(c.Kind, c.ID, c.Seq))
		if err != nil {
			return nil, fmt.Errorf("decrypting change %d: %w", c.Seq, err)
		}
		if err := change.Unmarshal(raw, &c.Fields); err != nil {
			return nil, fmt.Errorf("decoding change %d: %w", c.Seq, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Ack records that the hub holds every change up to seq: they leave the
// outbox. Acks never move backwards.
func (s *Store) Ack(ctx context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	m, err := s.readMeta(ctx)
	if err != nil {
		return err
	}
	if seq > m.LastSeq {
		return fmt.Errorf("ack %d is beyond the last change %d", seq, m.LastSeq)
	}
	_, err = w.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ? AND CAST(value AS INTEGER) < ?`, seq, metaAckedSeq, seq)
	if err != nil {
		return fmt.Errorf("recording ack %d: %w", seq, err)
	}
	return nil
}

// LogEntry is a change log row as it is in clear: what can be checked
// without the passphrase.
type LogEntry struct {
	Seq  uint64
	HLC  hlc.Timestamp
	Kind domain.Kind
	ID   ident.ID
	Op   change.Op
}

// Log calls fn for every change in the log, in seq order, without
// decrypting anything.
func (s *Store) Log(ctx context.Context, fn func(LogEntry) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, hlc, kind, record_id, op FROM changes ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("reading log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e LogEntry
		var idb []byte
		var ts int64
		var op int
		if err := rows.Scan(&e.Seq, &ts, &e.Kind, &idb, &op); err != nil {
			return fmt.Errorf("reading log: %w", err)
		}
		e.HLC, e.Op = hlc.Timestamp(ts), change.Op(op)
		copy(e.ID[:], idb)
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
