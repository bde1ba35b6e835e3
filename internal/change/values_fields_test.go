package change_test

import (
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
)

// Any one field of a valid record, sent alone, passes the hub's checks: a
// device's change carries only the fields it modifies, so a rule between
// two fields flagged as an invalid value would refuse valid work for good
// — a partial consent withdrawal (retraits alone) once was, and its
// laptop never agreed with its team again (found by TestJepsenConverge).
// Every kind, every field, over generated records and withdrawn consents.
func TestEveryFieldAlonePassesCheckValues(t *testing.T) {
	recs := fixture.Generate(fixture.Options{N: 300, Seed: 5}).Records()
	b, c := ident.New(), ident.New()
	recs = append(recs,
		&domain.Consent{ID: c, Beneficiaire: b, Finalites: []string{domain.FinaliteDiagnostic, domain.FinaliteSuivi},
			Mode: "ecrit", Date: "2026-03-02", Retraits: []string{domain.FinaliteSuivi}},
		&domain.Consent{ID: ident.New(), Beneficiaire: b, Finalites: []string{domain.FinaliteSuivi},
			Mode: "oral_trace", Date: "2026-03-02", RetireLe: "2026-04-01", Retraits: []string{domain.FinaliteSuivi}},
		&domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-02", Lieu: "Mairie", Commune: "88413",
			HeureDebut: "09:00", HeureFin: "12:00"})
	seen := map[domain.Kind]map[uint64]bool{}
	for _, r := range recs {
		r.Normalize()
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		k := r.Kind()
		if seen[k] == nil {
			seen[k] = map[uint64]bool{}
		}
		for n, v := range f {
			one := &change.Change{Kind: k, ID: r.RecordID(), Op: change.OpUpsert, Fields: change.Fields{n: v}}
			if err := one.CheckFields(); err != nil {
				t.Fatalf("%s field %d alone: CheckFields: %v", k, n, err)
			}
			if err := one.CheckValues(); err != nil {
				f, _ := domain.FieldByNum(k, n)
				t.Fatalf("%s: the field %s alone, from a valid record, is refused: %v", k, f.Name, err)
			}
			seen[k][n] = true
		}
	}
	for _, k := range domain.Kinds {
		if len(seen[k]) < len(domain.Fields(k))/2 {
			t.Errorf("%s: only %d of %d fields were tried", k, len(seen[k]), len(domain.Fields(k)))
		}
	}
}
