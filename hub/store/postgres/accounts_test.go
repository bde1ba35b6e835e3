package postgres

import (
	"testing"

	"numeribus/hub/accounts"
	"numeribus/hub/accounts/accountstest"
)

// The accounts store passes the suite SQLite passes: the dashboard and
// the CLI see the same accounts on either backend.
func TestAccountsConformance(t *testing.T) {
	accountstest.Run(t, func(t *testing.T) accounts.Store {
		s, _ := open(t)
		return s
	})
}
