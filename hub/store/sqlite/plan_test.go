package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"numeribus/hub/plan/plantest"
)

// The conformance suite of planning stores, on SQLite; a restart is a
// new Open of the same file.
func TestPlanConformance(t *testing.T) {
	plantest.Run(t, func(t *testing.T) (plantest.Store, plantest.Reopen) {
		p := filepath.Join(t.TempDir(), "hub.db")
		reopen := func(t *testing.T) plantest.Store {
			s, err := Open(context.Background(), p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return reopen(t), reopen
	})
}
