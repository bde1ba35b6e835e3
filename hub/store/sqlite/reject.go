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
