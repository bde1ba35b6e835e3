package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"numeribus/internal/territoire"
)

// MaxNonVisitees bounds Coverage.NonVisitees: a région has thousands of
// communes, the reader wants the most populated first.
const MaxNonVisitees = 500

// Coverage is the "diagnostic partagé" of a territory: which of its
// communes the activity reached in the period, and how many people live
// there.
type Coverage struct {
	Filter Applied `json:"filter"`
	// Communes of the territory, and those visited in the period (an
	// activity there or a realised stop).
	Communes int     `json:"communes"`
	Visitees int     `json:"visitees"`
	Part     float64 `json:"part"` // Visitees / Communes, 0..1
	// Population of the territory and of its visited communes.
	Population         int     `json:"population"`
	PopulationAtteinte int     `json:"population_atteinte"`
	PartPopulation     float64 `json:"part_population"`
	// VisiteesListe: the visited communes, most activities first.
	VisiteesListe []CommuneRow `json:"visitees_liste"`
	// NonVisitees: communes not visited in the period, most populated
	// first, at most MaxNonVisitees of NonVisiteesTotal.
	NonVisitees      []CommuneRow `json:"non_visitees"`
	NonVisiteesTotal int          `json:"non_visitees_total"`
	// Groupes: reached/total per EPCI, or per commune when the territory
	// is one EPCI or a few communes; for bars.
	NiveauGroupes string       `json:"niveau_groupes"` // "epci" or "commune"
	Groupes       []CoverGroup `json:"groupes"`
}

// CommuneRow is one commune of a coverage.
type CommuneRow struct {
	Code            string `json:"code"`
	Nom             string `json:"nom"`
	Population      int    `json:"population"`
	Activites       int    `json:"activites"`
	Accompagnements int    `json:"accompagnements"`
	Arrets          int    `json:"arrets"`
}

// CoverGroup is the coverage of one EPCI (or commune).
type CoverGroup struct {
	Code               string  `json:"code"`
	Label              string  `json:"label"`
	Communes           int     `json:"communes"`
	Visitees           int     `json:"visitees"`
	Population         int     `json:"population"`
	PopulationAtteinte int     `json:"population_atteinte"`
	Part               float64 `json:"part"` // Visitees / Communes
}

// ComputeCoverage computes the coverage of the territory f asks, within
// scope s. Without any territory (an administrator's unfiltered view) the
// territory is the départements where activity took place.
func ComputeCoverage(ctx context.Context, src Source, f Filter, s Scope, o Options) (*Coverage, error) {
	q, err := query(f, s, o)
	if err != nil {
		return nil, err
	}
	visits, err := src.Visits(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("coverage: reading visits: %w", err)
	}
	byCode := make(map[string]Visit, len(visits))
	for _, v := range visits {
		byCode[v.Commune] = v
	}
	areas := q.Areas
	if areas == nil {
		x := territoire.Default()
		deps := map[string]bool{}
		for _, v := range visits {
			if c, ok := x.Commune(v.Commune); ok && !deps[c.Departement] {
				deps[c.Departement] = true
				areas = append(areas, Territory{Departement, c.Departement})
			}
		}
		areas = disjoint(areas)
	}
	var all []territoire.Commune
	for _, a := range areas {
		all = append(all, a.communes()...)
	}
	cv := &Coverage{Filter: applied(f, q), Communes: len(all), NiveauGroupes: "epci"}
	if len(areas) > 0 && areas[0].Level != Departement && (len(areas) == 1 && areas[0].Level == EPCI || areas[0].Level == Commune) {
		cv.NiveauGroupes = "commune"
	}
	groups := map[string]*CoverGroup{}
	var order []string
	for _, c := range all {
		v, visited := byCode[c.Code]
		row := CommuneRow{Code: c.Code, Nom: c.Nom, Population: c.Population, Activites: v.Activities, Accompagnements: v.Accompagnements, Arrets: v.Stops}
		cv.Population += c.Population
		if visited {
			cv.Visitees++
			cv.PopulationAtteinte += c.Population
			cv.VisiteesListe = append(cv.VisiteesListe, row)
		} else {
			cv.NonVisitees = append(cv.NonVisitees, row)
		}
		key, label := c.EPCI, "Sans EPCI"
		if cv.NiveauGroupes == "commune" {
			key, label = c.Code, c.Nom
		} else if e, ok := territoire.Default().EPCI(c.EPCI); ok {
			label = e.Nom
		}
		g := groups[key]
		if g == nil {
			g = &CoverGroup{Code: key, Label: label}
			groups[key] = g
			order = append(order, key)
		}
		g.Communes++
		g.Population += c.Population
		if visited {
			g.Visitees++
			g.PopulationAtteinte += c.Population
		}
	}
	cv.Part = share(cv.Visitees, cv.Communes)
	cv.PartPopulation = share(cv.PopulationAtteinte, cv.Population)
	slices.SortFunc(cv.VisiteesListe, func(a, b CommuneRow) int {
		if c := cmp.Compare(b.Activites, a.Activites); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
	slices.SortFunc(cv.NonVisitees, func(a, b CommuneRow) int {
		if c := cmp.Compare(b.Population, a.Population); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
	cv.NonVisiteesTotal = len(cv.NonVisitees)
	if len(cv.NonVisitees) > MaxNonVisitees {
		cv.NonVisitees = cv.NonVisitees[:MaxNonVisitees]
	}
	for _, k := range order {
		g := groups[k]
		g.Part = share(g.Visitees, g.Communes)
		cv.Groupes = append(cv.Groupes, *g)
	}
	// Least reached first: where to go next.
	slices.SortStableFunc(cv.Groupes, func(a, b CoverGroup) int {
		if c := cmp.Compare(a.Part, b.Part); c != 0 {
			return c
		}
		return cmp.Compare(b.Population, a.Population)
	})
	return cv, nil
}
