package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"numeribus/hub/store"
)

// CreateEnrollment records a pending enrollment. A token hash already
// recorded is refused.
func (s *Store) CreateEnrollment(ctx context.Context, e store.Enrollment) error {
	if e.Name == "" || e.Team == "" {
		return errors.New("enrollment: name and team are required")
	}
	if e.ExpiresAt.IsZero() {
		return errors.New("enrollment: an expiry time is required")
	}
	if e.Name == HubDeviceName {
		return fmt.Errorf("enrollment: the name %q is reserved for the hub's own changes (plan.go)", e.Name)
	}
	_, err := s.exec(ctx, `INSERT INTO enrollments(token_hash, name, team, expires_at) VALUES (?, ?, ?, ?)`,
		e.TokenHash[:], e.Name, e.Team, e.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("recording enrollment of %q: %w", e.Name, err)
	}
	return nil
}

// Enroll consumes the token and registers d (its id and keys) under the
// enrollment's name and team, in one transaction. The token is checked
// first (ErrBadToken, ErrTokenUsed, ErrTokenExpired when now is after the
// expiry), then the name (ErrNameTaken, also when its device is revoked).
// A device id already enrolled is refused: a device enrolls once.
func (s *Store) Enroll(ctx context.Context, tokenHash [32]byte, d store.Device, now time.Time) (store.Device, error) {
	if d.ID == "" {
		return store.Device{}, errors.New("enrolling: the device id is empty")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.Device{}, fmt.Errorf("enrolling: %w", err)
	}
	defer tx.Rollback()
	var (
		name, team string
		expires    int64
		used       sql.NullInt64
	)
	err = tx.QueryRowContext(ctx, `SELECT name, team, expires_at, used_at FROM enrollments WHERE token_hash = ?`, tokenHash[:]).
		Scan(&name, &team, &expires, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Device{}, store.ErrBadToken
	case err != nil:
		return store.Device{}, fmt.Errorf("enrolling: reading token: %w", err)
	case used.Valid:
		return store.Device{}, fmt.Errorf("%w (on %s)", store.ErrTokenUsed, fromMillis(used).Format(time.RFC3339))
	case now.UnixMilli() > expires:
		return store.Device{}, fmt.Errorf("%w (at %s)", store.ErrTokenExpired, time.UnixMilli(expires).UTC().Format(time.RFC3339))
	}
	var otherID, otherName string
	err = tx.QueryRowContext(ctx, `SELECT id, name FROM devices WHERE name = ? OR id = ? ORDER BY name = ? DESC LIMIT 1`, name, d.ID, name).Scan(&otherID, &otherName)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return store.Device{}, fmt.Errorf("enrolling: %w", err)
	case otherName == name:
		return store.Device{}, fmt.Errorf("%w: %q", store.ErrNameTaken, name)
	default:
		return store.Device{}, fmt.Errorf("enrolling: device %s is already enrolled as %q; a device enrolls once (revoke it and enroll a new store)", d.ID, otherName)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO devices(id, name, team, device_key, push_key, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)`,
		d.ID, name, team, d.DeviceKey, d.PushKey, now.UnixMilli()); err != nil {
		return store.Device{}, fmt.Errorf("enrolling %q: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE enrollments SET used_at = ?, used_by = ? WHERE token_hash = ?`,
		now.UnixMilli(), d.ID, tokenHash[:]); err != nil {
		return store.Device{}, fmt.Errorf("enrolling %q: consuming token: %w", name, err)
	}
	out, err := device(ctx, tx, d.ID)
	if err != nil {
		return store.Device{}, err
	}
	if err := tx.Commit(); err != nil {
		return store.Device{}, fmt.Errorf("enrolling %q: %w", name, err)
	}
	return out, nil
}

const deviceCols = `id, name, team, device_key, push_key, enrolled_at, revoked_at, last_seen, last_sync,
	hwm, agent_version, clock_offset_ms, bytes_received, changes_received`

type rowScanner interface{ Scan(dest ...any) error }

func scanDevice(r rowScanner) (store.Device, error) {
	var (
		d                     store.Device
		enrolled              int64
		revoked, seen, synced sql.NullInt64
		hwm                   int64
		deviceKey, pushKey    []byte
	)
	err := r.Scan(&d.ID, &d.Name, &d.Team, &deviceKey, &pushKey, &enrolled, &revoked, &seen, &synced,
		&hwm, &d.AgentVersion, &d.ClockOffsetMs, &d.BytesReceived, &d.ChangesReceived)
	if err != nil {
		return d, err
	}
	d.DeviceKey, d.PushKey = deviceKey, pushKey
	d.EnrolledAt = time.UnixMilli(enrolled).UTC()
	d.RevokedAt, d.LastSeen, d.LastSync = fromMillis(revoked), fromMillis(seen), fromMillis(synced)
	d.HWM = uint64(hwm)
	return d, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func device(ctx context.Context, q queryRower, id string) (store.Device, error) {
	d, err := scanDevice(q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%w: %s", store.ErrNoDevice, id)
	}
	if err != nil {
		return d, fmt.Errorf("reading device %s: %w", id, err)
	}
	return d, nil
}

// Device returns the device with id, or ErrNoDevice.
func (s *Store) Device(ctx context.Context, id string) (store.Device, error) {
	return device(ctx, s.sr, id)
}

// Devices lists every device, revoked ones included, by name; not the
// hub's own row, which no laptop is (plan.go).
func (s *Store) Devices(ctx context.Context) ([]store.Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE `+notHubSQL+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("listing devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	return out, nil
}

// Revoke cuts a device off by name. Revoking a revoked device keeps the
// first revocation time. The hub's own row is no device to revoke
// (ErrNoDevice).
func (s *Store) Revoke(ctx context.Context, name string, now time.Time) error {
	res, err := s.exec(ctx, `UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE name = ? AND `+notHubSQL, now.UnixMilli(), name)
	return affected(res, err, "revoking device", name)
}

// RevokedDevices returns the ids of every revoked device (store.Store).
func (s *Store) RevokedDevices(ctx context.Context) ([]string, error) {
	rows, err := s.sr.QueryContext(ctx, `SELECT id FROM devices WHERE revoked_at IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("listing revoked devices: %w", err)
	}
	defer rows.Close()
	ids, err := store.ScanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("listing revoked devices: %w", err)
	}
	return ids, nil
}

// MarkSeen records an authenticated connection.
func (s *Store) MarkSeen(ctx context.Context, deviceID string, seen store.Seen) error {
	defer s.hostWrite()()
	res, err := s.exec(ctx, `UPDATE devices SET last_seen = ?, agent_version = ?, clock_offset_ms = ? WHERE id = ?`,
		millis(seen.At), seen.AgentVersion, seen.ClockOffsetMs, deviceID)
	return affected(res, err, "recording connection of", deviceID)
}

// MarkSynced records a complete round, a contact too: in the same
// UPDATE, so that last seen is never older than last sync.
func (s *Store) MarkSynced(ctx context.Context, deviceID string, at time.Time) error {
	defer s.hostWrite()()
	res, err := s.exec(ctx, `UPDATE devices SET last_sync = ?1, last_seen = max(coalesce(last_seen, 0), ?1) WHERE id = ?2`,
		millis(at), deviceID)
	return affected(res, err, "recording sync of", deviceID)
}

// contactsChunk bounds the devices one MarkContacts transaction updates,
// so that a thousand open connections never hold the single writer for
// long.
const contactsChunk = 256

// MarkContacts moves each device's last seen forward to its time, in
// transactions of contactsChunk devices: the sync server calls it about
// once a minute for every device heard on an open connection, instead of
// one write per keepalive pong.
func (s *Store) MarkContacts(ctx context.Context, seen map[string]time.Time) error {
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the same order every time: plain to follow in a trace
	for chunk := range slices.Chunk(ids, contactsChunk) {
		if err := s.markContacts(ctx, chunk, seen); err != nil {
			return fmt.Errorf("recording contacts of %d devices: %w", len(chunk), err)
		}
	}
	return nil
}

// markContacts updates the last seen of ids in one transaction.
func (s *Store) markContacts(ctx context.Context, ids []string, seen map[string]time.Time) error {
	defer s.hostWrite()()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?) WHERE id = ?`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, seen[id].UnixMilli(), id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// affected turns an UPDATE of one device into ErrNoDevice when no row
// matched.
func affected(res sql.Result, err error, what, who string) error {
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, who, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, who, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", store.ErrNoDevice, who)
	}
	return nil
}
