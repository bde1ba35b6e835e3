package sqlite

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"numeribus/hub/plan"
	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

func planned(vehicle, date, start, end, lieu, commune string) domain.TourStop {
	return domain.TourStop{Vehicule: vehicle, Date: date, HeureDebut: start, HeureFin: end, Lieu: lieu, Commune: commune}
}

// pull returns every change team may pull, except excludeDevice's.
func pull(t *testing.T, s *Store, team, excludeDevice string) []store.Logged {
	t.Helper()
	cs, _, more, err := s.ChangesSince(context.Background(), team, excludeDevice, 0, 1<<20)
	if err != nil || more {
		t.Fatalf("ChangesSince(%s): more %v, %v", team, more, err)
	}
	return cs
}

// decodeStop decodes a logged tour stop change's fields.
func decodeStop(t *testing.T, l store.Logged) *domain.TourStop {
	t.Helper()
	r, err := change.Decode(l.Kind, l.ID, l.Fields)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*domain.TourStop)
}

// A plan enters the hub's change log as the hub device's changes, for its
// team only: the team's agents pull it, another team's do not.
func TestPlanReachesItsTeamOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	a := enroll(t, s, "bus-1", "cd88")
	b := enroll(t, s, "bus-9", "cd23")
	got, err := s.PlanStops(ctx, "cd88", []domain.TourStop{
		planned("Numéribus 1", "2026-03-02", "09:00", "12:00", "Place de la mairie", "88413"),
		planned("Numéribus 1", "02/03/2026", "14:00", "17:00", "Salle des fêtes", "88160"),
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID.IsZero() || got[1].Date != "2026-03-02" || got[1].Equipe != "cd88" {
		t.Fatalf("stored stops: %+v", got)
	}
	hubID, err := s.HubDeviceID(ctx)
	if err != nil || hubID == "" || hubID == a.ID {
		t.Fatalf("hub device id %q, %v", hubID, err)
	}
	cs := pull(t, s, "cd88", a.ID)
	if len(cs) != 2 {
		t.Fatalf("team cd88 pulls %d changes, want 2", len(cs))
	}
	for i, l := range cs {
		if l.Device != hubID || l.Seq != uint64(i+1) || l.Kind != domain.KindTourStop || l.Op != change.OpUpsert || l.ID != got[i].ID {
			t.Errorf("change %d: device %s seq %d kind %s op %s id %s", i, l.Device, l.Seq, l.Kind, l.Op, l.ID)
		}
		if st := decodeStop(t, l); *st != got[i] {
			t.Errorf("change %d carries %+v, want %+v", i, *st, got[i])
		}
	}
	if cs[1].HLC <= cs[0].HLC || cs[0].HLC < hlc.FromTime(t0) {
		t.Errorf("stamps %s, %s at %s", cs[0].HLC, cs[1].HLC, t0)
	}
	if cs := pull(t, s, "cd23", b.ID); len(cs) != 0 {
		t.Fatalf("team cd23 pulls %d changes of cd88's plan", len(cs))
	}
	k, team, st, err := s.Record(ctx, got[0].ID)
	if err != nil || k != domain.KindTourStop || team != "cd88" || st.IsDeleted() {
		t.Fatalf("record: %s %s %v", k, team, err)
	}
}

// The hub's sequence numbers and stamps keep growing across a restart,
// even when the wall clock went back meanwhile.
func TestPlanSeqAndClockMonotonicAcrossRestart(t *testing.T) {
	ctx := context.Background()
	s, p := openTemp(t)
	a := enroll(t, s, "bus-1", "cd88")
	if _, err := s.PlanStops(ctx, "cd88", []domain.TourStop{planned("N1", "2026-03-02", "09:00", "10:00", "Mairie", "88413")}, t0); err != nil {
		t.Fatal(err)
	}
	first := pull(t, s, "cd88", a.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	back := t0.Add(-time.Hour) // the hub's clock was set back
	if _, err := s.PlanStops(ctx, "cd88", []domain.TourStop{planned("N1", "2026-03-02", "10:00", "11:00", "Église", "88413")}, back); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelStop(ctx, "", first[0].ID, back); err != nil {
		t.Fatal(err)
	}
	cs := pull(t, s, "cd88", a.ID)
	if len(cs) != 3 {
		t.Fatalf("%d changes, want 3", len(cs))
	}
	for i := 1; i < len(cs); i++ {
		if cs[i].Seq != cs[i-1].Seq+1 || cs[i].HLC <= cs[i-1].HLC || cs[i].Device != cs[0].Device {
			t.Fatalf("change %d: seq %d after %d, stamp %s after %s, device %s", i, cs[i].Seq, cs[i-1].Seq, cs[i].HLC, cs[i-1].HLC, cs[i].Device)
		}
	}
	if d, err := device(ctx, s.r, cs[0].Device); err != nil || d.HWM != 3 {
		t.Fatalf("hub row hwm %d, %v", d.HWM, err)
	}
}

// pushRealise has an agent mark a stop made, as its store would send it.
func pushRealise(t *testing.T, s *Store, dev store.Device, seq uint64, id ident.ID, at hlc.Timestamp) {
	t.Helper()
	v, err := change.Marshal(true)
	if err != nil {
		t.Fatal(err)
	}
	f := change.Fields{9: v} // realise
	if _, _, err := s.ApplyBatch(context.Background(), dev.ID, []change.Change{{Kind: domain.KindTourStop, ID: id, Op: change.OpUpsert, Fields: f, HLC: at, Seq: seq}}, 10); err != nil {
		t.Fatal(err)
	}
}

// An agent's realise and a coordinator's move merge field by field, and a
// move stamps after what the hub merged, even from a laptop whose clock
// runs a day ahead.
func TestPlanMoveMergesWithAgentEdit(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	a := enroll(t, s, "bus-1", "cd88")
	got, err := s.PlanStops(ctx, "cd88", []domain.TourStop{planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413")}, t0)
	if err != nil {
		t.Fatal(err)
	}
	ahead := hlc.FromTime(t0.Add(24 * time.Hour))
	pushRealise(t, s, a, 1, got[0].ID, ahead)

	// The dashboard hands back the stop as listed (realise false: it had
	// not pulled the agent's edit), with a new end time.
	moved := got[0]
	moved.HeureFin = "12:30"
	if _, err := s.PlanStops(ctx, "cd88", []domain.TourStop{moved}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	cs := pull(t, s, "cd88", a.ID)
	last := cs[len(cs)-1]
	if len(cs) != 2 || len(last.Fields) != 1 || last.HLC <= ahead {
		t.Fatalf("move: %d changes, last sets %v at %s (agent wrote at %s)", len(cs), last.Fields.Nums(), last.HLC, ahead)
	}
	list, err := s.PlannedStops(ctx, plan.Filter{Team: "cd88"})
	if err != nil || len(list) != 1 {
		t.Fatalf("planned stops: %v %v", list, err)
	}
	if st := list[0]; !st.Realise || !st.Made || st.HeureFin != "12:30" || !st.FromHub || st.Team != "cd88" {
		t.Fatalf("merged stop: %+v", st)
	}
	// Planning the same again writes nothing.
	if _, err := s.PlanStops(ctx, "cd88", []domain.TourStop{moved}, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := len(pull(t, s, "cd88", a.ID)); n != 2 {
		t.Fatalf("an unchanged plan logged a change: %d", n)
	}
}

// Cancelling is a tombstone the team pulls; it is final and idempotent,
// and limited to the team asked for.
func TestCancelStop(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	a := enroll(t, s, "bus-1", "cd88")
	enroll(t, s, "bus-9", "cd23")
	got, err := s.PlanStops(ctx, "cd88", []domain.TourStop{
		planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"),
		planned("N1", "2026-03-03", "09:00", "12:00", "Mairie", "88413"),
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CancelStop(ctx, "cd23", got[0].ID, t0); !errors.Is(err, plan.ErrNotFound) {
		t.Fatalf("cancel from another team: %v", err)
	}
	if err := s.CancelStop(ctx, "", ident.New(), t0); !errors.Is(err, plan.ErrNotFound) {
		t.Fatalf("cancel of an unknown id: %v", err)
	}
	if err := s.CancelStop(ctx, "cd88", got[0].ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelStop(ctx, "", got[0].ID, t0); err != nil {
		t.Fatalf("cancelling twice: %v", err)
	}
	cs := pull(t, s, "cd88", a.ID)
	if len(cs) != 3 || cs[2].Op != change.OpDelete || cs[2].ID != got[0].ID || len(cs[2].Fields) != 0 {
		t.Fatalf("log after cancel: %d changes, last %+v", len(cs), cs[len(cs)-1].Change)
	}
	if _, _, st, _ := s.Record(ctx, got[0].ID); !st.IsDeleted() {
		t.Fatal("cancelled stop is not a tombstone")
	}
	list, err := s.PlannedStops(ctx, plan.Filter{Team: "cd88"})
	if err != nil || len(list) != 1 || list[0].ID != got[1].ID {
		t.Fatalf("live stops after cancel: %+v %v", list, err)
	}
	list, err = s.PlannedStops(ctx, plan.Filter{Team: "cd88", Cancelled: true})
	if err != nil || len(list) != 2 || !list[0].Cancelled || list[0].Made {
		t.Fatalf("stops with cancelled ones: %+v %v", list, err)
	}
	moved := got[0]
	moved.Lieu = "Église"
	if _, err := s.PlanStops(ctx, "cd88", []domain.TourStop{moved}, t0); !errors.Is(err, plan.ErrCancelled) {
		t.Fatalf("moving a cancelled stop: %v", err)
	}
}

// The hub's own device row is in no device list or count and can be
// neither revoked nor enrolled; the stops it planned show under its name.
func TestHubDeviceHidden(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	enroll(t, s, "bus-1", "cd88")
	enroll(t, s, "bus-9", "cd23")
	if _, err := s.PlanStops(ctx, "cd88", []domain.TourStop{planned("N1", "2026-03-02", "", "", "Mairie", "88413")}, t0); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Devices(ctx)
	if err != nil || len(ds) != 2 || ds[0].Name != "bus-1" || ds[1].Name != "bus-9" {
		t.Fatalf("devices: %+v %v", ds, err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Devices != 2 || st.Records[domain.KindTourStop] != 1 || st.ByDevice[HubDeviceName][domain.KindTourStop] != 1 || st.ByTeam["cd88"][domain.KindTourStop] != 1 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	if err := s.Revoke(ctx, HubDeviceName, t0); !errors.Is(err, store.ErrNoDevice) {
		t.Fatalf("revoking the hub: %v", err)
	}
	if err := s.CreateEnrollment(ctx, store.Enrollment{Name: HubDeviceName, Team: "cd88", ExpiresAt: t0.Add(time.Hour)}); err == nil {
		t.Fatal("an enrollment took the hub's name")
	}
	// Nobody authenticates as the hub: its row holds no usable key.
	id, _ := s.HubDeviceID(ctx)
	if d, err := s.Device(ctx, id); err != nil || len(d.DeviceKey) != 0 || len(d.PushKey) != 0 {
		t.Fatalf("hub row keys: %v %v", d, err)
	}
}

// Every rule is checked, all problems come at once, and a refused plan
// writes nothing.
func TestPlanRules(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	a := enroll(t, s, "bus-1", "cd88")
	ok := planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413")
	if _, err := s.PlanStops(ctx, "cd8", []domain.TourStop{ok}, t0); !errors.Is(err, plan.ErrUnknownTeam) {
		t.Fatalf("misspelt team: %v", err)
	}
	if _, err := s.PlanStops(ctx, "cd88", []domain.TourStop{ok}, t0); err != nil {
		t.Fatal(err)
	}
	bad := []domain.TourStop{
		planned("N1", "2026-03-02", "11:00", "13:00", "Église", "88413"), // overlaps 09:00–12:00
		planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"), // the same stop again
		planned("N1", "2026-03-02", "12:00", "13:00", "Marché", "99999"), // no such commune
		{Vehicule: "N1", Date: "2026-03-04", Lieu: "Mairie", Commune: "88413", Realise: true},
		{Vehicule: "N1", Date: "2026-03-05", Lieu: "Mairie", Commune: "88413", Equipe: "cd23"},
		planned("N2", "2026-03-02", "12:00", "13:00", "Marché", "88413"), // fine alone
	}
	_, err := s.PlanStops(ctx, "cd88", bad, t0)
	var problems []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ve *domain.ValidationError
		if !errors.As(e, &ve) {
			t.Fatalf("not a validation error: %v", e)
		}
		for _, p := range ve.Problems {
			problems = append(problems, p.Field)
		}
	}
	slices.Sort(problems)
	if want := []string{"commune", "equipe", "heure_debut", "lieu", "realise"}; !slices.Equal(problems, want) {
		t.Fatalf("problems on %v, want %v: %v", problems, want, err)
	}
	if cs := pull(t, s, "cd88", a.ID); len(cs) != 1 {
		t.Fatalf("a refused plan logged changes: %d", len(cs))
	}
	// Back to back is no overlap.
	if _, err := s.PlanStops(ctx, "cd88", []domain.TourStop{planned("N1", "2026-03-02", "12:00", "13:00", "Marché", "88413")}, t0); err != nil {
		t.Fatalf("back-to-back stops: %v", err)
	}
}

// activityAt is an agent's activity recorded at a stop.
func activityAt(t *testing.T, stop ident.ID, seq uint64) change.Change {
	t.Helper()
	a := &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30, TypeLieu: "lieu_activite",
		Commune: "88413", Thematiques: []string{"email"}, Arret: &stop}
	f, err := change.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	return change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f, HLC: hlc.FromTime(t0.Add(time.Hour)) + hlc.Timestamp(seq), Seq: seq}
}

// A stop is made when an activity refers to it or when the mediators
// marked it; the summary counts per vehicle and lists communes reached.
func TestPlannedStopsMadeAndSummary(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	a := enroll(t, s, "bus-1", "cd88")
	enroll(t, s, "bus-9", "cd23")
	got, err := s.PlanStops(ctx, "cd88", []domain.TourStop{
		planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"),
		planned("N1", "2026-03-02", "14:00", "17:00", "Salle des fêtes", "88160"),
		planned("N1", "2026-03-09", "09:00", "12:00", "Mairie", "88413"),
		planned("N2", "2026-03-02", "09:00", "12:00", "Place", "88465"),
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PlanStops(ctx, "cd23", []domain.TourStop{planned("N1", "2026-03-02", "09:00", "12:00", "Bourg", "23096")}, t0); err != nil {
		t.Fatal(err)
	}
	// Two activities at the first stop; the second stop marked made.
	if _, _, err := s.ApplyBatch(ctx, a.ID, []change.Change{activityAt(t, got[0].ID, 1), activityAt(t, got[0].ID, 2)}, 10); err != nil {
		t.Fatal(err)
	}
	pushRealise(t, s, a, 3, got[1].ID, hlc.FromTime(t0.Add(2*time.Hour)))

	list, err := s.PlannedStops(ctx, plan.Filter{Team: "cd88", Vehicle: "N1", From: "2026-03-01", To: "2026-03-08"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != got[0].ID || list[0].Activities != 2 || !list[0].Made || list[0].Realise ||
		list[1].ID != got[1].ID || !list[1].Made || list[1].Activities != 0 {
		t.Fatalf("N1 in the first week: %+v", list)
	}
	all, err := s.PlannedStops(ctx, plan.Filter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("all stops: %d %v", len(all), err)
	}
	sum := plan.Summarize(all)
	want := []plan.VehicleSummary{
		{Team: "cd23", Vehicle: "N1", Planned: 1, Made: 0, Communes: []string{}},
		{Team: "cd88", Vehicle: "N1", Planned: 3, Made: 2, Communes: []string{"88160", "88413"}},
		{Team: "cd88", Vehicle: "N2", Planned: 1, Made: 0, Communes: []string{}},
	}
	if len(sum) != len(want) {
		t.Fatalf("summary %+v", sum)
	}
	for i := range want {
		if g := sum[i]; g.Team != want[i].Team || g.Vehicle != want[i].Vehicle || g.Planned != want[i].Planned || g.Made != want[i].Made || !slices.Equal(g.Communes, want[i].Communes) {
			t.Errorf("summary line %d: %+v, want %+v", i, g, want[i])
		}
	}
	if _, err := s.PlannedStops(ctx, plan.Filter{From: "2026-03-09", To: "2026-03-01"}); err == nil {
		t.Fatal("a filter ending before it starts was accepted")
	}
}
