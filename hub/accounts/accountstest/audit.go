package accountstest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"numeribus/hub/accounts"
)

// An audit entry reads back as written, with an ID; a failed login has
// no user (UserID 0) and the e-mail as typed; an entry without a time is
// stamped with the time of writing.
func testAudit(t *testing.T, e *env) {
	u := e.user("coord@cd54.fr", accounts.RoleCoordinator, "54")
	entries := []accounts.AuditEntry{
		{At: t0, UserID: u.ID, Email: u.Email, Action: accounts.ActionLogin, IP: "192.0.2.1"},
		{At: t0.Add(time.Second), Email: "Inconnu@CD54.fr", Action: accounts.ActionLoginFailed, IP: "2001:db8::1"},
		{At: t0.Add(2 * time.Second), UserID: u.ID, Email: u.Email, Action: accounts.ActionExport, What: "activites-2026-03.csv dep:54", IP: "192.0.2.1"},
	}
	for _, en := range entries {
		if err := e.s.Audit(e.ctx, en); err != nil {
			t.Fatal(err)
		}
	}
	log, err := e.s.AuditLog(e.ctx, 10)
	if err != nil || len(log) != len(entries) {
		t.Fatalf("audit log %+v, %v; want %d entries", log, err, len(entries))
	}
	for i, want := range entries {
		got := log[len(log)-1-i]
		if err := sameEntry(got, want); err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}

	before := time.Now().Truncate(time.Millisecond)
	if err := e.s.Audit(e.ctx, accounts.AuditEntry{UserID: u.ID, Email: u.Email, Action: accounts.ActionLogout}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	log, err = e.s.AuditLog(e.ctx, 1)
	if err != nil || len(log) != 1 || log[0].Action != accounts.ActionLogout || log[0].At.Before(before) || log[0].At.After(after) {
		t.Fatalf("entry without a time: %+v, %v; want one stamped %v to %v", log, err, before, after)
	}
}

func sameEntry(got, want accounts.AuditEntry) error {
	if got.ID == 0 || !got.At.Equal(ms(want.At)) || got.UserID != want.UserID || got.Email != want.Email ||
		got.Action != want.Action || got.What != want.What || got.IP != want.IP {
		return fmt.Errorf("got %+v, want %+v with an ID", got, want)
	}
	return nil
}

// AuditLog gives the latest entries first, at most limit, even when
// they share a time (a burst of requests in one millisecond).
func testAuditLogOrder(t *testing.T, e *env) {
	const n = 5
	for i := 1; i <= n; i++ {
		if err := e.s.Audit(e.ctx, accounts.AuditEntry{At: t0, Email: "a@cd54.fr", Action: accounts.ActionPersonalRead, What: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		limit int
		want  string
	}{
		{3, "543"},
		{1, "5"},
		{n, "54321"},
		{100, "54321"},
	} {
		log, err := e.s.AuditLog(e.ctx, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for i, en := range log {
			got += en.What
			if i > 0 && en.ID >= log[i-1].ID {
				t.Errorf("limit %d: IDs not decreasing: %d after %d", tc.limit, en.ID, log[i-1].ID)
			}
		}
		if got != tc.want {
			t.Errorf("AuditLog(%d): %q, want %q", tc.limit, got, tc.want)
		}
	}
}
