package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"numeribus/internal/apperr"
)

// Session lifetimes: a session ends after IdleTimeout without a request
// or AbsoluteTimeout after login, whichever comes first, so that a
// laptop left open in a meeting room does not stay logged in for days.
const (
	IdleTimeout     = 8 * time.Hour
	AbsoluteTimeout = 24 * time.Hour
)

// TokenHash is the SHA-256 of a session or API token: the store keeps
// only this, so that a copy of the database gives no usable session.
type TokenHash [32]byte

// HashToken returns the hash the store keys a token on.
func HashToken(token string) TokenHash { return sha256.Sum256([]byte(token)) }

// NewToken returns a fresh random token (256 bits, URL-safe text).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ErrNoSession is returned for an unknown or expired session or token.
var ErrNoSession = apperr.New(apperr.Auth, "unknown or expired session")

// Session is one logged-in browser. The cookie holds the token; the
// store, its hash.
type Session struct {
	Hash     TokenHash
	UserID   int64
	Created  time.Time
	LastSeen time.Time
}

// Expired reports whether the session is over at now.
func (s *Session) Expired(now time.Time) bool {
	return now.Sub(s.LastSeen) >= IdleTimeout || now.Sub(s.Created) >= AbsoluteTimeout
}

// ExpiresAt is when the session ends if no request comes.
func (s *Session) ExpiresAt() time.Time {
	idle, abs := s.LastSeen.Add(IdleTimeout), s.Created.Add(AbsoluteTimeout)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

// APIToken lets a script read the dashboard's JSON API with
// "Authorization: Bearer TOKEN", with the rights of its user.
type APIToken struct {
	Hash    TokenHash
	UserID  int64
	Name    string // what it is for ("tableau de bord CD54")
	Created time.Time
	Expires time.Time // zero: no expiry
	Revoked time.Time // zero: valid
}

// Valid reports whether the token may be used at now.
func (t *APIToken) Valid(now time.Time) bool {
	return t.Revoked.IsZero() && (t.Expires.IsZero() || now.Before(t.Expires))
}
