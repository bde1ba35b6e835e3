package dashboard

import (
	"context"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// The seeded dataset: two teams in two départements, with numbers that
// tell them apart. In Meurthe-et-Moselle (54, team cd54, vehicle
// "Numéribus 54"): in March 2026, 3 individual sessions in Nancy
// (54395) of 30 minutes each and 1 workshop of 12 participants in
// Vandœuvre-lès-Nancy (54547) of 90 minutes; in May 2026, 2 individual
// sessions in Nancy of 60 minutes. In the Vosges (88, team cd88,
// vehicle "Numéribus 88"): in April 2026, 1 workshop of 41 participants
// in Épinal (88160) of 120 minutes and 4 individual sessions of 45
// minutes in Épinal.
//
// So, for March–May 2026: 54 has 6 activities and 5+12 = 17
// accompagnements; 88 has 5 activities and 4+41 = 45 accompagnements;
// together 11 and 62. In March–April 2026 only: 54 has 4 activities and
// 15 accompagnements.
const (
	seed54Activities = 6
	seed54Acc        = 17
	seed88Activities = 5
	seed88Acc        = 45
)

// seedActivity is a compact description of one seeded activity.
type seedActivity struct {
	date, commune, typ string
	minutes, people    int
	theme              string
}

var seed54 = []seedActivity{
	{"2026-03-03", "54395", "individuel", 30, 1, "email"},
	{"2026-03-10", "54395", "individuel", 30, 1, "email"},
	{"2026-03-17", "54395", "individuel", 30, 1, "aide_aux_demarches_administratives"},
	{"2026-03-24", "54547", "collectif", 90, 12, "securite_numerique"},
	{"2026-05-05", "54395", "individuel", 60, 1, "navigation_sur_internet"},
	{"2026-05-12", "54395", "individuel", 60, 1, "email"},
}

var seed88 = []seedActivity{
	{"2026-04-07", "88160", "collectif", 120, 41, "intelligence_artificielle"},
	{"2026-04-08", "88160", "individuel", 45, 1, "sante"},
	{"2026-04-09", "88160", "individuel", 45, 1, "sante"},
	{"2026-04-14", "88160", "individuel", 45, 1, "banque_et_achats_en_ligne"},
	{"2026-04-15", "88160", "individuel", 45, 1, "sante"},
}

// seed enrolls one device per team and pushes the activities through
// ApplyBatch, as an agent's sync would, so that whatever the hub derives
// from them (the report facts) is derived the production way.
func seed(t testing.TB, st store.Store) (bus54, bus88 store.Device) {
	t.Helper()
	bus54 = enrollDevice(t, st, "bus-54", "cd54", testNow.Add(-120*24*time.Hour))
	bus88 = enrollDevice(t, st, "bus-88", "cd88", testNow.Add(-120*24*time.Hour))
	push(t, st, bus54, "Numéribus 54", "Camille Martin", seed54)
	push(t, st, bus88, "Numéribus 88", "Luc Petitjean", seed88)
	return bus54, bus88
}

func push(t testing.TB, st store.Store, d store.Device, vehicle, mediator string, acts []seedActivity) {
	t.Helper()
	pushFrom(t, st, d, vehicle, mediator, acts, 1)
}

// pushFrom is push with the device's sequence numbers starting at
// first: a second push from one device continues its numbering.
func pushFrom(t testing.TB, st store.Store, d store.Device, vehicle, mediator string, acts []seedActivity, first int) {
	t.Helper()
	var cs []change.Change
	for i, s := range acts {
		day, err := time.Parse(domain.DateLayout, s.date)
		if err != nil {
			t.Fatal(err)
		}
		a := &domain.Activity{ID: ident.NewAt(day.Add(9 * time.Hour)), Type: s.typ, Date: s.date, Duree: s.minutes,
			TypeLieu: "lieu_activite", Commune: s.commune, Thematiques: []string{s.theme}, Mediateur: mediator, Vehicule: vehicle,
			Materiel: []string{"ordinateur"}}
		if s.typ == "individuel" {
			a.Autonomie = "partiellement_autonome"
		} else {
			a.TitreAtelier, a.Niveau = "Atelier", "debutant"
			a.Participants = &domain.Participants{Total: s.people}
		}
		f, err := change.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f,
			HLC: hlc.FromTime(day.Add(10*time.Hour)) + hlc.Timestamp(i), Seq: uint64(first + i)})
	}
	if _, _, err := st.ApplyBatch(context.Background(), d.ID, cs, 1000); err != nil {
		t.Fatal(err)
	}
}

// seedMore adds, for the overview's comparisons, to what seed pushed
// from bus-54: the same months of 2025 (an individual session of 30
// minutes in Nancy on 10 March 2025 and a workshop of 8 in Nancy on
// 15 April 2025, so 2 activities and 9 accompagnements a year before
// March–May 2026), and in April 2026 one session of another vehicle
// ("Numéribus 54 bis", mediator Léa Durand) in Nancy. March–May 2026 in
// Meurthe-et-Moselle then has 7 activities and 18 accompagnements.
func seedMore(t testing.TB, st store.Store, bus54 store.Device) {
	t.Helper()
	pushFrom(t, st, bus54, "Numéribus 54", "Camille Martin", []seedActivity{
		{"2025-03-10", "54395", "individuel", 30, 1, "email"},
		{"2025-04-15", "54395", "collectif", 60, 8, "email"},
	}, len(seed54)+1)
	pushFrom(t, st, bus54, "Numéribus 54 bis", "Léa Durand", []seedActivity{
		{"2026-04-20", "54395", "individuel", 30, 1, "sante"},
	}, len(seed54)+3)
}
