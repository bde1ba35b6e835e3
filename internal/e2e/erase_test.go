package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// filesContain reports the files of dir holding s in clear.
func filesContain(t testing.TB, dir, s string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(s)) {
			hits = append(hits, filepath.Base(p))
		}
		return nil
	})
	return hits
}

// An erasure on one agent reaches the hub and the team's other agents at
// their next sync: the personal data is gone everywhere, the statistics
// stay.
func TestErasurePropagates(t *testing.T) {
	ctx := context.Background()
	h := startHub(t)
	a1 := newAgent(t, h, "bus-1", "cd88", nil)
	a2 := newAgent(t, h, "bus-2", "cd88", nil)
	const name, phone = "Gwendoline-Testerman", "0698765432"
	b := &domain.Beneficiary{ID: ident.New(), Prenom: "Aurélienne", Nom: name, Telephone: phone, Genre: "feminin", Commune: "88413", StatutSocial: "retraite"}
	c := &domain.Consent{ID: ident.New(), Beneficiaire: b.ID, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-01"}
	a1.save(t, b, c)
	a1.sync(t)
	a2.sync(t)
	if it, err := a2.st.Get(ctx, b.ID); err != nil || it.Record.(*domain.Beneficiary).Nom != name {
		t.Fatalf("team agent did not receive the beneficiary: %+v %v", it, err)
	}
	if len(filesContain(t, h.dir, name)) == 0 {
		t.Fatal("the hub should hold the name before erasure (the scan would prove nothing)")
	}
	if _, err := a1.st.EraseBeneficiary(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	a1.sync(t)
	a2.sync(t)
	for _, a := range []*testAgent{a1, a2} {
		it, err := a.st.Get(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := it.Record.(*domain.Beneficiary)
		if got.Identified() || got.Genre != "feminin" || got.StatutSocial != "retraite" {
			t.Fatalf("%s after erasure: %+v", a.name, got)
		}
	}
	for _, l := range hubLines(t, h, "cd88") {
		if strings.Contains(l, name) || strings.Contains(l, phone) {
			t.Fatalf("hub record still identified: %s", l)
		}
	}
	if hits := filesContain(t, h.dir, name); len(hits) > 0 {
		t.Fatalf("erased name still in the hub's files: %v", hits)
	}
	if hits := filesContain(t, h.dir, phone); len(hits) > 0 {
		t.Fatalf("erased phone still in the hub's files: %v", hits)
	}
}
