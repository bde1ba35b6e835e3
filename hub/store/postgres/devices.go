package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/store"
)

var _ store.Store = (*Store)(nil)

// HubDeviceName is the name of the hub's own row in devices, the origin
// of the changes the hub makes (planned stops): never enrollable, never
// listed as a laptop. The same as on SQLite.
const HubDeviceName = "(hub)"

// notHubSQL selects every device but the hub's own row (team ”).
const notHubSQL = `team <> ''`

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
		return fmt.Errorf("enrollment: the name %q is reserved for the hub's own changes", e.Name)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO enrollments(token_hash, name, team, expires_at) VALUES ($1, $2, $3, $4)`,
		e.TokenHash[:], e.Name, e.Team, e.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("recording enrollment of %q: %w", e.Name, err)
	}
	return nil
}

// Enroll consumes the token and registers d under the enrollment's name
// and team, in one transaction; the token's row is locked, so that two
// instances given the same token enroll once.
func (s *Store) Enroll(ctx context.Context, tokenHash [32]byte, d store.Device, now time.Time) (store.Device, error) {
	if d.ID == "" {
		return store.Device{}, errors.New("enrolling: the device id is empty")
	}
	var out store.Device
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		name, team, err := takeToken(ctx, tx, tokenHash, now)
		if err != nil {
			return err
		}
		if err := nameFree(ctx, tx, name, d.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO devices(id, name, team, device_key, push_key, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			d.ID, name, team, d.DeviceKey, d.PushKey, now.UnixMilli()); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("%w: %q", store.ErrNameTaken, name)
			}
			return fmt.Errorf("enrolling %q: %w", name, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE enrollments SET used_at = $1, used_by = $2 WHERE token_hash = $3`,
			now.UnixMilli(), d.ID, tokenHash[:]); err != nil {
			return fmt.Errorf("enrolling %q: consuming token: %w", name, err)
		}
		out, err = device(ctx, tx, d.ID)
		return err
	})
	return out, err
}

// takeToken checks the token (ErrBadToken, ErrTokenUsed, ErrTokenExpired)
// and returns its name and team, its row locked.
func takeToken(ctx context.Context, tx pgx.Tx, tokenHash [32]byte, now time.Time) (name, team string, err error) {
	var (
		expires int64
		used    *int64
	)
	err = tx.QueryRow(ctx, `SELECT name, team, expires_at, used_at FROM enrollments WHERE token_hash = $1 FOR UPDATE`, tokenHash[:]).
		Scan(&name, &team, &expires, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", "", store.ErrBadToken
	case err != nil:
		return "", "", fmt.Errorf("enrolling: reading token: %w", err)
	case used != nil:
		return "", "", fmt.Errorf("%w (on %s)", store.ErrTokenUsed, fromMs(used).Format(time.RFC3339))
	case now.UnixMilli() > expires:
		return "", "", fmt.Errorf("%w (at %s)", store.ErrTokenExpired, time.UnixMilli(expires).UTC().Format(time.RFC3339))
	}
	return name, team, nil
}

// nameFree refuses a name already taken (also by a revoked device) and a
// device id already enrolled: a device enrolls once.
func nameFree(ctx context.Context, tx pgx.Tx, name, id string) error {
	var otherName string
	err := tx.QueryRow(ctx, `SELECT name FROM devices WHERE name = $1 OR id = $2 ORDER BY name = $1 DESC LIMIT 1`, name, id).Scan(&otherName)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("enrolling: %w", err)
	case otherName == name:
		return fmt.Errorf("%w: %q", store.ErrNameTaken, name)
	}
	return fmt.Errorf("enrolling: device %s is already enrolled as %q; a device enrolls once (revoke it and enroll a new store)", id, otherName)
}

const deviceCols = `id, name, team, device_key, push_key, enrolled_at, revoked_at, last_seen, last_sync,
	hwm, agent_version, clock_offset_ms, bytes_received, changes_received`

func scanDevice(r pgx.Row) (store.Device, error) {
	var (
		d                     store.Device
		enrolled, hwm         int64
		revoked, seen, synced *int64
	)
	err := r.Scan(&d.ID, &d.Name, &d.Team, &d.DeviceKey, &d.PushKey, &enrolled, &revoked, &seen, &synced,
		&hwm, &d.AgentVersion, &d.ClockOffsetMs, &d.BytesReceived, &d.ChangesReceived)
	if err != nil {
		return d, err
	}
	d.EnrolledAt = time.UnixMilli(enrolled).UTC()
	d.RevokedAt, d.LastSeen, d.LastSync = fromMs(revoked), fromMs(seen), fromMs(synced)
	d.HWM = uint64(hwm)
	return d, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func device(ctx context.Context, q querier, id string) (store.Device, error) {
	d, err := scanDevice(q.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("%w: %s", store.ErrNoDevice, id)
	}
	if err != nil {
		return d, fmt.Errorf("reading device %s: %w", id, err)
	}
	return d, nil
}

// Device returns the device with id, or ErrNoDevice.
func (s *Store) Device(ctx context.Context, id string) (store.Device, error) {
	return device(ctx, s.pool, id)
}

// Devices lists every device, revoked ones included, by name; not the
// hub's own row.
func (s *Store) Devices(ctx context.Context) ([]store.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM devices WHERE `+notHubSQL+` ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Device, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	return out, nil
}

// Revoke cuts a device off by name, keeping the first revocation time.
func (s *Store) Revoke(ctx context.Context, name string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE name = $2 AND `+notHubSQL, now.UnixMilli(), name)
	return oneDevice(tag.RowsAffected(), err, "revoking device", name)
}

// RevokedDevices returns the ids of every revoked device (store.Store).
func (s *Store) RevokedDevices(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM devices WHERE revoked_at IS NOT NULL`)
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
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET last_seen = $1, agent_version = $2, clock_offset_ms = $3 WHERE id = $4`,
		ms(seen.At), seen.AgentVersion, seen.ClockOffsetMs, deviceID)
	return oneDevice(tag.RowsAffected(), err, "recording connection of", deviceID)
}

// MarkSynced records a complete round, which is a contact too.
func (s *Store) MarkSynced(ctx context.Context, deviceID string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET last_sync = $1, last_seen = greatest(coalesce(last_seen, 0), $1) WHERE id = $2`,
		ms(at), deviceID)
	return oneDevice(tag.RowsAffected(), err, "recording sync of", deviceID)
}

// MarkContacts moves the last seen of many devices forward in one
// statement; unknown devices are skipped.
func (s *Store) MarkContacts(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids := make([]string, 0, len(seen))
	ats := make([]int64, 0, len(seen))
	for id, at := range seen {
		ids, ats = append(ids, id), append(ats, at.UnixMilli())
	}
	_, err := s.pool.Exec(ctx, `UPDATE devices d SET last_seen = greatest(coalesce(d.last_seen, 0), c.at)
		FROM unnest($1::text[], $2::bigint[]) AS c(id, at) WHERE d.id = c.id`, ids, ats)
	if err != nil {
		return fmt.Errorf("recording contacts of %d devices: %w", len(seen), err)
	}
	return nil
}

// oneDevice turns an UPDATE of one device into ErrNoDevice when no row
// matched.
func oneDevice(n int64, err error, what, who string) error {
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, who, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", store.ErrNoDevice, who)
	}
	return nil
}

// Times are Unix milliseconds, NULL for the zero time.

func ms(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

func fromMs(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMilli(*v).UTC()
}
