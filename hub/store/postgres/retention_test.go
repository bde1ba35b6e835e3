package postgres

import (
	"context"
	"testing"

	"numeribus/hub/retain/retaintest"
	"numeribus/internal/pgtest"
)

// The conformance suite of retention and access, on PostgreSQL.
func TestRetainConformance(t *testing.T) {
	retaintest.Run(t, func(t *testing.T) retaintest.Backend {
		s, err := Open(context.Background(), pgtest.NewDB(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
