package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/seal"
)

// sealForHub seals a change's fields to the hub (when enrolled) and
// returns the body and its envelope id, or nils before enrollment.
func (w *writeTx) sealForHub(k domain.Kind, id ident.ID, seq uint64, fields []byte) ([]byte, any, error) {
	env, err := w.envelope()
	if err != nil || env == nil {
		return nil, nil, err
	}
	b, err := sealHub(env, k, id, seq, fields)
	if err != nil {
		return nil, nil, err
	}
	return b, env.id, nil
}

// sealHub seals a change's fields with the session's envelope key.
func sealHub(env *envelope, k domain.Kind, id ident.ID, seq uint64, fields []byte) ([]byte, error) {
	return env.env.Key.Seal(nil, fields, seal.OutboxAD(string(k), id, seq))
}

// envelope returns the envelope of this unlocked session, made on first
// use and recorded in envkeys, or nil when the agent is not enrolled.
func (w *writeTx) envelope() (*envelope, error) {
	if w.s.env != nil {
		return w.s.env, nil
	}
	if !w.s.hubKnown {
		var hubKey []byte
		err := w.tx.QueryRowContext(w.ctx, `SELECT hub_key FROM hub WHERE id = 1`).Scan(&hubKey)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("reading hub key: %w", err)
		}
		// Known from now on (Enroll resets it): no query per change.
		w.s.hubKnown, w.s.hubKey = true, hubKey
	}
	if len(w.s.hubKey) == 0 {
		return nil, nil
	}
	env, err := seal.NewEnvelope(w.s.hubKey)
	if err != nil {
		return nil, err
	}
	res, err := w.tx.ExecContext(w.ctx, `INSERT INTO envkeys(epk) VALUES (?)`, env.EPK)
	if err != nil {
		return nil, fmt.Errorf("recording envelope key: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	// If this transaction rolls back, the row goes but the envelope
	// would stay cached with a dangling id: drop it then (see write).
	w.newEnv = true
	w.s.env = &envelope{id: id, env: env}
	return w.s.env, nil
}

// sealPendingForHub seals to the hub every pending change that has no hub
// copy yet (those written before enrollment).
func (w *writeTx) sealPendingForHub() error {
	rows, err := w.tx.QueryContext(w.ctx, `SELECT seq, kind, record_id, body FROM changes
		WHERE hub_body IS NULL AND seq > (SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?)`, metaAckedSeq)
	if err != nil {
		return fmt.Errorf("reading outbox: %w", err)
	}
	type todo struct {
		seq  uint64
		k    domain.Kind
		id   ident.ID
		body []byte
	}
	var ts []todo
	for rows.Next() {
		var t todo
		var idb []byte
		if err := rows.Scan(&t.seq, &t.k, &idb, &t.body); err != nil {
			rows.Close()
			return err
		}
		copy(t.id[:], idb)
		ts = append(ts, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range ts {
		raw, err := w.s.key.Open(nil, t.body, changeAD(t.k, t.id, t.seq))
		if err != nil {
			return fmt.Errorf("opening change %d: %w", t.seq, err)
		}
		hb, hk, err := w.sealForHub(t.k, t.id, t.seq, raw)
		if err != nil {
			return err
		}
		if _, err := w.tx.ExecContext(w.ctx, `UPDATE changes SET hub_body = ?, hub_key = ? WHERE seq = ?`, hb, hk, t.seq); err != nil {
			return fmt.Errorf("sealing change %d for the hub: %w", t.seq, err)
		}
	}
	return nil
}

// Sealed is a pending change whose fields are sealed to the hub: what a
// locked agent can send.
type Sealed struct {
	Kind  domain.Kind
	ID    ident.ID
	Op    uint8
	HLC   uint64
	Seq   uint64
	Body  []byte
	KeyID uint64
}

// PendingSealed returns up to max pending changes after seq after with
// their hub-sealed bodies, and the envelope public keys they use. It needs
// no passphrase. It stops before a change without a hub copy.
func (s *Store) PendingSealed(ctx context.Context, after uint64, max int) ([]Sealed, map[uint64][]byte, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.seq, c.hlc, c.kind, c.record_id, c.op, c.hub_body, c.hub_key, e.epk
		FROM changes c LEFT JOIN envkeys e ON e.id = c.hub_key WHERE c.seq > ? ORDER BY c.seq LIMIT ?`, after, max)
	if err != nil {
		return nil, nil, fmt.Errorf("reading outbox: %w", err)
	}
	defer rows.Close()
	var out []Sealed
	keys := map[uint64][]byte{}
	for rows.Next() {
		var c Sealed
		var idb, epk []byte
		var kid sql.NullInt64
		if err := rows.Scan(&c.Seq, &c.HLC, &c.Kind, &idb, &c.Op, &c.Body, &kid, &epk); err != nil {
			return nil, nil, fmt.Errorf("reading outbox: %w", err)
		}
		if len(c.Body) == 0 || !kid.Valid || len(epk) == 0 {
			break // written before enrollment: waits for an unlock
		}
		copy(c.ID[:], idb)
		c.KeyID = uint64(kid.Int64)
		keys[c.KeyID] = epk
		out = append(out, c)
	}
	return out, keys, rows.Err()
}
