package postgres

import (
	"context"
	"testing"

	"numeribus/hub/releases"
	"numeribus/hub/releases/releasestest"
	"numeribus/internal/pgtest"
)

func TestReleasesConformance(t *testing.T) {
	releasestest.Run(t, func(t *testing.T) releases.Store {
		s, err := Open(context.Background(), pgtest.NewDB(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
