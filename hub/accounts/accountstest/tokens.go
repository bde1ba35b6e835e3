package accountstest

import (
	"errors"
	"testing"
	"time"

	"numeribus/hub/accounts"
)

// An API token reads back as recorded: the dashboard decides its
// validity from Expires and Revoked, so a lost or shifted time would
// let a revoked script in, or lock a valid one out.
func testAPIToken(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	for _, tc := range []struct {
		name             string
		expires, revoked time.Time
		validAt0         bool
	}{
		{"no expiry", time.Time{}, time.Time{}, true},
		{"expires later", t0.Add(90 * 24 * time.Hour), time.Time{}, true},
		{"expired", t0.Add(-time.Hour), time.Time{}, false},
		{"revoked", t0.Add(90 * 24 * time.Hour), t0.Add(-time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := accounts.APIToken{Hash: e.token(), UserID: u.ID, Name: "tableau de bord CD54 (" + tc.name + ")",
				Created: t0.Add(-24 * time.Hour), Expires: tc.expires, Revoked: tc.revoked}
			if err := e.s.CreateAPIToken(e.ctx, want); err != nil {
				t.Fatal(err)
			}
			got, err := e.s.APIToken(e.ctx, want.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if got.Hash != want.Hash || got.UserID != want.UserID || got.Name != want.Name ||
				!got.Created.Equal(ms(want.Created)) || !got.Expires.Equal(ms(want.Expires)) || !got.Revoked.Equal(ms(want.Revoked)) {
				t.Fatalf("token read back %+v, want %+v", got, want)
			}
			if got.Valid(t0) != tc.validAt0 {
				t.Fatalf("Valid(t0) = %v, want %v", got.Valid(t0), tc.validAt0)
			}
		})
	}
	if _, err := e.s.APIToken(e.ctx, e.token()); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("unknown token: %v, want ErrNoSession", err)
	}
}
