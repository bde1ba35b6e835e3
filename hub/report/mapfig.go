package report

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"numeribus/internal/apperr"
	"numeribus/internal/territoire"
)

// The map's figures (issue #15): where the bus has been (accompagnements
// per 1,000 inhabitants over the period), where it is planned, where
// nobody goes (never visited), and the white zones: never visited and
// far from any fixed mediation place. The dashboard draws them
// (hub/dashboard, /carte); this file computes them without geometry
// beyond the communes' centroids, which the caller gives.

// MaxMapCommunes bounds the communes of one map: the largest
// département has 890; a région's thousands would be unreadable.
const MaxMapCommunes = 1500

// DefaultRadiusKm is the distance beyond which a commune is far from a
// fixed place, unless the reader sets another.
const DefaultRadiusKm = 10.0

// Errors of the map.
var (
	// ErrMapNoTerritory: the map needs a territory (an administrator's
	// unfiltered view is all of France).
	ErrMapNoTerritory = apperr.New(apperr.Usage, "the map needs a territory")
	// ErrMapTooLarge: more than MaxMapCommunes communes.
	ErrMapTooLarge = apperr.New(apperr.Usage, "too many communes for one map")
)

// MapPlace is a fixed mediation place as the map uses it.
type MapPlace struct {
	Commune   string
	Lat, Lon  float64
	HasCoords bool
}

// MapInput is what the map needs besides the facts.
type MapInput struct {
	// Planned counts the upcoming planned stops per commune.
	Planned map[string]int
	// Places are the fixed places (the imported list); HasPlaces says a
	// list was imported at all, so that "no place near" is not confused
	// with "no list".
	Places    []MapPlace
	HasPlaces bool
	// Centroid gives a commune's centroid in degrees; ok is false for a
	// commune without an outline.
	Centroid func(code string) (lat, lon float64, ok bool)
	// RadiusKm: a commune farther than this from every place is far
	// (DefaultRadiusKm when zero).
	RadiusKm float64
}

// MapCommune is one commune of the map.
type MapCommune struct {
	Code            string  `json:"code"`
	Nom             string  `json:"nom"`
	EPCI            string  `json:"epci"`
	Population      int     `json:"population"`
	Activites       int     `json:"activites"`
	Accompagnements int     `json:"accompagnements"`
	Arrets          int     `json:"arrets"`  // realised stops in the period
	Prevus          int     `json:"prevus"`  // upcoming planned stops
	Taux            float64 `json:"taux"`    // accompagnements per 1,000 inhabitants
	Classe          int     `json:"classe"`  // 0: not visited; else its class, 1…len(Classes)
	Visitee         bool    `json:"visitee"` // an activity or a realised stop in the period
	// Localisee: the commune has a centroid (an outline); DistanceKm is
	// then the distance to the nearest place, or -1 when none is within
	// MaxDistanceKm (or no list was imported).
	Localisee  bool    `json:"localisee"`
	DistanceKm float64 `json:"distance_km"`
}

// MapClass is a class of the legend: rates in [Min, Max) (the last
// includes Max).
type MapClass struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Map is the map's data for a territory and a period.
type Map struct {
	Filter   Applied      `json:"filter"`
	Communes []MapCommune `json:"communes"` // in name order
	// Classes of the rate among visited communes (at most 4).
	Classes []MapClass `json:"classes"`
	// JamaisVisitees: communes not visited in the period, most populated
	// first.
	JamaisVisitees []MapCommune `json:"jamais_visitees"`
	// ZonesBlanches: never visited and farther than RayonKm from every
	// place, most populated first; nil without an imported list.
	ZonesBlanches []MapCommune `json:"zones_blanches"`
	RayonKm       float64      `json:"rayon_km"`
	// SansContour: communes drawn nowhere, listed in the table anyway.
	SansContour []MapCommune `json:"sans_contour"`
	Lieux       bool         `json:"lieux"` // a list of places was imported
	Population  int          `json:"population"`
	Visitees    int          `json:"visitees"`
}

// MaxDistanceKm is how far the nearest place is looked for.
const MaxDistanceKm = 100.0

// ComputeMap computes the map of the territory f asks within scope s.
func ComputeMap(ctx context.Context, src Source, f Filter, s Scope, o Options, in MapInput) (*Map, error) {
	q, err := query(f, s, o)
	if err != nil {
		return nil, err
	}
	if q.Areas == nil {
		return nil, ErrMapNoTerritory
	}
	var all []territoire.Commune
	for _, a := range q.Areas {
		all = append(all, a.communes()...)
	}
	if len(all) > MaxMapCommunes {
		return nil, fmt.Errorf("%w: %d communes", ErrMapTooLarge, len(all))
	}
	visits, err := src.Visits(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("map: reading visits: %w", err)
	}
	byCode := make(map[string]Visit, len(visits))
	for _, v := range visits {
		byCode[v.Commune] = v
	}
	radius := in.RadiusKm
	if radius <= 0 {
		radius = DefaultRadiusKm
	}
	m := &Map{Filter: applied(f, q), RayonKm: radius, Lieux: in.HasPlaces}
	centroid := in.Centroid
	if centroid == nil {
		centroid = func(string) (float64, float64, bool) { return 0, 0, false }
	}
	for _, c := range all {
		v, visited := byCode[c.Code]
		mc := MapCommune{Code: c.Code, Nom: c.Nom, EPCI: c.EPCI, Population: c.Population, Activites: v.Activities,
			Accompagnements: v.Accompagnements, Arrets: v.Stops, Prevus: in.Planned[c.Code], Visitee: visited, DistanceKm: -1}
		if c.Population > 0 {
			mc.Taux = float64(v.Accompagnements) * 1000 / float64(c.Population)
		}
		_, _, mc.Localisee = centroid(c.Code)
		m.Population += c.Population
		if visited {
			m.Visitees++
		}
		m.Communes = append(m.Communes, mc)
	}
	m.Classes = rateClasses(m.Communes)
	for i := range m.Communes {
		m.Communes[i].Classe = classOf(m.Classes, m.Communes[i])
	}
	if in.HasPlaces {
		nearest(m.Communes, in.Places, centroid)
	}
	slices.SortFunc(m.Communes, func(a, b MapCommune) int {
		if c := cmp.Compare(territoire.Normalize(a.Nom), territoire.Normalize(b.Nom)); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
	byPop := func(a, b MapCommune) int {
		if c := cmp.Compare(b.Population, a.Population); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	}
	for _, c := range m.Communes {
		if !c.Localisee {
			m.SansContour = append(m.SansContour, c)
		}
		if c.Visitee {
			continue
		}
		m.JamaisVisitees = append(m.JamaisVisitees, c)
		if in.HasPlaces && c.Localisee && (c.DistanceKm < 0 || c.DistanceKm > radius) {
			m.ZonesBlanches = append(m.ZonesBlanches, c)
		}
	}
	slices.SortFunc(m.JamaisVisitees, byPop)
	slices.SortFunc(m.ZonesBlanches, byPop)
	return m, nil
}

// rateClasses cuts the rates of the visited communes into at most four
// classes at their quartiles. Each break lies between two rates, rounded
// down to two significant digits when that keeps it above the lower one,
// so that the legend reads well and no class is empty; fewer classes
// when rates repeat.
func rateClasses(cs []MapCommune) []MapClass {
	var rates []float64
	for _, c := range cs {
		if c.Visitee {
			rates = append(rates, c.Taux)
		}
	}
	if len(rates) == 0 {
		return nil
	}
	slices.Sort(rates)
	n := len(rates)
	var breaks []float64
	for _, qt := range []float64{0.25, 0.5, 0.75} {
		i := int(math.Ceil(qt * float64(n)))
		if i <= 0 || i >= n || rates[i-1] == rates[i] {
			continue
		}
		b := floor2(rates[i])
		if b <= rates[i-1] {
			b = rates[i]
		}
		if len(breaks) == 0 || b > breaks[len(breaks)-1] {
			breaks = append(breaks, b)
		}
	}
	out := make([]MapClass, 0, len(breaks)+1)
	lo := 0.0
	for _, b := range breaks {
		out = append(out, MapClass{Min: lo, Max: b})
		lo = b
	}
	return append(out, MapClass{Min: lo, Max: rates[n-1]})
}

// floor2 rounds v > 0 down to two significant digits.
func floor2(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v))-1)
	return math.Floor(v/p+1e-9) * p
}

// classOf is c's class: 0 when not visited, else 1 + the number of
// breaks at or below its rate.
func classOf(cl []MapClass, c MapCommune) int {
	if !c.Visitee {
		return 0
	}
	k := 1
	for _, x := range cl[1:] {
		if c.Taux >= x.Min {
			k++
		}
	}
	return k
}

// nearest sets each located commune's distance to the nearest place
// within MaxDistanceKm. A place without coordinates, or whose
// coordinates lie more than placeSlackKm from its commune's centroid (a
// file with latitude and longitude swapped, or geocoded to a namesake),
// is taken at its commune's centroid.
func nearest(cs []MapCommune, ps []MapPlace, centroid func(string) (float64, float64, bool)) {
	const placeSlackKm = 30.0
	var minLat, maxLat, minLon, maxLon = 90.0, -90.0, 180.0, -180.0
	type pt struct{ lat, lon float64 }
	at := make([]pt, len(cs))
	for i, c := range cs {
		if la, lo, ok := centroid(c.Code); ok {
			at[i] = pt{la, lo}
			minLat, maxLat = min(minLat, la), max(maxLat, la)
			minLon, maxLon = min(minLon, lo), max(maxLon, lo)
		}
	}
	if minLat > maxLat {
		return
	}
	// Only places that could be within MaxDistanceKm of the territory.
	mLat := MaxDistanceKm / 111.0
	mLon := MaxDistanceKm / (111.0 * math.Cos(math.Max(math.Abs(minLat), math.Abs(maxLat))*math.Pi/180))
	var near []pt
	for _, p := range ps {
		cla, clo, cok := centroid(p.Commune)
		la, lo := p.Lat, p.Lon
		switch {
		case !p.HasCoords && !cok:
			continue
		case !p.HasCoords, cok && haversineKm(la, lo, cla, clo) > placeSlackKm:
			la, lo = cla, clo
		}
		if la >= minLat-mLat && la <= maxLat+mLat && lo >= minLon-mLon && lo <= maxLon+mLon {
			near = append(near, pt{la, lo})
		}
	}
	for i := range cs {
		if !cs[i].Localisee {
			continue
		}
		best := math.Inf(1)
		for _, p := range near {
			best = min(best, haversineKm(at[i].lat, at[i].lon, p.lat, p.lon))
		}
		if best <= MaxDistanceKm {
			cs[i].DistanceKm = best
		}
	}
}

// haversineKm is the great-circle distance between two points in degrees.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}
