package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"numeribus/hub/accounts"
)

// The dashboard's accounts, sessions, API tokens and audit log
// (schema/hub/0003_accounts.sql), behind accounts.Store.

var _ accounts.Store = (*Store)(nil)

const userCols = `id, email, role, password, territories, created_at, disabled_at`

func scanUser(r rowScanner) (accounts.User, error) {
	var (
		u        accounts.User
		role     string
		terr     string
		created  int64
		disabled sql.NullInt64
	)
	if err := r.Scan(&u.ID, &u.Email, &role, &u.PasswordHash, &terr, &created, &disabled); err != nil {
		return u, err
	}
	u.Role = accounts.Role(role)
	u.Territories = strings.Fields(terr)
	u.Created = time.UnixMilli(created).UTC()
	u.Disabled = fromMillis(disabled)
	return u, nil
}

// CreateUser records u; ID and Created come back set.
func (s *Store) CreateUser(ctx context.Context, u accounts.User) (accounts.User, error) {
	email, err := accounts.NormalizeEmail(u.Email)
	if err != nil {
		return u, err
	}
	if _, err := accounts.ParseRole(string(u.Role)); err != nil {
		return u, err
	}
	if u.PasswordHash == "" {
		return u, errors.New("creating user: no password hash")
	}
	if u.Created.IsZero() {
		u.Created = time.Now()
	}
	u.Email = email
	res, err := s.exec(ctx, `INSERT INTO users(email, role, password, territories, created_at, disabled_at) VALUES (?, ?, ?, ?, ?, ?)`,
		email, string(u.Role), u.PasswordHash, strings.Join(u.Territories, " "), u.Created.UnixMilli(), millis(u.Disabled))
	if isUnique(err) {
		return u, fmt.Errorf("%w: %s", accounts.ErrEmailTaken, email)
	}
	if err != nil {
		return u, fmt.Errorf("creating user %s: %w", email, err)
	}
	if u.ID, err = res.LastInsertId(); err != nil {
		return u, fmt.Errorf("creating user %s: %w", email, err)
	}
	u.Created = u.Created.Truncate(time.Millisecond).UTC()
	return u, nil
}

// isUnique reports whether err is SQLite's UNIQUE constraint failure
// (SQLITE_CONSTRAINT_UNIQUE). CreateUser relies on the constraint rather
// than on a look-up first: two creations of one e-mail at once (two
// requests, or the CLI while the hub serves) both pass a look-up, and the
// second must still get ErrEmailTaken.
func isUnique(err error) bool {
	var ce interface{ Code() int }
	return errors.As(err, &ce) && ce.Code() == 2067
}

func (s *Store) userWhere(ctx context.Context, where string, arg any) (accounts.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return u, accounts.ErrNoUser
	}
	if err != nil {
		return u, fmt.Errorf("reading user: %w", err)
	}
	return u, nil
}

// UserByEmail returns the user with this e-mail (case ignored).
func (s *Store) UserByEmail(ctx context.Context, email string) (accounts.User, error) {
	return s.userWhere(ctx, `email = ?`, strings.TrimSpace(email))
}

// UserByID returns the user with id.
func (s *Store) UserByID(ctx context.Context, id int64) (accounts.User, error) {
	return s.userWhere(ctx, `id = ?`, id)
}

// Users lists every user by e-mail.
func (s *Store) Users(ctx context.Context) ([]accounts.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	defer rows.Close()
	var out []accounts.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("listing users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return out, nil
}

// SetUserDisabled disables or re-enables a user; disabling ends their
// sessions in the same transaction.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, at time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("disabling user %d: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE users SET disabled_at = ? WHERE id = ?`, millis(at), id)
	if err != nil {
		return fmt.Errorf("disabling user %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %d", accounts.ErrNoUser, id)
	}
	if !at.IsZero() {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("ending sessions of user %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("disabling user %d: %w", id, err)
	}
	return nil
}

// SetUserPassword replaces a user's password hash and ends their
// sessions in the same transaction.
func (s *Store) SetUserPassword(ctx context.Context, id int64, hash string) error {
	if hash == "" {
		return errors.New("setting a password: no hash")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("setting the password of user %d: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE users SET password = ? WHERE id = ?`, hash, id)
	if err != nil {
		return fmt.Errorf("setting the password of user %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %d", accounts.ErrNoUser, id)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
		return fmt.Errorf("ending sessions of user %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("setting the password of user %d: %w", id, err)
	}
	return nil
}

// SetUserTerritories replaces a user's territories.
func (s *Store) SetUserTerritories(ctx context.Context, id int64, territories []string) error {
	res, err := s.exec(ctx, `UPDATE users SET territories = ? WHERE id = ?`, strings.Join(territories, " "), id)
	if err != nil {
		return fmt.Errorf("setting the territories of user %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %d", accounts.ErrNoUser, id)
	}
	return nil
}

// CreateSession records a session. Its csrf column (schema version 3)
// is left empty: the dashboard no longer uses per-session CSRF tokens
// (internal/webguard refuses cross-origin writes). The column stays, so
// that this cleanup needs no migration.
func (s *Store) CreateSession(ctx context.Context, se accounts.Session) error {
	_, err := s.exec(ctx, `INSERT INTO sessions(token_hash, user_id, csrf, created_at, last_seen) VALUES (?, ?, '', ?, ?)`,
		se.Hash[:], se.UserID, se.Created.UnixMilli(), se.LastSeen.UnixMilli())
	if err != nil {
		return fmt.Errorf("recording session of user %d: %w", se.UserID, err)
	}
	return nil
}

// Session returns the session with this token hash.
func (s *Store) Session(ctx context.Context, h accounts.TokenHash) (accounts.Session, error) {
	var (
		se            accounts.Session
		created, seen int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT user_id, created_at, last_seen FROM sessions WHERE token_hash = ?`, h[:]).
		Scan(&se.UserID, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return se, accounts.ErrNoSession
	}
	if err != nil {
		return se, fmt.Errorf("reading session: %w", err)
	}
	se.Hash = h
	se.Created, se.LastSeen = time.UnixMilli(created).UTC(), time.UnixMilli(seen).UTC()
	return se, nil
}

// TouchSession records activity on a session.
func (s *Store) TouchSession(ctx context.Context, h accounts.TokenHash, at time.Time) error {
	if _, err := s.exec(ctx, `UPDATE sessions SET last_seen = max(last_seen, ?) WHERE token_hash = ?`, at.UnixMilli(), h[:]); err != nil {
		return fmt.Errorf("recording session activity: %w", err)
	}
	return nil
}

// DeleteSession ends a session; ending an unknown one is not an error.
func (s *Store) DeleteSession(ctx context.Context, h accounts.TokenHash) error {
	if _, err := s.exec(ctx, `DELETE FROM sessions WHERE token_hash = ?`, h[:]); err != nil {
		return fmt.Errorf("ending session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions idle or too old at now.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM sessions WHERE last_seen <= ? OR created_at <= ?`,
		now.Add(-accounts.IdleTimeout).UnixMilli(), now.Add(-accounts.AbsoluteTimeout).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("removing expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CreateAPIToken records a bearer token for the JSON API.
func (s *Store) CreateAPIToken(ctx context.Context, t accounts.APIToken) error {
	_, err := s.exec(ctx, `INSERT INTO api_tokens(token_hash, user_id, name, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.Hash[:], t.UserID, t.Name, t.Created.UnixMilli(), millis(t.Expires), millis(t.Revoked))
	if err != nil {
		return fmt.Errorf("recording API token of user %d: %w", t.UserID, err)
	}
	return nil
}

// APIToken returns the token with this hash.
func (s *Store) APIToken(ctx context.Context, h accounts.TokenHash) (accounts.APIToken, error) {
	var (
		t                accounts.APIToken
		created          int64
		expires, revoked sql.NullInt64
	)
	err := s.r.QueryRowContext(ctx, `SELECT user_id, name, created_at, expires_at, revoked_at FROM api_tokens WHERE token_hash = ?`, h[:]).
		Scan(&t.UserID, &t.Name, &created, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return t, accounts.ErrNoSession
	}
	if err != nil {
		return t, fmt.Errorf("reading API token: %w", err)
	}
	t.Hash = h
	t.Created = time.UnixMilli(created).UTC()
	t.Expires, t.Revoked = fromMillis(expires), fromMillis(revoked)
	return t, nil
}

// Audit appends to the audit log, and drops the entries older than
// accounts.AuditRetention about once per thousand entries.
func (s *Store) Audit(ctx context.Context, e accounts.AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	var user any
	if e.UserID != 0 {
		user = e.UserID
	}
	res, err := s.exec(ctx, `INSERT INTO audit(at, user_id, email, action, what, ip) VALUES (?, ?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), user, e.Email, string(e.Action), e.What, e.IP)
	if err != nil {
		return fmt.Errorf("writing audit log (%s): %w", e.Action, err)
	}
	if id, err := res.LastInsertId(); err == nil && id%1000 == 0 {
		if _, err := s.exec(ctx, `DELETE FROM audit WHERE at < ?`, e.At.Add(-accounts.AuditRetention).UnixMilli()); err != nil {
			return fmt.Errorf("trimming audit log: %w", err)
		}
	}
	return nil
}

// AuditLog returns the latest entries first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]accounts.AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, at, coalesce(user_id, 0), email, action, what, ip FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	defer rows.Close()
	var out []accounts.AuditEntry
	for rows.Next() {
		var (
			e      accounts.AuditEntry
			at     int64
			action string
		)
		if err := rows.Scan(&e.ID, &at, &e.UserID, &e.Email, &action, &e.What, &e.IP); err != nil {
			return nil, fmt.Errorf("reading audit log: %w", err)
		}
		e.At, e.Action = time.UnixMilli(at).UTC(), accounts.Action(action)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return out, nil
}
