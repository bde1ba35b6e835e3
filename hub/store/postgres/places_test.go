package postgres

import (
	"context"
	"testing"

	"numeribus/hub/places"
	"numeribus/hub/places/placestest"
	"numeribus/internal/pgtest"
)

func TestPlacesConformance(t *testing.T) {
	placestest.Run(t, func(t *testing.T) places.Store {
		s, err := Open(context.Background(), pgtest.NewDB(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
