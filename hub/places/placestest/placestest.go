// Package placestest is the conformance suite of the stores that keep the
// imported list of mediation places (places.Store): hub/store/sqlite and
// hub/store/postgres run it from their tests.
package placestest

import (
	"context"
	"slices"
	"testing"
	"time"

	"numeribus/hub/places"
)

// Open returns a new, empty store; the caller closes it at the test's end.
type Open func(t *testing.T) places.Store

// T0 is the suite's "now".
var T0 = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

// Run runs the suite, each test on a new store.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, places.Store)
	}{
		{"Empty", testEmpty},
		{"ReplaceKeepsWhatWasImported", testReplace},
		{"AFailedImportChangesNothing", testFailedImport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

func testEmpty(t *testing.T, s places.Store) {
	ctx := context.Background()
	ps, err := s.Places(ctx)
	if err != nil || len(ps) != 0 {
		t.Fatalf("places of a new store: %v, %v", ps, err)
	}
	if _, ok, err := s.LastImport(ctx); ok || err != nil {
		t.Fatalf("last import of a new store: %v, %v", ok, err)
	}
}

var list1 = []places.Place{
	{Ref: "dora:b", Nom: "France services de Lunéville", Commune: "54329", Lat: 48.58942, Lon: 6.49632, HasCoords: true},
	{Ref: "dora:a", Nom: "Médiathèque « L'Arsenal »", Commune: "54431", Lat: -21.1, Lon: 55.5, HasCoords: true},
	{Ref: "mediation-numerique:toul-epn-1", Nom: "Espace numérique de Toul", Commune: "54528"},
}

func testReplace(t *testing.T, s places.Store) {
	ctx := context.Background()
	imp := places.Import{At: T0, Email: "coord54@cd54.fr", File: "structures.csv", Format: places.DataInclusionCSV, Places: 3, Skipped: 1}
	if err := s.ReplacePlaces(ctx, imp, list1); err != nil {
		t.Fatal(err)
	}
	got, err := s.Places(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(list1)
	slices.SortFunc(want, func(a, b places.Place) int {
		if a.Ref < b.Ref {
			return -1
		}
		return 1
	})
	if !slices.Equal(got, want) {
		t.Fatalf("places:\n got %+v\nwant %+v", got, want)
	}
	last, ok, err := s.LastImport(ctx)
	if err != nil || !ok || last != imp {
		t.Fatalf("last import %+v, %v, %v; want %+v", last, ok, err, imp)
	}
	// A second import replaces the list whole: the closed places go.
	imp2 := places.Import{At: T0.Add(time.Hour), Email: "admin@hub.fr", File: "lieux.csv", Format: places.LieuxCSV, Places: 1}
	list2 := []places.Place{{Ref: "lieu-88-0001", Nom: "Espace France services de Remiremont", Commune: "88383"}}
	if err := s.ReplacePlaces(ctx, imp2, list2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Places(ctx); !slices.Equal(got, list2) {
		t.Fatalf("after the second import: %+v", got)
	}
	if last, _, _ := s.LastImport(ctx); last != imp2 {
		t.Fatalf("last import %+v, want %+v", last, imp2)
	}
}

// An import that fails half-way (a place twice in the list the store is
// given) leaves the previous list and its import in place.
func testFailedImport(t *testing.T, s places.Store) {
	ctx := context.Background()
	imp := places.Import{At: T0, Email: "coord54@cd54.fr", File: "structures.csv", Format: places.DataInclusionCSV, Places: 3}
	if err := s.ReplacePlaces(ctx, imp, list1); err != nil {
		t.Fatal(err)
	}
	before, err := s.Places(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := append(slices.Clone(list1[:1]), places.Place{Ref: "x", Nom: "X", Commune: "54395"}, places.Place{Ref: "x", Nom: "X bis", Commune: "54395"})
	if err := s.ReplacePlaces(ctx, places.Import{At: T0.Add(time.Hour), Email: "admin@hub.fr", File: "double.csv", Format: places.LieuxCSV, Places: 4}, bad); err == nil {
		t.Fatal("a list with a place twice was stored")
	}
	if got, _ := s.Places(ctx); !slices.Equal(got, before) {
		t.Fatalf("after a failed import: %+v, want the list of before %+v", got, before)
	}
	if last, _, _ := s.LastImport(ctx); last != imp {
		t.Fatalf("after a failed import, last import %+v", last)
	}
}
