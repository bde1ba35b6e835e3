// Package accountstest is the conformance suite of accounts.Store: every
// backend of the hub (SQLite, PostgreSQL) runs it from its own tests, so
// that the dashboard and the CLI get the same accounts, sessions, API
// tokens and audit log whichever database the hub runs on.
//
//	func TestAccountsConformance(t *testing.T) {
//		accountstest.Run(t, func(t *testing.T) accounts.Store { return openTemp(t) })
//	}
//
// The suite checks what the interface documents and what the dashboard
// relies on beyond it (e-mails found whatever their case, times kept to
// the millisecond, sessions removed exactly when accounts.Session.Expired
// says so), not how a backend stores it.
package accountstest

import (
	"context"
	"testing"
	"time"

	"numeribus/hub/accounts"
)

// Run runs the suite. open must return a new, empty store, and close it
// when the test ends (t.Cleanup): accounts.Store has no Close.
func Run(t *testing.T, open func(t *testing.T) accounts.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"CreateUser", testCreateUser},
		{"CreateUserRefusesInvalid", testCreateUserInvalid},
		{"EmailTaken", testEmailTaken},
		{"EmailTakenConcurrently", testEmailTakenConcurrently},
		{"UserByEmail", testUserByEmail},
		{"UserByIDUnknown", testUserByIDUnknown},
		{"UsersByEmail", testUsersOrder},
		{"SetUserDisabled", testSetUserDisabled},
		{"SetUserDisabledUnknown", testSetUserDisabledUnknown},
		{"SetUserPassword", testSetUserPassword},
		{"SetUserTerritories", testSetUserTerritories},
		{"Session", testSession},
		{"TouchSession", testTouchSession},
		{"DeleteSession", testDeleteSession},
		{"DeleteExpiredSessions", testDeleteExpiredSessions},
		{"APIToken", testAPIToken},
		{"Audit", testAudit},
		{"AuditLogOrderAndLimit", testAuditLogOrder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, &env{t: t, s: open(t), ctx: context.Background()})
		})
	}
}

// t0 has sub-millisecond digits on purpose: stores keep milliseconds,
// and the suite checks they drop the rest rather than round or fail.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC)

// ms is t as a store gives it back: to the millisecond.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

type env struct {
	t   *testing.T
	s   accounts.Store
	ctx context.Context
}

// user creates a user with a placeholder hash, failing the test on error.
func (e *env) user(email string, role accounts.Role, territories ...string) accounts.User {
	e.t.Helper()
	u, err := e.s.CreateUser(e.ctx, accounts.User{Email: email, Role: role, Territories: territories,
		PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", Created: t0})
	if err != nil {
		e.t.Fatalf("creating %s: %v", email, err)
	}
	return u
}

// token returns the hash of a fresh random token.
func (e *env) token() accounts.TokenHash {
	e.t.Helper()
	tok, err := accounts.NewToken()
	if err != nil {
		e.t.Fatal(err)
	}
	return accounts.HashToken(tok)
}

// session records a session of user, failing the test on error.
func (e *env) session(user int64, created, seen time.Time) accounts.TokenHash {
	e.t.Helper()
	h := e.token()
	if err := e.s.CreateSession(e.ctx, accounts.Session{Hash: h, UserID: user, Created: created, LastSeen: seen}); err != nil {
		e.t.Fatalf("creating session: %v", err)
	}
	return h
}
