package report

import (
	"context"
	"slices"
	"testing"
	"time"

	"numeribus/internal/ident"
)

// memSource is a Source over facts in memory, filtering as the SQL source
// does on what these tests use: days, teams, vehicle, mediator (no areas).
type memSource struct {
	acts    []ActivityFact
	bens    []BeneficiaryFact
	assess  []AssessmentFact
	details []ActivityDetail
}

func (m *memSource) match(q Query, day int, team, vehicle, mediateur string) bool {
	return day >= q.From && day <= q.To && (q.Teams == nil || slices.Contains(q.Teams, team)) &&
		(q.Vehicle == "" || q.Vehicle == vehicle) && (q.Mediateur == "" || q.Mediateur == mediateur)
}

func (m *memSource) Activities(_ context.Context, q Query, fn func(*ActivityFact) error) error {
	for i := range m.acts {
		a := m.acts[i] // a copy: the callback may not keep it
		if m.match(q, a.Day, a.Team, a.Vehicule, a.Mediateur) {
			if err := fn(&a); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memSource) Sums(ctx context.Context, q Query) (Sums, error) {
	var s Sums
	communes, bens := map[string]bool{}, map[ident.ID]bool{}
	err := m.Activities(ctx, q, func(a *ActivityFact) error {
		s.Activites++
		if a.Type == "collectif" {
			s.Collectifs++
		}
		s.Participants += a.Participants
		s.Minutes += a.Duree
		s.PassNumerique += a.PassNumerique
		if a.Commune != "" {
			communes[a.Commune] = true
		}
		for _, id := range a.Beneficiaires {
			bens[id] = true
		}
		return nil
	})
	s.Communes, s.Beneficiaires = len(communes), len(bens)
	return s, err
}

func (m *memSource) Beneficiaries(_ context.Context, ids []ident.ID, fn func(*BeneficiaryFact) error) error {
	for i := range m.bens {
		if slices.Contains(ids, m.bens[i].ID) {
			if err := fn(&m.bens[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memSource) Assessments(_ context.Context, q Query, fn func(*AssessmentFact) error) error {
	for i := range m.assess {
		if a := &m.assess[i]; m.match(q, a.Day, a.Team, "", a.Mediateur) {
			if err := fn(a); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memSource) ActivityDetails(_ context.Context, ids []ident.ID, fn func(*ActivityDetail) error) error {
	for i := range m.details {
		if d := m.details[i]; slices.Contains(ids, d.ID) {
			if err := fn(&d); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memSource) TourStops(context.Context, Query, func(*TourStopFact) error) error { return nil }
func (m *memSource) Visits(context.Context, Query) ([]Visit, error)                    { return nil, nil }

func count(cs []Count, code string) (n, acc int) {
	for _, c := range cs {
		if c.Code == code {
			return c.Count, c.Accompagnements
		}
	}
	return -1, -1
}

// A small hand-counted month: the overview's figures follow from these
// facts by the rules of shared/DOMAIN.md, checked one by one, without a
// database (the SQL source has its own tests in hub/store/sqlite).
func TestOverviewOfAHandCountedMonth(t *testing.T) {
	ana, bob, eve := ident.New(), ident.New(), ident.New()
	themes, _ := Thematiques.Set([]string{"diagnostic_numerique"})
	src := &memSource{
		acts: []ActivityFact{
			{Day: 20260302, Commune: "88160", Team: "cd88", Type: "individuel", Duree: 45, TypeLieu: "lieu_activite",
				Participants: 1, Beneficiaires: []ident.ID{ana}, Thematiques: themes, Oriente: true, StructureRedirection: "caf", PassNumerique: 2},
			{Day: 20260310, Commune: "88160", Team: "cd88", Type: "individuel", Duree: 20, TypeLieu: "domicile",
				Participants: 1, Thematiques: themes}, // no beneficiary record
			{Day: 20260315, Commune: "88413", Team: "cd88", Type: "collectif", Duree: 120, TypeLieu: "lieu_activite",
				Participants: 6, Beneficiaires: []ident.ID{ana, bob}, Thematiques: themes, DejaAccompagne: 1, Niveau: "debutant"},
			// Outside the period: the previous month, in the series and
			// the previous period only.
			{Day: 20260215, Commune: "88160", Team: "cd88", Type: "individuel", Duree: 30, Participants: 1, Beneficiaires: []ident.ID{eve}},
			// Another team: out of scope.
			{Day: 20260305, Commune: "23096", Team: "cd23", Type: "individuel", Duree: 60, Participants: 1},
		},
		bens: []BeneficiaryFact{
			{ID: ana, Genre: "feminin", Suivi: true, First: 20260302},
			{ID: bob, Genre: "masculin", First: 20251110},
		},
	}
	f := Filter{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)}
	ov, err := ComputeOverview(context.Background(), src, f, Scope{Teams: []string{"cd88"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := ov.Headline
	if h.Activites != 3 || h.Individuels != 2 || h.Collectifs != 1 || h.Accompagnements != 8 || h.Minutes != 185 ||
		h.Beneficiaires != 2 || h.Communes != 2 || h.PassNumerique != 2 {
		t.Errorf("headline %+v", h)
	}
	b := ov.Beneficiaires
	want := Beneficiaires{Distincts: 2, Nouveaux: 1, Suivis: 1, Anonymes: 1, SansFiche: 1,
		ParticipantsAteliers: 6, ParticipantsAnonymes: 4, DejaAccompagnes: 1, Personnes: 2 + 1 + 4}
	if b != want {
		t.Errorf("beneficiaires %+v, want %+v", b, want)
	}
	if p := ov.Previous; p.Activites != 1 || p.Beneficiaires != 1 || p.From != "2026-01-29" || p.To != "2026-02-28" {
		t.Errorf("previous period %+v", p)
	}
	if n, acc := count(ov.ParType, "collectif"); n != 1 || acc != 6 {
		t.Errorf("par type collectif: %d, %d", n, acc)
	}
	if n, acc := count(ov.Thematiques, "diagnostic_numerique"); n != 3 || acc != 8 {
		t.Errorf("thematique: %d, %d", n, acc)
	}
	if n, _ := count(ov.Durees, "moins_30"); n != 1 {
		t.Errorf("durees %+v", ov.Durees)
	}
	if n, _ := count(ov.Genres, "feminin"); n != 1 {
		t.Errorf("genres %+v", ov.Genres)
	}
	if o := ov.Orientation; o.Orientes != 1 || o.Individuels != 2 || o.Part != 0.5 {
		t.Errorf("orientation %+v", o)
	}
	if len(ov.Mois) != 12 || ov.Mois[11].Month != "2026-03" || ov.Mois[11].Activites != 3 || ov.Mois[10].Activites != 1 ||
		ov.Mois[11].Beneficiaires != 2 || ov.Mois[11].Heures != hours(185) {
		t.Errorf("series ends %+v, %+v", ov.Mois[10], ov.Mois[11])
	}
}
