package report

import (
	"slices"
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// What each activity contributes to the indicators, whatever the backend
// that stores it.
func TestActivityFactOf(t *testing.T) {
	ana, bob := ident.New(), ident.New()
	ind := &domain.Activity{ID: ident.New(), Date: "2026-03-02", Type: "individuel", Duree: 45, Commune: "88160",
		Beneficiaire: &ana, Thematiques: []string{"diagnostic_numerique", "pas_un_code"},
		Orientation: &domain.Orientation{Oriente: true, StructureDeRedirection: "caf"}}
	f, unknown := ActivityFactOf(ind, "cd88")
	if f.Day != 20260302 || f.Participants != 1 || f.Departement != "88" || f.EPCI == "" || f.Team != "cd88" ||
		!slices.Equal(f.Beneficiaires, []ident.ID{ana}) || !f.Oriente || f.StructureRedirection != "caf" || f.Thematiques.Len() != 1 {
		t.Errorf("individual session: %+v", f)
	}
	if !slices.Equal(unknown, []string{"thematiques=pas_un_code"}) {
		t.Errorf("unknown codes %v", unknown)
	}
	ws := &domain.Activity{ID: ident.New(), Date: "2026-03-03", Type: "collectif", Duree: 120, Commune: "99999",
		Orientation: &domain.Orientation{Oriente: false, StructureDeRedirection: "caf"},
		Participants: &domain.Participants{Beneficiaires: []ident.ID{ana, bob}, Total: 7, DejaAccompagne: 2,
			Genre: map[string]int{"feminin": 4, "inconnu": 9}}}
	f, _ = ActivityFactOf(ws, "cd88")
	if f.Participants != 7 || len(f.Beneficiaires) != 2 || f.DejaAccompagne != 2 || f.Oriente || f.Commune != "99999" || f.Departement != "" {
		t.Errorf("workshop: %+v", f)
	}
	if got := FormatCounts(domain.Genres, f.Genres); got != "feminin=4" {
		t.Errorf("workshop genres %q", got)
	}
	if f.TranchesAge != nil {
		t.Errorf("no age counts given, got %v", f.TranchesAge)
	}
}

func TestAssessmentFactOfMarksUnscoredDomains(t *testing.T) {
	a := &domain.Assessment{ID: ident.New(), Date: "2026-03-02", Commune: "88160"}
	f, p := AssessmentFactOf(a, "cd88")
	for i, s := range f.Scores {
		if s != -1 {
			t.Errorf("domain %d scored %d, want -1 (not evaluated)", i, s)
		}
	}
	if p.Departement != "88" || f.Day != 20260302 {
		t.Errorf("place %+v, day %d", p, f.Day)
	}
}
