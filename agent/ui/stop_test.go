package ui

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// A démarche started from a person's page, found while at today's stop,
// belongs to the stop: commune and stop carried; the mediator can say it
// does not. The person's history names it a démarche.
func TestDemarcheFromAPersonKeepsTheStop(t *testing.T) {
	e := newEnv(t)
	stop := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 3", Date: "2026-03-02", HeureDebut: "09:00",
		Lieu: "Place de la mairie", Commune: "54395"}
	ben := &domain.Beneficiary{ID: ident.New(), Genre: "feminin"}
	e.seed(stop, ben)
	b := e.browser()
	b.unlock()
	b.get("/activites/nouvelle?type=individuel&arret=" + stop.ID.String()) // the mediator starts the stop
	_, _, body := b.get("/activites/nouvelle?type=demarche&beneficiaire=" + ben.ID.String())
	for _, want := range []string{`name="arret" value="` + stop.ID.String(), `value="54395"`, html.EscapeString("Place de la mairie")} {
		if !strings.Contains(body, want) {
			t.Fatalf("démarche from the person page lacks %q:\n%s", want, body[:min(len(body), 3000)])
		}
	}
	form := activityForm()
	form.Set("flow", "demarche")
	form.Set("beneficiaire", ben.ID.String())
	form.Set("arret", stop.ID.String())
	form["thematiques"] = []string{domain.ThemeDemarches}
	form["demarches"] = []string{"social_sante"}
	form.Del("beneficiaire.genre")
	if code, path, body := b.post("/activites/nouvelle", form); path != "/beneficiaires/"+ben.ID.String() {
		t.Fatalf("save: %d %s\n%s", code, path, body)
	}
	var got []*domain.Activity
	e.st.List(context.Background(), domain.KindActivity, false, func(it store.Item) error {
		got = append(got, it.Record.(*domain.Activity))
		return nil
	})
	if len(got) != 1 || got[0].Arret == nil || *got[0].Arret != stop.ID {
		t.Fatalf("the démarche is not tied to the stop: %+v", got)
	}
	_, _, body = b.get("/beneficiaires/" + ben.ID.String())
	if !strings.Contains(body, html.EscapeString(fr["title_activity_demarche"])) {
		t.Fatal("the person's history does not name the démarche")
	}
	// Not at the stop after all.
	b.get("/activites/nouvelle?type=individuel")
	other := activityForm()
	other.Set("arret", stop.ID.String())
	other.Set("sans_arret", "1")
	b.post("/activites/nouvelle", other)
	n := 0
	e.st.List(context.Background(), domain.KindActivity, false, func(it store.Item) error {
		if a := it.Record.(*domain.Activity); a.Arret == nil {
			n++
		}
		return nil
	})
	if n != 1 {
		t.Fatalf("%d activities without a stop, want the one detached", n)
	}
	if _, _, body := b.get("/activites/nouvelle?type=individuel"); strings.Contains(body, `name="arret"`) {
		t.Fatal("the stop still offered after detaching")
	}
}

// The search is a POST (no name in a URL) answered by a redirect to its
// results: reloading them, or coming Back, resubmits nothing; the query
// is forgotten at the lock.
func TestSearchResultsReloadWithoutResubmit(t *testing.T) {
	e := newEnv(t)
	ben := &domain.Beneficiary{ID: ident.New(), Prenom: "Hélène", Nom: "Lefèvre", Genre: "feminin"}
	cons := &domain.Consent{ID: ident.New(), Beneficiaire: ben.ID, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-01"}
	e.seed(ben, cons)
	b := e.browser()
	b.unlock()
	code, path, body := b.post("/beneficiaires", url.Values{"q": {"helene"}})
	if code != 200 || path != "/beneficiaires" || !strings.Contains(body, "Lefèvre") {
		t.Fatalf("search: %d %s", code, path)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/beneficiaires?resultats", nil)
	if _, _, body := b.do(req); !strings.Contains(body, "Lefèvre") {
		t.Fatal("reloading the results lost them")
	}
	if _, _, body := b.get("/beneficiaires"); strings.Contains(body, "Lefèvre") {
		t.Fatal("the plain search page shows the last results")
	}
	b.post("/lock", nil)
	b.unlock()
	if _, _, body := b.get("/beneficiaires?resultats"); strings.Contains(body, "Lefèvre") || strings.Contains(body, "helene") {
		t.Fatal("the search survived the lock")
	}
}
