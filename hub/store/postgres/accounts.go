package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"numeribus/hub/accounts"
)

// The dashboard's accounts, sessions, API tokens and audit log (the
// users, sessions, api_tokens and audit tables of schema/hubpg), behind
// accounts.Store and checked by hub/accounts/accountstest. As on SQLite,
// times are Unix milliseconds, NULL for "never".

var _ accounts.Store = (*Store)(nil)

const userCols = `id, email, role, password, territories, created_at, disabled_at`

func scanUser(r pgx.Row) (accounts.User, error) {
	var (
		u        accounts.User
		role     string
		terr     string
		created  int64
		disabled *int64
	)
	if err := r.Scan(&u.ID, &u.Email, &role, &u.PasswordHash, &terr, &created, &disabled); err != nil {
		return u, err
	}
	u.Role = accounts.Role(role)
	u.Territories = strings.Fields(terr)
	u.Created = time.UnixMilli(created).UTC()
	u.Disabled = accountsTime(disabled)
	return u, nil
}

// checkNewUser normalizes the e-mail and refuses a user the dashboard
// could not key or log in, before the database sees it.
func checkNewUser(u accounts.User) (accounts.User, error) {
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
	u.Email = email
	return u, nil
}

// CreateUser records u; ID and Created come back set. The e-mail is
// stored lower-cased: the column's UNIQUE is then case-blind, and a
// concurrent creation of the same address fails on it (23505), mapped to
// ErrEmailTaken.
func (s *Store) CreateUser(ctx context.Context, u accounts.User) (accounts.User, error) {
	u, err := checkNewUser(u)
	if err != nil {
		return u, err
	}
	if u.Created.IsZero() {
		u.Created = time.Now()
	}
	u.Created = u.Created.Truncate(time.Millisecond).UTC()
	err = s.pool.QueryRow(ctx, `INSERT INTO users(email, role, password, territories, created_at, disabled_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		u.Email, string(u.Role), u.PasswordHash, strings.Join(u.Territories, " "), u.Created.UnixMilli(), accountsMillis(u.Disabled)).
		Scan(&u.ID)
	if isUniqueViolation(err) {
		return u, fmt.Errorf("%w: %s", accounts.ErrEmailTaken, u.Email)
	}
	if err != nil {
		return u, fmt.Errorf("creating user %s: %w", u.Email, err)
	}
	return u, nil
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
// On users the only unique key a caller can hit is the e-mail (the ID is
// an identity column).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (s *Store) userWhere(ctx context.Context, where string, arg any) (accounts.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, accounts.ErrNoUser
	}
	if err != nil {
		return u, fmt.Errorf("reading user: %w", err)
	}
	return u, nil
}

// UserByEmail returns the user with this e-mail, as typed: it is trimmed
// and lower-cased here, as CreateUser stored it (SQLite's column ignores
// case instead).
func (s *Store) UserByEmail(ctx context.Context, email string) (accounts.User, error) {
	return s.userWhere(ctx, `email = $1`, strings.ToLower(strings.TrimSpace(email)))
}

// UserByID returns the user with id.
func (s *Store) UserByID(ctx context.Context, id int64) (accounts.User, error) {
	return s.userWhere(ctx, `id = $1`, id)
}

// Users lists every user by e-mail. COLLATE "C" orders by bytes, as
// SQLite does, whatever the database's locale.
func (s *Store) Users(ctx context.Context) ([]accounts.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY email COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (accounts.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return us, nil
}

// SetUserDisabled disables or re-enables a user; disabling ends their
// sessions in the same transaction, so that no request slips in between
// on a session of a user already disabled.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, at time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled_at = $1 WHERE id = $2`, accountsMillis(at), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %d", accounts.ErrNoUser, id)
		}
		if at.IsZero() {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id); err != nil {
			return fmt.Errorf("ending their sessions: %w", err)
		}
		return nil
	})
	if err != nil {
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password = $1 WHERE id = $2`, hash, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %d", accounts.ErrNoUser, id)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id); err != nil {
			return fmt.Errorf("ending their sessions: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("setting the password of user %d: %w", id, err)
	}
	return nil
}

// SetUserTerritories replaces a user's territories.
func (s *Store) SetUserTerritories(ctx context.Context, id int64, territories []string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET territories = $1 WHERE id = $2`, strings.Join(territories, " "), id)
	if err != nil {
		return fmt.Errorf("setting the territories of user %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %d", accounts.ErrNoUser, id)
	}
	return nil
}

// CreateSession records a session. Unlike SQLite's, the table has no
// csrf column: the dashboard stopped using per-session CSRF tokens
// before this backend existed.
func (s *Store) CreateSession(ctx context.Context, se accounts.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions(token_hash, user_id, created_at, last_seen) VALUES ($1, $2, $3, $4)`,
		se.Hash[:], se.UserID, se.Created.UnixMilli(), se.LastSeen.UnixMilli())
	if err != nil {
		return fmt.Errorf("recording session of user %d: %w", se.UserID, err)
	}
	return nil
}

// Session returns the session with this token hash.
func (s *Store) Session(ctx context.Context, h accounts.TokenHash) (accounts.Session, error) {
	var (
		se            = accounts.Session{Hash: h}
		created, seen int64
	)
	err := s.pool.QueryRow(ctx, `SELECT user_id, created_at, last_seen FROM sessions WHERE token_hash = $1`, h[:]).
		Scan(&se.UserID, &created, &seen)
	if errors.Is(err, pgx.ErrNoRows) {
		return accounts.Session{}, accounts.ErrNoSession
	}
	if err != nil {
		return accounts.Session{}, fmt.Errorf("reading session: %w", err)
	}
	se.Created, se.LastSeen = time.UnixMilli(created).UTC(), time.UnixMilli(seen).UTC()
	return se, nil
}

// TouchSession records activity on a session. last_seen only moves
// forward: two requests of one browser, served by two instances, may
// touch it out of order.
func (s *Store) TouchSession(ctx context.Context, h accounts.TokenHash, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen = greatest(last_seen, $1) WHERE token_hash = $2`, at.UnixMilli(), h[:]); err != nil {
		return fmt.Errorf("recording session activity: %w", err)
	}
	return nil
}

// DeleteSession ends a session; ending an unknown one is not an error.
func (s *Store) DeleteSession(ctx context.Context, h accounts.TokenHash) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, h[:]); err != nil {
		return fmt.Errorf("ending session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions idle or too old at now, the
// limits included, as accounts.Session.Expired decides.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE last_seen <= $1 OR created_at <= $2`,
		now.Add(-accounts.IdleTimeout).UnixMilli(), now.Add(-accounts.AbsoluteTimeout).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("removing expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// CreateAPIToken records a bearer token for the JSON API.
func (s *Store) CreateAPIToken(ctx context.Context, t accounts.APIToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO api_tokens(token_hash, user_id, name, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.Hash[:], t.UserID, t.Name, t.Created.UnixMilli(), accountsMillis(t.Expires), accountsMillis(t.Revoked))
	if err != nil {
		return fmt.Errorf("recording API token of user %d: %w", t.UserID, err)
	}
	return nil
}

// APIToken returns the token with this hash, valid or not: the dashboard
// decides from Expires and Revoked.
func (s *Store) APIToken(ctx context.Context, h accounts.TokenHash) (accounts.APIToken, error) {
	var (
		t                = accounts.APIToken{Hash: h}
		created          int64
		expires, revoked *int64
	)
	err := s.pool.QueryRow(ctx, `SELECT user_id, name, created_at, expires_at, revoked_at FROM api_tokens WHERE token_hash = $1`, h[:]).
		Scan(&t.UserID, &t.Name, &created, &expires, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return accounts.APIToken{}, accounts.ErrNoSession
	}
	if err != nil {
		return accounts.APIToken{}, fmt.Errorf("reading API token: %w", err)
	}
	t.Created = time.UnixMilli(created).UTC()
	t.Expires, t.Revoked = accountsTime(expires), accountsTime(revoked)
	return t, nil
}

// Audit appends to the audit log and, like SQLite, drops the entries
// older than accounts.AuditRetention about once per thousand entries
// (identity values may skip after a rollback, so "about").
func (s *Store) Audit(ctx context.Context, e accounts.AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	var user *int64
	if e.UserID != 0 {
		user = &e.UserID
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO audit(at, user_id, email, action, what, ip) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		e.At.UnixMilli(), user, e.Email, string(e.Action), e.What, e.IP).Scan(&id)
	if err != nil {
		return fmt.Errorf("writing audit log (%s): %w", e.Action, err)
	}
	if id%1000 != 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM audit WHERE at < $1`, e.At.Add(-accounts.AuditRetention).UnixMilli()); err != nil {
		return fmt.Errorf("trimming audit log: %w", err)
	}
	return nil
}

// AuditLog returns the latest entries first. The order is the ID's, not
// the time's, as on SQLite: entries of one millisecond keep their order.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]accounts.AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, coalesce(user_id, 0), email, action, what, ip FROM audit ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	log, err := pgx.CollectRows(rows, scanAuditEntry)
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return log, nil
}

func scanAuditEntry(r pgx.CollectableRow) (accounts.AuditEntry, error) {
	var (
		e      accounts.AuditEntry
		at     int64
		action string
	)
	if err := r.Scan(&e.ID, &at, &e.UserID, &e.Email, &action, &e.What, &e.IP); err != nil {
		return e, err
	}
	e.At, e.Action = time.UnixMilli(at).UTC(), accounts.Action(action)
	return e, nil
}

// accountsMillis is t in Unix milliseconds, nil (NULL) for the zero time.
// The accounts-prefixed names keep this file's helpers apart from those
// of the package's other files, written at the same time; they can merge.
func accountsMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// accountsTime reads what accountsMillis wrote: NULL is the zero time.
func accountsTime(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return time.UnixMilli(*ms).UTC()
}
