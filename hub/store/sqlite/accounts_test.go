package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"numeribus/hub/accounts"
)

func TestAccountsUsersSessionsAudit(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, accounts.User{Email: " Coord@CD54.fr ", Role: accounts.RoleCoordinator,
		Territories: []string{"54", "88"}, PasswordHash: "$argon2id$x", Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Email != "coord@cd54.fr" {
		t.Fatalf("created %+v", u)
	}
	if _, err := s.CreateUser(ctx, accounts.User{Email: "COORD@cd54.fr", Role: accounts.RoleViewer, PasswordHash: "h"}); !errors.Is(err, accounts.ErrEmailTaken) {
		t.Fatalf("duplicate e-mail: %v", err)
	}
	got, err := s.UserByEmail(ctx, "coord@CD54.FR")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.Role != accounts.RoleCoordinator || len(got.Territories) != 2 || got.Territories[1] != "88" || !got.Created.Equal(t0) {
		t.Fatalf("read back %+v", got)
	}
	if _, err := s.UserByEmail(ctx, "nobody@x.fr"); !errors.Is(err, accounts.ErrNoUser) {
		t.Fatalf("unknown user: %v", err)
	}

	tok, _ := accounts.NewToken()
	h := accounts.HashToken(tok)
	if err := s.CreateSession(ctx, accounts.Session{Hash: h, UserID: u.ID, Created: t0, LastSeen: t0}); err != nil {
		t.Fatal(err)
	}
	se, err := s.Session(ctx, h)
	if err != nil || se.UserID != u.ID {
		t.Fatalf("session %+v %v", se, err)
	}
	if err := s.TouchSession(ctx, h, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpiredSessions(ctx, t0.Add(accounts.IdleTimeout)); err != nil || n != 0 {
		t.Fatalf("touched session removed: %d %v", n, err)
	}
	if n, err := s.DeleteExpiredSessions(ctx, t0.Add(time.Hour+accounts.IdleTimeout)); err != nil || n != 1 {
		t.Fatalf("idle session kept: %d %v", n, err)
	}
	if _, err := s.Session(ctx, h); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("expired session: %v", err)
	}
	// Disabling ends the user's sessions.
	s.CreateSession(ctx, accounts.Session{Hash: h, UserID: u.ID, Created: t0, LastSeen: t0})
	if err := s.SetUserDisabled(ctx, u.ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, h); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("session of a disabled user: %v", err)
	}

	for _, a := range []accounts.Action{accounts.ActionLoginFailed, accounts.ActionLogin} {
		if err := s.Audit(ctx, accounts.AuditEntry{At: t0, UserID: u.ID, Email: u.Email, Action: a, IP: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := s.AuditLog(ctx, 10)
	if err != nil || len(log) != 2 || log[0].Action != accounts.ActionLogin || log[1].IP != "192.0.2.1" {
		t.Fatalf("audit log %+v %v", log, err)
	}
}
