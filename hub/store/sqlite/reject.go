package sqlite

import (
	"context"
	"fmt"

	"numeribus/hub/store"
)

// Reject records changes the hub refused (store.Store.Reject): each moves
// the device's high-water mark as an applied change would, in one
// transaction with the rows that say which change it was and why.
func (s *Store) Reject(ctx context.Context, deviceID string, rs []store.Rejected) (hwm uint64, err error) {
	defer s.hostWrite()()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("recording refused changes: %w", err)
	}
	defer tx.Rollback()
	d, err := s.batchDeviceOf(ctx, tx, deviceID)
	if err != nil {
		return 0, err
	}
	start := d.hwm
	hwm = start
	for _, r := range rs {
		if r.Seq <= hwm {
			continue
		}
		if r.Seq != hwm+1 {
			return start, fmt.Errorf("%w: device %s sent change %d after %d", store.ErrGap, deviceID, r.Seq, hwm)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rejected(device, dseq, hlc, kind, record_id, op, code, reason, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, d.num, int64(r.Seq), int64(r.HLC), string(r.Kind), r.ID[:], int(r.Op),
			r.Code, r.Reason, millis(r.At)); err != nil {
			return start, fmt.Errorf("recording refused change %d of device %s: %w", r.Seq, deviceID, err)
		}
		hwm = r.Seq
	}
	if hwm == start {
		return start, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET hwm = ? WHERE num = ?`, int64(hwm), d.num); err != nil {
		return start, fmt.Errorf("updating device %s: %w", deviceID, err)
	}
	if err := tx.Commit(); err != nil {
		return start, fmt.Errorf("recording refused changes of device %s: %w", deviceID, err)
	}
	return hwm, nil
}

// NoteRefused records refusals of changes taken in part, without moving
// the mark (store.Store.NoteRefused).
func (s *Store) NoteRefused(ctx context.Context, deviceID string, rs []store.Rejected) error {
	if len(rs) == 0 {
		return nil
	}
	defer s.hostWrite()()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording refusals: %w", err)
	}
	defer tx.Rollback()
	d, err := s.batchDeviceOf(ctx, tx, deviceID)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rejected(device, dseq, hlc, kind, record_id, op, code, reason, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, dseq) DO NOTHING`, d.num, int64(r.Seq), int64(r.HLC), string(r.Kind), r.ID[:], int(r.Op),
			r.Code, r.Reason, millis(r.At)); err != nil {
			return fmt.Errorf("recording the refusal of change %d of device %s: %w", r.Seq, deviceID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording refusals of device %s: %w", deviceID, err)
	}
	return nil
}

// Refusals returns the refusals recorded for the device's changes with
// after < seq <= upTo (store.Store.Refusals).
func (s *Store) Refusals(ctx context.Context, deviceID string, after, upTo uint64, max int) ([]store.Rejected, error) {
	rows, err := s.sr.QueryContext(ctx, `SELECT * FROM (SELECT r.dseq, r.hlc, r.kind, r.record_id, r.op, r.code, r.reason, r.at
		FROM rejected r JOIN devices d ON d.num = r.device
		WHERE d.id = ? AND r.dseq > ? AND r.dseq <= ? ORDER BY r.dseq DESC LIMIT ?) ORDER BY dseq`,
		deviceID, int64(after), int64(min(upTo, 1<<62)), max)
	if err != nil {
		return nil, fmt.Errorf("reading refusals of device %s: %w", deviceID, err)
	}
	defer rows.Close()
	return store.ScanRejected(rows)
}
