package report

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"numeribus/internal/territoire/contours"
)

// visitsSource is a Source whose only facts are visits per commune.
type visitsSource struct {
	memSource
	visits []Visit
}

func (v *visitsSource) Visits(_ context.Context, q Query) ([]Visit, error) { return v.visits, nil }

func centroidOf(code string) (float64, float64, bool) {
	o, ok := contours.Default().Outline(code)
	return o.Lat, o.Lon, ok
}

var mapNow = Options{Now: func() time.Time { return time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC) }}

func mustTerritory(t *testing.T, s string) Territory {
	t.Helper()
	x, err := ParseTerritory(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// The Métropole du Grand Nancy (20 real communes and populations): three
// visited, the rate per 1,000 inhabitants, the classes of the legend,
// and the other seventeen ranked by population.
func TestMapRatesClassesAndNeverVisited(t *testing.T) {
	src := &visitsSource{visits: []Visit{
		{Commune: "54395", Activities: 150, Accompagnements: 207, Stops: 12}, // Nancy, 103 671 inhabitants
		{Commune: "54547", Activities: 20, Accompagnements: 30, Stops: 2},    // Vandœuvre-lès-Nancy, 29 942
		{Commune: "54304", Activities: 15, Accompagnements: 15},              // Laxou, 14 771
	}}
	f := Filter{Territory: mustTerritory(t, "epci:245400676")}
	m, err := ComputeMap(context.Background(), src, f, Scope{}, mapNow, MapInput{Planned: map[string]int{"54578": 2}, Centroid: centroidOf})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Communes) != 20 || m.Visitees != 3 {
		t.Fatalf("%d communes, %d visited; want 20 and 3", len(m.Communes), m.Visitees)
	}
	by := map[string]MapCommune{}
	for _, c := range m.Communes {
		by[c.Code] = c
	}
	tests := []struct {
		code   string
		taux   float64
		classe int
		prevus int
	}{
		{"54395", 207 * 1000.0 / 103671, 3, 0}, // 1,997 ‰
		{"54547", 30 * 1000.0 / 29942, 1, 0},   // 1,002
		{"54304", 15 * 1000.0 / 14771, 2, 0},   // 1,016
		{"54578", 0, 0, 2},                     // Villers-lès-Nancy: planned, never visited
	}
	for _, tt := range tests {
		c := by[tt.code]
		if math.Abs(c.Taux-tt.taux) > 1e-9 || c.Classe != tt.classe || c.Prevus != tt.prevus {
			t.Errorf("%s %s: rate %.4f class %d planned %d; want %.4f, %d, %d", tt.code, c.Nom, c.Taux, c.Classe, c.Prevus, tt.taux, tt.classe, tt.prevus)
		}
	}
	// Breaks between the rates: 1,016 (no rounding fits between 1,002
	// and 1,016) and 1,9 (1,997 rounded down).
	if len(m.Classes) != 3 || math.Abs(m.Classes[1].Min-15*1000.0/14771) > 1e-9 || math.Abs(m.Classes[2].Min-1.9) > 1e-9 || m.Classes[2].Max != 207*1000.0/103671 {
		t.Errorf("classes %+v", m.Classes)
	}
	wantNever := []string{"54578", "54357", "54482", "54274", "54526", "54184", "54339", "54300", "54328", "54257", "54498", "54439", "54495", "54197", "54265", "54025", "54165"}
	var never []string
	for _, c := range m.JamaisVisitees {
		never = append(never, c.Code)
	}
	if !slices.Equal(never, wantNever) {
		t.Errorf("never visited %v\nwant %v", never, wantNever)
	}
	if m.ZonesBlanches != nil || m.Lieux {
		t.Errorf("white zones without a list of places: %v", m.ZonesBlanches)
	}
	if m.Communes[0].Nom != "Art-sur-Meurthe" || m.Communes[19].Nom != "Villers-lès-Nancy" {
		t.Errorf("not in name order: %s … %s", m.Communes[0].Nom, m.Communes[19].Nom)
	}
}

// The CC du Territoire de Lunéville à Baccarat (43 communes) with fixed
// places in Lunéville and Baccarat: the white zones are the communes
// never visited and farther than the radius from both, most populated
// first; a place whose coordinates are swapped counts at its commune.
func TestMapWhiteZones(t *testing.T) {
	src := &visitsSource{visits: []Visit{{Commune: "54116", Activities: 3, Accompagnements: 3}}} // Chanteheux
	f := Filter{Territory: mustTerritory(t, "epci:200070324")}
	ps := []MapPlace{
		{Commune: "54329", Lat: 48.58942, Lon: 6.49632, HasCoords: true}, // France services de Lunéville
		{Commune: "54039"}, // Baccarat, no coordinates: its centroid
	}
	lunLat, lunLon, _ := centroidOf("54329")
	bacLat, bacLon, _ := centroidOf("54039")
	for _, tt := range []struct {
		name   string
		places []MapPlace
		radius float64
	}{
		{"10 km", ps, 0},
		{"5 km", ps, 5},
		{"swapped coordinates", []MapPlace{{Commune: "54329", Lat: 6.49632, Lon: 48.58942, HasCoords: true}, ps[1]}, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ComputeMap(context.Background(), src, f, Scope{}, mapNow, MapInput{Places: tt.places, HasPlaces: true, Centroid: centroidOf, RadiusKm: tt.radius})
			if err != nil {
				t.Fatal(err)
			}
			radius := tt.radius
			if radius == 0 {
				radius = DefaultRadiusKm
			}
			if m.RayonKm != radius || len(m.Communes) != 43 {
				t.Fatalf("radius %v, %d communes", m.RayonKm, len(m.Communes))
			}
			want := map[string]bool{}
			for _, c := range m.Communes {
				la, lo, _ := centroidOf(c.Code)
				d := min(haversineKm(la, lo, lunLat, lunLon), haversineKm(la, lo, bacLat, bacLon))
				if tt.name != "swapped coordinates" {
					d = min(haversineKm(la, lo, 48.58942, 6.49632), haversineKm(la, lo, bacLat, bacLon))
				}
				if math.Abs(c.DistanceKm-d) > 1e-6 {
					t.Errorf("%s: distance %.2f km, want %.2f", c.Nom, c.DistanceKm, d)
				}
				if !c.Visitee && d > radius {
					want[c.Code] = true
				}
			}
			if len(m.ZonesBlanches) != len(want) || len(want) == 0 {
				t.Fatalf("%d white zones, want %d", len(m.ZonesBlanches), len(want))
			}
			for i, c := range m.ZonesBlanches {
				if !want[c.Code] || (i > 0 && m.ZonesBlanches[i-1].Population < c.Population) {
					t.Errorf("white zone %d: %s (%d inhabitants, %.1f km)", i, c.Nom, c.Population, c.DistanceKm)
				}
			}
		})
	}
}

// The map needs a territory of at most MaxMapCommunes communes.
func TestMapNeedsATerritory(t *testing.T) {
	src := &visitsSource{}
	if _, err := ComputeMap(context.Background(), src, Filter{}, Scope{}, mapNow, MapInput{}); !errors.Is(err, ErrMapNoTerritory) {
		t.Errorf("without a territory: %v", err)
	}
	if _, err := ComputeMap(context.Background(), src, Filter{Territory: mustTerritory(t, "reg:44")}, Scope{}, mapNow, MapInput{}); !errors.Is(err, ErrMapTooLarge) {
		t.Errorf("a région: %v", err)
	}
	// A coordinator's département is their default territory.
	sc, _ := ParseScope([]string{"dep:54"}, nil)
	m, err := ComputeMap(context.Background(), src, Filter{}, sc, mapNow, MapInput{Centroid: centroidOf})
	if err != nil || len(m.Communes) != 591 {
		t.Fatalf("coordinator's map: %v communes, %v", len(m.Communes), err)
	}
	if len(m.SansContour) != 0 {
		t.Errorf("Meurthe-et-Moselle: %d communes without an outline", len(m.SansContour))
	}
	sc, _ = ParseScope([]string{"dep:15"}, nil) // Cantal: four re-established communes
	m, _ = ComputeMap(context.Background(), src, Filter{}, sc, mapNow, MapInput{Centroid: centroidOf})
	var missing []string
	for _, c := range m.SansContour {
		missing = append(missing, c.Code)
	}
	if !slices.Equal(missing, []string{"15031", "15035", "15047", "15171"}) && !slices.Equal(missing, []string{"15031", "15035", "15171", "15047"}) {
		t.Errorf("Cantal without an outline: %v", missing)
	}
}
