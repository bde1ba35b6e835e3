package accountstest

import (
	"errors"
	"testing"
	"time"

	"numeribus/hub/accounts"
)

// A session reads back as recorded, to the millisecond; an unknown
// hash gives ErrNoSession.
func testSession(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	seen := t0.Add(time.Minute)
	h := e.session(u.ID, t0, seen)
	got, err := e.s.Session(e.ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != h || got.UserID != u.ID || !got.Created.Equal(ms(t0)) || !got.LastSeen.Equal(ms(seen)) {
		t.Fatalf("session %+v: want user %d, created %v, last seen %v", got, u.ID, ms(t0), ms(seen))
	}
	if _, err := e.s.Session(e.ctx, e.token()); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("unknown session: %v, want ErrNoSession", err)
	}
}

// TouchSession moves LastSeen forward only: two requests of one browser
// racing must not shorten the session. Touching a session that is gone
// (logged out meanwhile) is not an error.
func testTouchSession(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	h := e.session(u.ID, t0, t0)
	for _, tc := range []struct {
		name     string
		at, want time.Time
	}{
		{"forward", t0.Add(time.Hour), t0.Add(time.Hour)},
		{"backward", t0.Add(time.Minute), t0.Add(time.Hour)},
		{"further", t0.Add(2 * time.Hour), t0.Add(2 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.s.TouchSession(e.ctx, h, tc.at); err != nil {
				t.Fatal(err)
			}
			got, err := e.s.Session(e.ctx, h)
			if err != nil || !got.LastSeen.Equal(ms(tc.want)) || !got.Created.Equal(ms(t0)) {
				t.Fatalf("after touch at %v: %+v, %v; want last seen %v", tc.at, got, err, ms(tc.want))
			}
		})
	}
	if err := e.s.TouchSession(e.ctx, e.token(), t0); err != nil {
		t.Fatalf("touching an unknown session: %v", err)
	}
}

// DeleteSession ends one session, and ending it twice is not an error
// (a double logout).
func testDeleteSession(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	h, kept := e.session(u.ID, t0, t0), e.session(u.ID, t0, t0)
	for range 2 {
		if err := e.s.DeleteSession(e.ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.s.Session(e.ctx, h); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("deleted session: %v, want ErrNoSession", err)
	}
	if _, err := e.s.Session(e.ctx, kept); err != nil {
		t.Fatalf("the user's other session: %v", err)
	}
}

// DeleteExpiredSessions removes exactly the sessions accounts.Session
// says are expired at now, limits included, and counts them.
func testDeleteExpiredSessions(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	now := t0.Add(accounts.AbsoluteTimeout + time.Hour)
	sessions := []struct {
		name          string
		created, seen time.Time
	}{
		{"fresh", now.Add(-time.Minute), now.Add(-time.Minute)},
		{"idle just under the limit", now.Add(-accounts.IdleTimeout - time.Hour), now.Add(-accounts.IdleTimeout + time.Millisecond)},
		{"idle at the limit", now.Add(-accounts.IdleTimeout - time.Hour), now.Add(-accounts.IdleTimeout)},
		{"idle long ago", now.Add(-accounts.AbsoluteTimeout + time.Hour), now.Add(-accounts.IdleTimeout - time.Hour)},
		{"active, old just under the limit", now.Add(-accounts.AbsoluteTimeout + time.Millisecond), now.Add(-time.Minute)},
		{"active, old at the limit", now.Add(-accounts.AbsoluteTimeout), now.Add(-time.Minute)},
		{"active, older", now.Add(-accounts.AbsoluteTimeout - time.Hour), now.Add(-time.Minute)},
	}
	hashes := make([]accounts.TokenHash, len(sessions))
	wantGone := 0
	for i, s := range sessions {
		// Whole milliseconds, so that the store and Expired see one time.
		hashes[i] = e.session(u.ID, ms(s.created), ms(s.seen))
		if se := (accounts.Session{Created: ms(s.created), LastSeen: ms(s.seen)}); se.Expired(ms(now)) {
			wantGone++
		}
	}
	n, err := e.s.DeleteExpiredSessions(e.ctx, ms(now))
	if err != nil || n != wantGone {
		t.Fatalf("DeleteExpiredSessions: %d, %v; want %d", n, err, wantGone)
	}
	for i, s := range sessions {
		se := accounts.Session{Created: ms(s.created), LastSeen: ms(s.seen)}
		_, err := e.s.Session(e.ctx, hashes[i])
		switch {
		case se.Expired(ms(now)) && !errors.Is(err, accounts.ErrNoSession):
			t.Errorf("%s: expired session kept (%v)", s.name, err)
		case !se.Expired(ms(now)) && err != nil:
			t.Errorf("%s: live session: %v", s.name, err)
		}
	}
	if n, err := e.s.DeleteExpiredSessions(e.ctx, ms(now)); err != nil || n != 0 {
		t.Fatalf("second pass: %d, %v; want 0", n, err)
	}
}
