package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// Outgoing is a change of the outbox as a push sends it: its fields as
// the log holds them, encoded by change.Fields.Encode — the form the wire
// carries —, in clear; nil when it sets none (a delete, an erase).
type Outgoing struct {
	Seq    uint64
	HLC    hlc.Timestamp
	Kind   domain.Kind
	ID     ident.ID
	Op     change.Op
	Fields []byte
}

// emptyFields is the encoding of a field map without fields.
var emptyFields = change.Fields{}.Encode()

// Outbox reads the outbox after seq after in order, decrypting each
// change, and hands it to take until take returns false (that change is
// left for the next read), max changes have been read, or the outbox
// ends. A push cuts each batch from one such read: it holds one batch of
// the outbox at a time, never the whole of it, and the fields are not
// decoded and encoded again (the store wrote them as the wire carries
// them). take runs with the store's lock held: it must not call the
// store. The store must be unlocked.
func (s *Store) Outbox(ctx context.Context, after uint64, max int, take func(*Outgoing) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return ErrLocked
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, hlc, kind, record_id, op, body FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, max)
	if err != nil {
		return fmt.Errorf("reading outbox: %w", err)
	}
	defer rows.Close()
	var (
		c         Outgoing
		idb, body sql.RawBytes // the driver's, until the next row: not kept
		op        int
		ts        int64
	)
	for rows.Next() {
		if err := rows.Scan(&c.Seq, &ts, &c.Kind, &idb, &op, &body); err != nil {
			return fmt.Errorf("reading outbox: %w", err)
		}
		c.HLC, c.Op = hlc.Timestamp(ts), change.Op(op)
		copy(c.ID[:], idb)
		c.Fields, err = s.key.Open(nil, body, changeAD(c.Kind, c.ID, c.Seq))
		if err != nil {
			return fmt.Errorf("decrypting change %d: %w", c.Seq, err)
		}
		if bytes.Equal(c.Fields, emptyFields) {
			c.Fields = nil
		}
		if !take(&c) {
			break
		}
	}
	return rows.Err()
}

// Pending returns up to max changes of the outbox after seq after, in
// order, with their fields decoded (Outbox). The store must be unlocked.
func (s *Store) Pending(ctx context.Context, after uint64, max int) ([]change.Change, error) {
	var (
		out []change.Change
		bad error
	)
	err := s.Outbox(ctx, after, max, func(o *Outgoing) bool {
		c := change.Change{Kind: o.Kind, ID: o.ID, Op: o.Op, HLC: o.HLC, Seq: o.Seq, Device: s.device}
		if o.Fields != nil {
			if bad = change.Unmarshal(o.Fields, &c.Fields); bad != nil {
				bad = fmt.Errorf("decoding change %d: %w", o.Seq, bad)
				return false
			}
		}
		out = append(out, c)
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
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
