package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"numeribus/hub/places"
	"numeribus/hub/places/placestest"
)

func TestPlacesConformance(t *testing.T) {
	placestest.Run(t, func(t *testing.T) places.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
