package sqlite

import (
	"testing"

	"numeribus/hub/accounts"
	"numeribus/hub/accounts/accountstest"
)

// The accounts store is checked by the suite every backend runs, so
// that the dashboard behaves the same on SQLite and PostgreSQL.
func TestAccountsConformance(t *testing.T) {
	accountstest.Run(t, func(t *testing.T) accounts.Store {
		s, _ := openTemp(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}
