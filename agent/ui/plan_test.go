package ui

import (
	"context"
	"strings"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// A stop the coordinator planned at the hub arrives as a pulled change of
// the hub's device (store.ApplyRemote), not through Save; the "today" page
// lists it all the same, and an activity can start from it.
func TestTodayShowsStopPlannedAtHub(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	today := e.clock.Now().Format(domain.DateLayout)
	planned := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 3", Date: today, HeureDebut: "13:30", HeureFin: "16:00",
		Lieu: "Parvis de la médiathèque", Commune: "54395", Equipe: "cd54"}
	later := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 3", Date: "2026-03-09", Lieu: "Salle polyvalente", Commune: "54395", Equipe: "cd54"}
	var cs []change.Change
	for i, s := range []*domain.TourStop{planned, later} {
		f, err := change.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, change.Change{Kind: domain.KindTourStop, ID: s.ID, Op: change.OpUpsert, Fields: f,
			HLC: hlc.FromTime(e.clock.Now()) + hlc.Timestamp(i), Device: ident.New().String(), Seq: uint64(i + 1)})
	}
	if _, err := e.st.ApplyRemote(ctx, cs, 2, nil); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.unlock()
	_, _, body := b.get("/")
	if !strings.Contains(body, "Parvis de la médiathèque") || !strings.Contains(body, "13:30") || strings.Contains(body, "Salle polyvalente") {
		t.Fatalf("today's page does not list the stop planned at the hub (and only it):\n%s", body)
	}
	if !strings.Contains(body, "arret="+planned.ID.String()) {
		t.Fatal("no activity can start from the planned stop")
	}
}
