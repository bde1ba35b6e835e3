// Package accounts holds the domain of the coordinators' dashboard
// accounts: users and their roles, the territories a coordinator may
// see, password hashes, sessions and the audit log. It does no I/O: the
// hub's store keeps these (hub/store/sqlite, accounts.go) and the
// dashboard (hub/dashboard) enforces them.
//
// The rules live here so that the CLI (`hub user add`), the store and
// the dashboard agree on them: who may see what (Role), how long a
// session lasts (IdleTimeout, AbsoluteTimeout), what an audit entry
// says (Action).
package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/territoire"
)

// Role is what a user may do on the dashboard.
type Role string

// The roles. An admin manages devices and users and sees everything; a
// coordinator sees the activity of their territories only; a viewer (a
// funder, an elected official) sees aggregates only, never personal
// data.
const (
	RoleAdmin       Role = "admin"
	RoleCoordinator Role = "coordinator"
	RoleViewer      Role = "viewer"
)

// Roles lists the roles in order of power, for help texts and forms.
var Roles = []Role{RoleAdmin, RoleCoordinator, RoleViewer}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(s))
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("rôle inconnu « %s » : admin, coordinator (coordinateur) ou viewer (lecteur)", s)
}

// SeesPersonalData reports whether the role may read personal data
// (mediator names in exports, per-record pages). Viewers never do.
func (r Role) SeesPersonalData() bool { return r == RoleAdmin || r == RoleCoordinator }

// Admin reports whether the role may manage devices and users.
func (r Role) Admin() bool { return r == RoleAdmin }

// Territorial reports whether the user's reads are cut down to their
// territories. Admins see everything; a coordinator or a viewer with
// territories sees only those (a viewer without any sees the aggregates
// of every territory).
func (u *User) Territorial() bool {
	return u.Role == RoleCoordinator || (u.Role == RoleViewer && len(u.Territories) > 0)
}

// User is one dashboard account.
type User struct {
	ID    int64
	Email string // unique, compared without case
	Role  Role
	// Territories a coordinator may see: département ("54", "2A"),
	// EPCI (9-digit SIREN) or commune (5-character INSEE) codes.
	Territories []string
	// PasswordHash is the PHC string of the Argon2id hash, parameters
	// included (see HashPassword).
	PasswordHash string
	Created      time.Time
	Disabled     time.Time // zero: active
}

// Active reports whether the user may log in.
func (u *User) Active() bool { return u.Disabled.IsZero() }

// ErrNoUser is returned for an unknown user. Its text, like every
// message of this package a person may read (a form, the command line),
// is French.
var ErrNoUser = apperr.New(apperr.NotFound, "utilisateur inconnu")

// ErrEmailTaken is returned when creating a user whose e-mail exists.
var ErrEmailTaken = apperr.New(apperr.Conflict, "un compte existe déjà avec cette adresse")

// NormalizeEmail returns the address in the form the store keys on
// (trimmed, lower case), or an error when it is not an address.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s, "@") {
		return "", fmt.Errorf("« %s » n'est pas une adresse e-mail", s)
	}
	return s, nil
}

// TerritoryKind says what a territory code names.
type TerritoryKind string

// Kinds of territory codes a coordinator can be given.
const (
	Departement TerritoryKind = "departement"
	EPCI        TerritoryKind = "epci"
	Commune     TerritoryKind = "commune"
)

var prefixKinds = map[string]TerritoryKind{"DEP": Departement, "EPCI": EPCI, "COM": Commune}

// ClassifyTerritory checks a code against the embedded territories and
// says what it names: a département, an EPCI or a commune.
func ClassifyTerritory(x *territoire.Index, code string) (TerritoryKind, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if _, ok := x.Departement(code); ok {
		return Departement, nil
	}
	if _, ok := x.EPCI(code); ok {
		return EPCI, nil
	}
	if _, ok := x.Commune(code); ok {
		return Commune, nil
	}
	return "", fmt.Errorf("territoire « %s » inconnu : donnez un code de département (54, 2A, 971), d'EPCI (SIREN, 9 chiffres) ou de commune (INSEE, 5 caractères)", code)
}

// CheckTerritories validates a user's territories for their role: a
// coordinator needs at least one, and every code must exist. It returns
// the codes cleaned (upper case, sorted, without duplicates).
func CheckTerritories(x *territoire.Index, role Role, codes []string) ([]string, error) {
	var out []string
	for _, c := range codes {
		for _, f := range strings.FieldsFunc(c, func(r rune) bool { return r == ',' || r == ' ' }) {
			f = strings.ToUpper(f)
			// The dashboard's filter form (dep:54, epci:…, com:…) is
			// accepted too; the bare code is stored.
			p, code, prefixed := strings.Cut(f, ":")
			if prefixed {
				f = code
			}
			k, err := ClassifyTerritory(x, f)
			if err != nil {
				return nil, err
			}
			if want := prefixKinds[p]; prefixed && want != k {
				return nil, fmt.Errorf("territoire « %s » inconnu : dep:, epci: ou com: vont avec un code de ce genre", c)
			}
			out = append(out, f)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if role == RoleCoordinator && len(out) == 0 {
		return nil, errors.New("un coordinateur a au moins un territoire")
	}
	if role == RoleAdmin && len(out) > 0 {
		return nil, errors.New("un administrateur voit tous les territoires : ne lui en donnez aucun")
	}
	return out, nil
}

// Store keeps accounts, sessions and the audit log. The hub's SQLite
// store implements it; implementations are safe for concurrent use.
type Store interface {
	// CreateUser records u (ID and Created are set by the store) and
	// returns it; an e-mail already taken gives ErrEmailTaken.
	CreateUser(ctx context.Context, u User) (User, error)
	// UserByEmail returns the user with this (normalized) e-mail, or
	// ErrNoUser.
	UserByEmail(ctx context.Context, email string) (User, error)
	// UserByID returns the user with id, or ErrNoUser.
	UserByID(ctx context.Context, id int64) (User, error)
	// Users lists every user by e-mail.
	Users(ctx context.Context) ([]User, error)
	// SetUserDisabled disables (at != zero) or re-enables a user; a
	// disabled user's sessions are deleted.
	SetUserDisabled(ctx context.Context, id int64, at time.Time) error
	// SetUserPassword replaces a user's password hash (an admin's reset)
	// and deletes their sessions: whoever held the old password is out.
	// An unknown id gives ErrNoUser.
	SetUserPassword(ctx context.Context, id int64, hash string) error
	// SetUserTerritories replaces the territories a user may see (checked
	// by the caller with CheckTerritories); they apply from the user's
	// next request. An unknown id gives ErrNoUser.
	SetUserTerritories(ctx context.Context, id int64, territories []string) error

	// CreateSession records a session.
	CreateSession(ctx context.Context, s Session) error
	// Session returns the session whose token hash is given, or
	// ErrNoSession.
	Session(ctx context.Context, hash TokenHash) (Session, error)
	// TouchSession records activity on a session.
	TouchSession(ctx context.Context, hash TokenHash, at time.Time) error
	// DeleteSession ends a session (logout, expiry).
	DeleteSession(ctx context.Context, hash TokenHash) error
	// DeleteExpiredSessions removes sessions expired at now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	// CreateAPIToken records a bearer token for the read-only API.
	CreateAPIToken(ctx context.Context, t APIToken) error
	// APIToken returns the token whose hash is given, or ErrNoSession.
	APIToken(ctx context.Context, hash TokenHash) (APIToken, error)

	// Audit appends to the audit log.
	Audit(ctx context.Context, e AuditEntry) error
	// AuditLog returns the most recent entries first, at most limit.
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
}
