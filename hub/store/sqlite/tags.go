package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"numeribus/hub/store"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// DeviceChangeTag returns wire.ChangeTag of the change the device logged,
// or the hub refused, with seq, or nil when the hub holds none.
func (s *Store) DeviceChangeTag(ctx context.Context, deviceID string, seq uint64) ([]byte, error) {
	var (
		h  int64
		id []byte
		op int
	)
	// A seq is logged, or refused, or both when taken in part (NoteRefused:
	// the same change, the same tag): the first row answers.
	err := s.sr.QueryRowContext(ctx, `SELECT c.hlc, c.record_id, c.op FROM changes c JOIN devices d ON d.num = c.device
		WHERE d.id = ? AND c.dseq = ?
		UNION ALL SELECT r.hlc, r.record_id, r.op FROM rejected r JOIN devices d ON d.num = r.device
		WHERE d.id = ? AND r.dseq = ?`, deviceID, int64(seq), deviceID, int64(seq)).Scan(&h, &id, &op)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading change %d of device %s: %w", seq, deviceID, err)
	}
	var rid ident.ID
	copy(rid[:], id)
	return wire.ChangeTag(seq, uint64(h), rid, uint8(op)), nil
}

// LogTag returns the chained tag of the hub log entry hubSeq
// (store.LogChain), or nil when the log holds none.
func (s *Store) LogTag(ctx context.Context, hubSeq uint64) ([]byte, error) {
	return s.chain.Tag(ctx, hubSeq)
}

// scanLog reads the entries of the log with from < hub seq <= to, in
// order: what the chain of log tags covers.
func (s *Store) scanLog(ctx context.Context, from, to uint64, fn func(store.LogEntry) error) error {
	rows, err := s.sr.QueryContext(ctx, `SELECT c.hseq, d.id, c.dseq, c.hlc, c.record_id, c.op FROM changes c JOIN devices d ON d.num = c.device
		WHERE c.hseq > ? AND c.hseq <= ? ORDER BY c.hseq`, int64(from), int64(to))
	if err != nil {
		return err
	}
	defer rows.Close()
	return store.ScanLog(rows, fn)
}
