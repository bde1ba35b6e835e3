package postgres

import (
	"context"
	"testing"

	"numeribus/hub/dashboard"
	"numeribus/hub/plan/plantest"
	"numeribus/internal/pgtest"
)

var _ dashboard.Planner = (*Store)(nil)

// The conformance suite of planning stores, on PostgreSQL; a restart is a
// new Open of the same database.
func TestPlanConformance(t *testing.T) {
	plantest.Run(t, func(t *testing.T) (plantest.Store, plantest.Reopen) {
		url := pgtest.NewDB(t)
		reopen := func(t *testing.T) plantest.Store {
			s, err := Open(context.Background(), url, Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return reopen(t), reopen
	})
}
