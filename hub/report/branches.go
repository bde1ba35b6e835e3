package report

import (
	"fmt"

	"numeribus/internal/territoire"
)

// Branch is one part of a [Query]'s areas as a fact table reads it: rows
// of some départements (by the table's key on team, département and day)
// or of some EPCI (by an index on EPCI and day), optionally only those of
// listed communes. A Source reads the union of a query's branches; they
// never overlap, since [Resolve] made the areas disjoint. This is the
// backend-neutral half of a Source: which rows, by which index; the SQL
// of each backend only writes it down.
type Branch struct {
	// Departements, or else EPCIs, the branch reads.
	Departements []string
	EPCIs        []string
	// Communes restricts the branch to these communes; nil: all of them.
	Communes []string
}

// Branches returns the branches of q's areas, départements and EPCI
// whole first, then communes grouped by their EPCI (or their département
// when they belong to none), in the order q names them. Everywhere (nil
// areas) is every département of the index and "" (activities without a
// commune). Unknown communes have no facts: a query of only those has no
// branch.
func (q Query) Branches(x *territoire.Index) ([]Branch, error) {
	if q.Areas == nil {
		deps := []string{""}
		for _, d := range x.Departements() {
			deps = append(deps, d.Code)
		}
		return []Branch{{Departements: deps}}, nil
	}
	var (
		deps, epcis         []string
		byEPCI, byDep       = map[string][]string{}, map[string][]string{}
		epciOrder, depOrder []string
	)
	for _, a := range q.Areas {
		switch a.Level {
		case Departement:
			deps = append(deps, a.Code)
		case EPCI:
			epcis = append(epcis, a.Code)
		case Commune:
			c, ok := x.Commune(a.Code)
			switch {
			case !ok:
			case c.EPCI != "":
				if byEPCI[c.EPCI] == nil {
					epciOrder = append(epciOrder, c.EPCI)
				}
				byEPCI[c.EPCI] = append(byEPCI[c.EPCI], c.Code)
			default:
				if byDep[c.Departement] == nil {
					depOrder = append(depOrder, c.Departement)
				}
				byDep[c.Departement] = append(byDep[c.Departement], c.Code)
			}
		case Region:
			return nil, fmt.Errorf("query with a région area: resolve it first")
		}
	}
	var out []Branch
	if len(deps) > 0 {
		out = append(out, Branch{Departements: deps})
	}
	if len(epcis) > 0 {
		out = append(out, Branch{EPCIs: epcis})
	}
	for _, e := range epciOrder {
		out = append(out, Branch{EPCIs: []string{e}, Communes: byEPCI[e]})
	}
	for _, d := range depOrder {
		out = append(out, Branch{Departements: []string{d}, Communes: byDep[d]})
	}
	return out, nil
}
