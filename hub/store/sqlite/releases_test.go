package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"numeribus/hub/releases"
	"numeribus/hub/releases/releasestest"
)

func TestReleasesConformance(t *testing.T) {
	releasestest.Run(t, func(t *testing.T) releases.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
