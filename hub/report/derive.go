package report

import (
	"strconv"
	"strings"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// The facts of a record: what each kind contributes to the indicators,
// derived from its merged state. These are the rules, the same for every
// backend; a store only writes the facts down (hub/store/sqlite
// facts.go) and reads them back (its Source).

// Place is a commune with the territories that hold it: a fact keeps them
// beside the commune, so that a query reads an area by an index.
type Place struct {
	Commune, EPCI, Departement, Region string
}

// PlaceOf returns the territories of a commune code: all "" for none, the
// code alone when the index does not know it.
func PlaceOf(code string) Place {
	if code == "" {
		return Place{}
	}
	c, ok := territoire.Default().Commune(code)
	if !ok {
		return Place{Commune: code}
	}
	return Place{Commune: c.Code, EPCI: c.EPCI, Departement: c.Departement, Region: c.Region}
}

// ActivityFactOf returns the facts of activity a of team. Codes of a
// set without a bit (Bits) cannot be counted: they are returned apart,
// for the caller to report.
func ActivityFactOf(a *domain.Activity, team string) (f ActivityFact, unknown []string) {
	p := PlaceOf(a.Commune)
	f = ActivityFact{ID: a.ID, Day: day(a.Date), Commune: p.Commune, EPCI: p.EPCI, Departement: p.Departement,
		Region: p.Region, Team: team, Vehicule: a.Vehicule, Mediateur: a.Mediateur, Type: a.Type, Duree: a.Duree,
		TypeLieu: a.TypeLieu, Participants: a.Accompagnements(), StructurePartenaire: a.StructurePartenaire,
		Autonomie: a.Autonomie, Niveau: a.Niveau, PassNumerique: a.PassNumerique}
	set := func(b *Bits, codes []string) Set {
		s, u := b.Set(codes)
		for _, c := range u {
			unknown = append(unknown, b.List.Name+"="+c)
		}
		return s
	}
	f.Thematiques, f.Demarches, f.Materiel = set(Thematiques, a.Thematiques), set(Demarches, a.Demarches), set(Materiels, a.Materiel)
	if a.Type == "collectif" {
		if w := a.Participants; w != nil {
			f.Beneficiaires = append(f.Beneficiaires, w.Beneficiaires...)
			f.DejaAccompagne = w.DejaAccompagne
			f.Genres = countsOf(domain.Genres, w.Genre)
			f.TranchesAge = countsOf(domain.TranchesAge, w.TrancheAge)
			f.StatutsSociaux = countsOf(domain.StatutsSociaux, w.StatutSocial)
		}
	} else if a.Beneficiaire != nil && !a.Beneficiaire.IsZero() {
		f.Beneficiaires = []ident.ID{*a.Beneficiaire}
	}
	if o := a.Orientation; o != nil && o.Oriente {
		f.Oriente, f.StructureRedirection = true, o.StructureDeRedirection
	}
	if a.Arret != nil {
		f.Arret = *a.Arret
	}
	return f, unknown
}

// BeneficiaryFactOf returns the facts of beneficiary b: whether the person
// is identified, never who they are. First is the record's own
// premier_accompagnement; a Source makes it the earlier of that and the
// person's first individual activity.
func BeneficiaryFactOf(b *domain.Beneficiary) BeneficiaryFact {
	return BeneficiaryFact{ID: b.ID, Commune: b.Commune, Genre: b.Genre, TrancheAge: b.TrancheAge,
		StatutSocial: b.StatutSocial, Suivi: b.Identified(), First: day(b.PremierAccompagnement)}
}

// AssessmentFactOf returns the facts of assessment a of team, with its
// place.
func AssessmentFactOf(a *domain.Assessment, team string) (AssessmentFact, Place) {
	p := PlaceOf(a.Commune)
	f := AssessmentFact{ID: a.ID, Day: day(a.Date), Commune: p.Commune, Team: team, Mediateur: a.Mediateur,
		Beneficiaire: a.Beneficiaire, AutonomieGlobale: a.AutonomieGlobale, Outil: a.Outil}
	for i, c := range domain.DomainesCRCN.Codes {
		f.Scores[i] = -1
		if v, ok := a.Score(c.Code); ok {
			f.Scores[i] = v
		}
	}
	return f, p
}

// TourStopFactOf returns the facts of stop t of team, with its place.
func TourStopFactOf(t *domain.TourStop, team string) (TourStopFact, Place) {
	p := PlaceOf(t.Commune)
	return TourStopFact{ID: t.ID, Day: day(t.Date), Commune: p.Commune, Team: team, Vehicule: t.Vehicule, Realise: t.Realise}, p
}

func day(s string) int {
	d, _ := ParseDay(s)
	return d
}

// countsOf returns head counts by code indexed like list (nil when none);
// codes the list lacks are left out.
func countsOf(list *domain.CodeList, m map[string]int) []int {
	var out []int
	for i, c := range list.Codes {
		if n := m[c.Code]; n > 0 {
			if out == nil {
				out = make([]int, len(list.Codes))
			}
			out[i] = n
		}
	}
	return out
}

// FormatCounts writes head counts indexed like list as EncodeCounts
// does: "code=n,code=n", zeros left out.
func FormatCounts(list *domain.CodeList, n []int) string {
	var b strings.Builder
	for i, c := range list.Codes {
		if i < len(n) && n[i] > 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(c.Code)
			b.WriteByte('=')
			b.WriteString(strconv.Itoa(n[i]))
		}
	}
	return b.String()
}
