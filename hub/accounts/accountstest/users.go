package accountstest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"numeribus/hub/accounts"
)

// CreateUser sets ID and Created, normalizes the e-mail, and keeps every
// field as given; a user read back by ID is the one returned.
func testCreateUser(t *testing.T, e *env) {
	before := time.Now().Truncate(time.Millisecond)
	u, err := e.s.CreateUser(e.ctx, accounts.User{Email: " Coord@CD54.fr ", Role: accounts.RoleCoordinator,
		Territories: []string{"54", "88"}, PasswordHash: "$argon2id$x"})
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Email != "coord@cd54.fr" {
		t.Fatalf("created %+v: want an ID and the e-mail normalized", u)
	}
	if u.Created.Before(before) || u.Created.After(after) {
		t.Fatalf("Created %v: want the time of creation (%v to %v)", u.Created, before, after)
	}
	got, err := e.s.UserByID(e.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameUser(got, u); err != nil {
		t.Fatalf("read back: %v", err)
	}

	// A given Created is kept (to the millisecond), and so is Disabled;
	// a second user gets another ID.
	v, err := e.s.CreateUser(e.ctx, accounts.User{Email: "viewer@cd54.fr", Role: accounts.RoleViewer,
		PasswordHash: "h", Created: t0, Disabled: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if v.ID == u.ID || !v.Created.Equal(ms(t0)) {
		t.Fatalf("second user %+v (first ID %d): want another ID, Created %v", v, u.ID, ms(t0))
	}
	got, err = e.s.UserByID(e.ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := v
	want.Disabled = ms(t0.Add(time.Hour))
	if err := sameUser(got, want); err != nil || got.Active() {
		t.Fatalf("disabled user read back: %v (active %v)", err, got.Active())
	}
}

// sameUser compares users field by field; times to the instant, and no
// territories the same as an empty list.
func sameUser(got, want accounts.User) error {
	switch {
	case got.ID != want.ID, got.Email != want.Email, got.Role != want.Role, got.PasswordHash != want.PasswordHash:
		return fmt.Errorf("got %+v, want %+v", got, want)
	case !slices.Equal(got.Territories, want.Territories) && len(got.Territories)+len(want.Territories) > 0:
		return fmt.Errorf("territories %q, want %q", got.Territories, want.Territories)
	case !got.Created.Equal(want.Created):
		return fmt.Errorf("created %v, want %v", got.Created, want.Created)
	case !got.Disabled.Equal(want.Disabled):
		return fmt.Errorf("disabled %v, want %v", got.Disabled, want.Disabled)
	}
	return nil
}

// A user the store cannot key or log in is refused, and not recorded.
func testCreateUserInvalid(t *testing.T, e *env) {
	for _, tc := range []struct {
		name string
		u    accounts.User
	}{
		{"not an e-mail", accounts.User{Email: "coordinateur", Role: accounts.RoleViewer, PasswordHash: "h"}},
		{"no e-mail", accounts.User{Role: accounts.RoleViewer, PasswordHash: "h"}},
		{"unknown role", accounts.User{Email: "a@cd54.fr", Role: "root", PasswordHash: "h"}},
		{"no password hash", accounts.User{Email: "a@cd54.fr", Role: accounts.RoleViewer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.s.CreateUser(e.ctx, tc.u); err == nil || errors.Is(err, accounts.ErrEmailTaken) {
				t.Fatalf("CreateUser(%+v): %v, want a validation error", tc.u, err)
			}
		})
	}
	if us, err := e.s.Users(e.ctx); err != nil || len(us) != 0 {
		t.Fatalf("after refusals: users %+v, %v", us, err)
	}
}

// An e-mail is taken whatever its case or surrounding spaces.
func testEmailTaken(t *testing.T, e *env) {
	first := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	for _, email := range []string{"coord@cd54.fr", "COORD@cd54.fr", "Coord@CD54.FR", "  coord@cd54.fr\t"} {
		t.Run(email, func(t *testing.T) {
			_, err := e.s.CreateUser(e.ctx, accounts.User{Email: email, Role: accounts.RoleViewer, PasswordHash: "h"})
			if !errors.Is(err, accounts.ErrEmailTaken) {
				t.Fatalf("CreateUser(%q): %v, want ErrEmailTaken", email, err)
			}
		})
	}
	us, err := e.s.Users(e.ctx)
	if err != nil || len(us) != 1 || us[0].ID != first.ID || us[0].Role != accounts.RoleCoordinator {
		t.Fatalf("after duplicates: users %+v, %v; want the first one only", us, err)
	}
}

// Two hub instances (or two admins) creating one e-mail at once: one
// wins, the others get ErrEmailTaken, not a raw constraint error.
func testEmailTakenConcurrently(t *testing.T, e *env) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := "Race@CD54.fr"
			if i%2 == 0 {
				email = "race@cd54.fr"
			}
			_, errs[i] = e.s.CreateUser(e.ctx, accounts.User{Email: email, Role: accounts.RoleViewer, PasswordHash: "h"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, accounts.ErrEmailTaken):
			t.Errorf("concurrent CreateUser: %v, want nil or ErrEmailTaken", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creations succeeded, want 1", won)
	}
}

// UserByEmail finds a user whatever the case or spaces of the address
// typed (the login form and `hub user disable --email` pass it as typed).
func testUserByEmail(t *testing.T, e *env) {
	u := e.user("Coord@CD54.fr", accounts.RoleCoordinator, "54", "88")
	e.user("other@cd54.fr", accounts.RoleViewer)
	for _, tc := range []struct {
		email string
		want  error
	}{
		{"coord@cd54.fr", nil},
		{"COORD@CD54.FR", nil},
		{"coord@CD54.fr", nil},
		{" coord@cd54.fr ", nil},
		{"nobody@cd54.fr", accounts.ErrNoUser},
		{"coord@cd54", accounts.ErrNoUser},
		{"", accounts.ErrNoUser},
	} {
		t.Run(tc.email, func(t *testing.T) {
			got, err := e.s.UserByEmail(e.ctx, tc.email)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("UserByEmail(%q): %+v, %v; want %v", tc.email, got, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("UserByEmail(%q): %v", tc.email, err)
			}
			if err := sameUser(got, u); err != nil {
				t.Fatalf("UserByEmail(%q): %v", tc.email, err)
			}
		})
	}
}

func testUserByIDUnknown(t *testing.T, e *env) {
	u := e.user("a@cd54.fr", accounts.RoleAdmin)
	for _, id := range []int64{0, -1, u.ID + 1000} {
		if got, err := e.s.UserByID(e.ctx, id); !errors.Is(err, accounts.ErrNoUser) {
			t.Errorf("UserByID(%d): %+v, %v; want ErrNoUser", id, got, err)
		}
	}
}

// Users lists every user by e-mail, whatever the order of creation, in
// byte order as SQLite does (a locale's collation would put "ab" before
// "a.z").
func testUsersOrder(t *testing.T, e *env) {
	if us, err := e.s.Users(e.ctx); err != nil || len(us) != 0 {
		t.Fatalf("empty store: users %+v, %v", us, err)
	}
	for _, email := range []string{"claire@cd54.fr", "Alice@cd54.fr", "bruno@cd88.fr", "ab@cd54.fr", "a.z@cd54.fr"} {
		e.user(email, accounts.RoleViewer)
	}
	us, err := e.s.Users(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range us {
		got = append(got, u.Email)
	}
	if want := []string{"a.z@cd54.fr", "ab@cd54.fr", "alice@cd54.fr", "bruno@cd88.fr", "claire@cd54.fr"}; !slices.Equal(got, want) {
		t.Fatalf("Users: %q, want %q", got, want)
	}
}

// Disabling a user records when and ends their sessions (only theirs);
// re-enabling clears it.
func testSetUserDisabled(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	other := e.user("other@cd54.fr", accounts.RoleViewer)
	mine := []accounts.TokenHash{e.session(u.ID, t0, t0), e.session(u.ID, t0, t0)}
	theirs := e.session(other.ID, t0, t0)

	at := t0.Add(time.Hour)
	if err := e.s.SetUserDisabled(e.ctx, u.ID, at); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.UserByID(e.ctx, u.ID)
	if err != nil || got.Active() || !got.Disabled.Equal(ms(at)) {
		t.Fatalf("disabled user: %+v, %v; want Disabled %v", got, err, ms(at))
	}
	for _, h := range mine {
		if _, err := e.s.Session(e.ctx, h); !errors.Is(err, accounts.ErrNoSession) {
			t.Fatalf("session of a disabled user: %v, want ErrNoSession", err)
		}
	}
	if _, err := e.s.Session(e.ctx, theirs); err != nil {
		t.Fatalf("another user's session: %v", err)
	}

	if err := e.s.SetUserDisabled(e.ctx, u.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.s.UserByID(e.ctx, u.ID); err != nil || !got.Active() || !got.Disabled.IsZero() {
		t.Fatalf("re-enabled user: %+v, %v", got, err)
	}
}

func testSetUserDisabledUnknown(t *testing.T, e *env) {
	u := e.user("a@cd54.fr", accounts.RoleAdmin)
	for _, at := range []time.Time{t0, {}} {
		if err := e.s.SetUserDisabled(e.ctx, u.ID+1000, at); !errors.Is(err, accounts.ErrNoUser) {
			t.Errorf("SetUserDisabled(unknown, %v): %v, want ErrNoUser", at, err)
		}
	}
}

// A password reset replaces the hash and ends the user's sessions (only
// theirs); the rest of the account is untouched. An unknown user gives
// ErrNoUser, and nothing changes.
func testSetUserPassword(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	other := e.user("other@cd54.fr", accounts.RoleViewer)
	mine := e.session(u.ID, t0, t0)
	theirs := e.session(other.ID, t0, t0)
	const hash = "$argon2id$v=19$m=64,t=1,p=1$bm91dmVhdQ$bm91dmVsbGU"
	if err := e.s.SetUserPassword(e.ctx, u.ID, hash); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.UserByID(e.ctx, u.ID)
	want := u
	want.PasswordHash = hash
	if err != nil {
		t.Fatal(err)
	}
	if err := sameUser(got, want); err != nil {
		t.Fatalf("after a reset: %v", err)
	}
	if _, err := e.s.Session(e.ctx, mine); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("session after a password reset: %v, want ErrNoSession", err)
	}
	if _, err := e.s.Session(e.ctx, theirs); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
	if err := e.s.SetUserPassword(e.ctx, u.ID+1000, hash); !errors.Is(err, accounts.ErrNoUser) {
		t.Fatalf("SetUserPassword(unknown): %v, want ErrNoUser", err)
	}
	if err := e.s.SetUserPassword(e.ctx, other.ID, ""); err == nil {
		t.Fatal("an empty hash accepted")
	}
	if got, _ := e.s.UserByID(e.ctx, other.ID); got.PasswordHash != other.PasswordHash {
		t.Fatalf("refused reset changed the hash: %q", got.PasswordHash)
	}
}

// Territories are replaced as given (none: an empty list); sessions stay
// (they read the user afresh on every request).
func testSetUserTerritories(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	h := e.session(u.ID, t0, t0)
	for _, terr := range [][]string{{"54", "88"}, {"245400676"}, nil} {
		if err := e.s.SetUserTerritories(e.ctx, u.ID, terr); err != nil {
			t.Fatal(err)
		}
		got, err := e.s.UserByID(e.ctx, u.ID)
		want := u
		want.Territories = terr
		if err != nil {
			t.Fatal(err)
		}
		if err := sameUser(got, want); err != nil {
			t.Fatalf("territories %q: %v", terr, err)
		}
	}
	if _, err := e.s.Session(e.ctx, h); err != nil {
		t.Fatalf("session after a change of territories: %v", err)
	}
	if err := e.s.SetUserTerritories(e.ctx, u.ID+1000, []string{"54"}); !errors.Is(err, accounts.ErrNoUser) {
		t.Fatalf("SetUserTerritories(unknown): %v, want ErrNoUser", err)
	}
}
