package e2e

import (
	"context"
	"strings"
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
)

func records(n int, seed uint64) []domain.Record {
	return fixture.Generate(fixture.Options{N: n, Seed: seed}).Records()
}

// Two agents of one team and one of another record offline, sync in
// varied orders, and converge: identical merged state at the hub and on
// both team agents; the other team sees none of it.
func TestTwoTeamsConverge(t *testing.T) {
	h := startHub(t)
	a1 := newAgent(t, h, "bus-1", "cd88", nil)
	a2 := newAgent(t, h, "bus-2", "cd88", nil)
	b1 := newAgent(t, h, "bus-9", "cd23", nil)

	a1.save(t, records(60, 1)...)
	a2.save(t, records(40, 2)...)
	b1.save(t, records(30, 3)...)

	// A stop both mediators of cd88 will edit offline.
	stop := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-02", Lieu: "Place de la mairie", Commune: "88413", HeureDebut: "09:00", HeureFin: "12:00"}
	a1.save(t, stop)
	a1.sync(t)
	a2.sync(t)
	b1.sync(t)

	// Offline: different fields of one record, and the same field.
	e1 := *stop
	e1.Lieu = "Parking de la salle des fêtes"
	e1.HeureFin = "12:30"
	a1.save(t, &e1)
	e2 := *stop
	e2.HeureDebut = "09:30"
	e2.HeureFin = "11:45" // later write: wins over 12:30
	a2.save(t, &e2)
	a2.save(t, records(10, 4)...)

	// Varied orders, some agents twice.
	for _, a := range []*testAgent{a2, b1, a1, a2, a1} {
		a.sync(t)
	}
	la1, la2 := a1.lines(t), a2.lines(t)
	sameLines(t, "team agents", la1, la2)
	sameLines(t, "hub and team agent", hubLines(t, h, "cd88"), la1)
	sameLines(t, "hub and other team", hubLines(t, h, "cd23"), b1.lines(t))

	var got *domain.TourStop
	for _, l := range la1 {
		if strings.Contains(l, stop.ID.String()) {
			r := struct{ Lieu, HeureDebut, HeureFin string }{}
			_ = r
			it, err := a1.st.Get(context.Background(), stop.ID)
			if err != nil {
				t.Fatal(err)
			}
			got = it.Record.(*domain.TourStop)
		}
	}
	if got == nil || got.Lieu != e1.Lieu || got.HeureDebut != "09:30" || got.HeureFin != "11:45" {
		t.Fatalf("field-level merge: %+v", got)
	}
	// The other team has none of cd88's records.
	for _, l := range b1.lines(t) {
		for _, own := range la1 {
			if l == own {
				t.Fatalf("team cd23 holds a cd88 record: %s", l)
			}
		}
	}
	if len(la1) != len(records(60, 1))+len(records(40, 2))+len(records(10, 4))+1 {
		t.Fatalf("team cd88 has %d records", len(la1))
	}
	// hub stats agree.
	code, out := h.cli(t, "stats", "--json")
	if code != 0 || !strings.Contains(out, `"cd88"`) || !strings.Contains(out, `"bus-9"`) {
		t.Fatalf("hub stats: %d %s", code, out)
	}
}
