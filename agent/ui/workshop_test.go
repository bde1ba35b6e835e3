package ui

import (
	"context"
	"html"
	"net/url"
	"strings"
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// A workshop names the followed people who attended, from their page;
// the others stay an anonymous head count. The workshop then shows in the
// person's history.
func TestFollowedPersonJoinsTodaysWorkshop(t *testing.T) {
	e := newEnv(t)
	ben := &domain.Beneficiary{ID: ident.New(), Prenom: "Hélène", Nom: "Lefèvre", Genre: "feminin"}
	cons := &domain.Consent{ID: ident.New(), Beneficiaire: ben.ID, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-01"}
	ws := &domain.Activity{ID: ident.NewAt(e.clock.Now()), Type: "collectif", Date: "2026-03-02", Duree: 90, TypeLieu: "lieu_activite",
		Commune: "54395", Thematiques: []string{"email"}, Niveau: "debutant", Participants: &domain.Participants{Total: 6}}
	old := &domain.Activity{ID: ident.NewAt(e.clock.Now().AddDate(0, 0, -10)), Type: "collectif", Date: "2026-02-20", Duree: 60,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email"}, Niveau: "debutant", Participants: &domain.Participants{Total: 4}}
	e.seed(ben, cons, ws, old)
	b := e.browser()
	b.unlock()
	page := "/beneficiaires/" + ben.ID.String()
	_, _, body := b.get(page)
	if !strings.Contains(body, `action="/ateliers/`+ws.ID.String()+`/participants"`) || strings.Contains(body, old.ID.String()) {
		t.Fatalf("today's workshop not offered, or an old one offered:\n%s", body)
	}
	if _, path, body := b.post("/ateliers/"+ws.ID.String()+"/participants", url.Values{"beneficiaire": {ben.ID.String()}}); path != page ||
		!strings.Contains(body, html.EscapeString(fr["workshop_added"])) || !strings.Contains(body, html.EscapeString(fr["workshop_attended"])) {
		t.Fatalf("join: %s", path)
	}
	b.post("/ateliers/"+ws.ID.String()+"/participants", url.Values{"beneficiaire": {ben.ID.String()}}) // a double-click
	it, err := e.st.Get(context.Background(), ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := it.Record.(*domain.Activity).Participants
	if len(p.Beneficiaires) != 1 || p.Beneficiaires[0] != ben.ID || p.Total != 6 {
		t.Fatalf("participants %+v: want the person once among 6", p)
	}
	if _, _, body := b.get(page); !strings.Contains(body, "<td>02/03/2026</td>") {
		t.Fatal("the workshop is not in the person's history")
	}
}
