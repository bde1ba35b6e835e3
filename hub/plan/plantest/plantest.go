// Package plantest is the conformance suite of the hub's planning stores:
// what the dashboard's Planner and `hub plan` rely on, whichever database
// holds the hub (hub/store/sqlite, hub/store/postgres). Each backend runs
// it from its own tests:
//
//	func TestPlanConformance(t *testing.T) {
//		plantest.Run(t, func(t *testing.T) (plantest.Store, plantest.Reopen) { … })
//	}
//
// It checks behaviour through the store's public methods only: planned
// stops become the hub device's changes in the team's log, the hub's own
// device row stays out of sight, the planning rules refuse what they
// must, cancelling is a tombstone, and "planned vs made" counts right.
package plantest

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"numeribus/hub/plan"
	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// Store is a hub store that plans: the sync store the agents pull from,
// the planning methods, and Record to look at a merged record.
type Store interface {
	store.Store
	PlanStops(ctx context.Context, team string, stops []domain.TourStop, now time.Time) ([]domain.TourStop, error)
	CancelStop(ctx context.Context, team string, id ident.ID, now time.Time) error
	PlannedStops(ctx context.Context, f plan.Filter) ([]plan.Stop, error)
	HubDeviceID(ctx context.Context) (string, error)
	Record(ctx context.Context, id ident.ID) (domain.Kind, string, *merge.State, error)
}

// Reopen opens another instance of a store over the same data: a hub
// restarted, or a second hub process.
type Reopen func(t *testing.T) Store

// Open returns a new, empty store and how to reopen it. The suite closes
// what both return.
type Open func(t *testing.T) (Store, Reopen)

// T0 is the suite's "now": a Monday morning of the plans it makes.
var T0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Run runs the suite, each test on a new store.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"ReachesItsTeamOnly", testReachesItsTeamOnly},
		{"SeqAndClockMonotonicAcrossRestart", testMonotonicAcrossRestart},
		{"MoveMergesWithAgentEdit", testMoveMergesWithAgentEdit},
		{"Cancel", testCancel},
		{"HubDeviceHidden", testHubDeviceHidden},
		{"HubDeviceCreatedByFirstPlan", testHubDeviceCreatedByFirstPlan},
		{"Rules", testRules},
		{"GivenIDCreatesOnce", testGivenIDCreatesOnce},
		{"MadeAndSummary", testMadeAndSummary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, reopen := open(t)
			e := &env{T: t, ctx: context.Background(), reopen: reopen}
			e.track(s)
			tc.fn(e)
		})
	}
}

// env is one test's store, which a test may restart.
type env struct {
	*testing.T
	ctx    context.Context
	s      Store
	reopen Reopen
	close  func() // closes s, once
}

// track makes s the test's store and closes it when the test ends.
func (e *env) track(s Store) {
	var once sync.Once
	closeS := func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				e.Errorf("Close: %v", err)
			}
		})
	}
	e.s, e.close = s, closeS
	e.Cleanup(closeS)
}

// restart closes the store and opens it again over the same data.
func (e *env) restart() {
	e.Helper()
	e.close()
	e.track(e.reopen(e.T))
}

// Enroll registers a device named name in team; the suite's and the
// backends' own planning tests use it.
func Enroll(t testing.TB, s store.Store, name, team string) store.Device {
	t.Helper()
	var tok [32]byte
	rand.Read(tok[:])
	ctx := context.Background()
	if err := s.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: T0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: []byte("dk"), PushKey: []byte("pk")}, T0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Planned is a stop as a coordinator types it.
func Planned(vehicle, date, start, end, lieu, commune string) domain.TourStop {
	return domain.TourStop{Vehicule: vehicle, Date: date, HeureDebut: start, HeureFin: end, Lieu: lieu, Commune: commune}
}

// Pull returns every change team may pull, except excludeDevice's, their
// fields decoded.
func Pull(t testing.TB, s store.Store, team, excludeDevice string) []store.Logged {
	t.Helper()
	cs, _, more, err := s.ChangesSince(context.Background(), team, excludeDevice, 0, 1<<20)
	if err != nil || more {
		t.Fatalf("ChangesSince(%s): more %v, %v", team, more, err)
	}
	if err := store.DecodeLogged(cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// decodeStop decodes a logged tour stop change's fields.
func decodeStop(t testing.TB, l store.Logged) *domain.TourStop {
	t.Helper()
	r, err := change.Decode(l.Kind, l.ID, l.Fields)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*domain.TourStop)
}

// A plan enters the hub's change log as the hub device's changes, for its
// team only: the team's agents pull it, another team's do not.
func testReachesItsTeamOnly(e *env) {
	s := e.s
	a := Enroll(e, s, "bus-1", "cd88")
	b := Enroll(e, s, "bus-9", "cd23")
	got, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{
		Planned("Numéribus 1", "2026-03-02", "09:00", "12:00", "Place de la mairie", "88413"),
		Planned("Numéribus 1", "02/03/2026", "14:00", "17:00", "Salle des fêtes", "88160"),
	}, T0)
	if err != nil {
		e.Fatal(err)
	}
	if len(got) != 2 || got[0].ID.IsZero() || got[1].Date != "2026-03-02" || got[1].Equipe != "cd88" {
		e.Fatalf("stored stops: %+v", got)
	}
	hubID, err := s.HubDeviceID(e.ctx)
	if err != nil || hubID == "" || hubID == a.ID {
		e.Fatalf("hub device id %q, %v", hubID, err)
	}
	cs := Pull(e, s, "cd88", a.ID)
	if len(cs) != 2 {
		e.Fatalf("team cd88 pulls %d changes, want 2", len(cs))
	}
	for i, l := range cs {
		if l.Device != hubID || l.Seq != uint64(i+1) || l.Kind != domain.KindTourStop || l.Op != change.OpUpsert || l.ID != got[i].ID {
			e.Errorf("change %d: device %s seq %d kind %s op %s id %s", i, l.Device, l.Seq, l.Kind, l.Op, l.ID)
		}
		if st := decodeStop(e, l); *st != got[i] {
			e.Errorf("change %d carries %+v, want %+v", i, *st, got[i])
		}
	}
	if cs[1].HLC <= cs[0].HLC || cs[0].HLC < hlc.FromTime(T0) {
		e.Errorf("stamps %s, %s at %s", cs[0].HLC, cs[1].HLC, T0)
	}
	if cs := Pull(e, s, "cd23", b.ID); len(cs) != 0 {
		e.Fatalf("team cd23 pulls %d changes of cd88's plan", len(cs))
	}
	k, team, st, err := s.Record(e.ctx, got[0].ID)
	if err != nil || k != domain.KindTourStop || team != "cd88" || st.IsDeleted() {
		e.Fatalf("record: %s %s %v", k, team, err)
	}
}

// The hub's sequence numbers and stamps keep growing across a restart,
// even when the wall clock went back meanwhile.
func testMonotonicAcrossRestart(e *env) {
	a := Enroll(e, e.s, "bus-1", "cd88")
	if _, err := e.s.PlanStops(e.ctx, "cd88", []domain.TourStop{Planned("N1", "2026-03-02", "09:00", "10:00", "Mairie", "88413")}, T0); err != nil {
		e.Fatal(err)
	}
	first := Pull(e, e.s, "cd88", a.ID)
	e.restart()
	s := e.s
	back := T0.Add(-time.Hour) // the hub's clock was set back
	if _, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{Planned("N1", "2026-03-02", "10:00", "11:00", "Église", "88413")}, back); err != nil {
		e.Fatal(err)
	}
	if err := s.CancelStop(e.ctx, "", first[0].ID, back); err != nil {
		e.Fatal(err)
	}
	cs := Pull(e, s, "cd88", a.ID)
	if len(cs) != 3 {
		e.Fatalf("%d changes, want 3", len(cs))
	}
	for i := 1; i < len(cs); i++ {
		if cs[i].Seq != cs[i-1].Seq+1 || cs[i].HLC <= cs[i-1].HLC || cs[i].Device != cs[0].Device {
			e.Fatalf("change %d: seq %d after %d, stamp %s after %s, device %s", i, cs[i].Seq, cs[i-1].Seq, cs[i].HLC, cs[i-1].HLC, cs[i].Device)
		}
	}
	if d, err := s.Device(e.ctx, cs[0].Device); err != nil || d.HWM != 3 {
		e.Fatalf("hub row hwm %d, %v", d.HWM, err)
	}
}

// PushRealise has an agent mark a stop made, as its store would send it.
func PushRealise(t testing.TB, s store.Store, dev store.Device, seq uint64, id ident.ID, at hlc.Timestamp) {
	t.Helper()
	v, err := change.Marshal(true)
	if err != nil {
		t.Fatal(err)
	}
	f := change.Fields{realiseField(t): v}
	if _, _, err := s.ApplyBatch(context.Background(), dev.ID, []change.Change{{Kind: domain.KindTourStop, ID: id, Op: change.OpUpsert, Fields: f, HLC: at, Seq: seq}}, 10); err != nil {
		t.Fatal(err)
	}
}

// realiseField is TourStop.Realise's field number.
func realiseField(t testing.TB) uint64 {
	for _, f := range domain.Fields(domain.KindTourStop) {
		if f.Name == "realise" {
			return f.Num
		}
	}
	t.Fatal("TourStop has no realise field")
	return 0
}

// An agent's realise and a coordinator's move merge field by field, and a
// move stamps after what the hub merged, even from a laptop whose clock
// runs a day ahead.
func testMoveMergesWithAgentEdit(e *env) {
	s := e.s
	a := Enroll(e, s, "bus-1", "cd88")
	got, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{Planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413")}, T0)
	if err != nil {
		e.Fatal(err)
	}
	ahead := hlc.FromTime(T0.Add(24 * time.Hour))
	PushRealise(e, s, a, 1, got[0].ID, ahead)

	// The dashboard hands back the stop as listed (realise false: it had
	// not pulled the agent's edit), with a new end time.
	moved := got[0]
	moved.HeureFin = "12:30"
	if _, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{moved}, T0.Add(time.Minute)); err != nil {
		e.Fatal(err)
	}
	cs := Pull(e, s, "cd88", a.ID)
	last := cs[len(cs)-1]
	if len(cs) != 2 || len(last.Fields) != 1 || last.HLC <= ahead {
		e.Fatalf("move: %d changes, last sets %v at %s (agent wrote at %s)", len(cs), last.Fields.Nums(), last.HLC, ahead)
	}
	list, err := s.PlannedStops(e.ctx, plan.Filter{Team: "cd88"})
	if err != nil || len(list) != 1 {
		e.Fatalf("planned stops: %v %v", list, err)
	}
	if st := list[0]; !st.Realise || !st.Made || st.HeureFin != "12:30" || !st.FromHub || st.Team != "cd88" {
		e.Fatalf("merged stop: %+v", st)
	}
	// Planning the same again writes nothing.
	if _, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{moved}, T0.Add(2*time.Minute)); err != nil {
		e.Fatal(err)
	}
	if n := len(Pull(e, s, "cd88", a.ID)); n != 2 {
		e.Fatalf("an unchanged plan logged a change: %d", n)
	}
}

// Cancelling is a tombstone the team pulls; it is final and idempotent,
// and limited to the team asked for.
func testCancel(e *env) {
	s := e.s
	a := Enroll(e, s, "bus-1", "cd88")
	Enroll(e, s, "bus-9", "cd23")
	got, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{
		Planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"),
		Planned("N1", "2026-03-03", "09:00", "12:00", "Mairie", "88413"),
	}, T0)
	if err != nil {
		e.Fatal(err)
	}
	if err := s.CancelStop(e.ctx, "cd23", got[0].ID, T0); !errors.Is(err, plan.ErrNotFound) {
		e.Fatalf("cancel from another team: %v", err)
	}
	if err := s.CancelStop(e.ctx, "", ident.New(), T0); !errors.Is(err, plan.ErrNotFound) {
		e.Fatalf("cancel of an unknown id: %v", err)
	}
	if err := s.CancelStop(e.ctx, "", recordActivity(e, s, a), T0); !errors.Is(err, plan.ErrNotFound) {
		e.Fatalf("cancel of a record that is no stop: %v", err)
	}
	if err := s.CancelStop(e.ctx, "cd88", got[0].ID, T0); err != nil {
		e.Fatal(err)
	}
	if err := s.CancelStop(e.ctx, "", got[0].ID, T0); err != nil {
		e.Fatalf("cancelling twice: %v", err)
	}
	cs := Pull(e, s, "cd88", a.ID)
	if len(cs) != 3 || cs[2].Op != change.OpDelete || cs[2].ID != got[0].ID || len(cs[2].Fields) != 0 {
		e.Fatalf("log after cancel: %d changes, last %+v", len(cs), cs[len(cs)-1].Change)
	}
	if _, _, st, _ := s.Record(e.ctx, got[0].ID); st == nil || !st.IsDeleted() {
		e.Fatal("cancelled stop is not a tombstone")
	}
	list, err := s.PlannedStops(e.ctx, plan.Filter{Team: "cd88"})
	if err != nil || len(list) != 1 || list[0].ID != got[1].ID {
		e.Fatalf("live stops after cancel: %+v %v", list, err)
	}
	list, err = s.PlannedStops(e.ctx, plan.Filter{Team: "cd88", Cancelled: true})
	if err != nil || len(list) != 2 || !list[0].Cancelled || list[0].Made {
		e.Fatalf("stops with cancelled ones: %+v %v", list, err)
	}
	moved := got[0]
	moved.Lieu = "Église"
	if _, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{moved}, T0); !errors.Is(err, plan.ErrCancelled) {
		e.Fatalf("moving a cancelled stop: %v", err)
	}
}

// recordActivity has the agent dev record an activity (its first change) and
// returns the activity's id: a record of the team that is no stop.
func recordActivity(e *env, s store.Store, dev store.Device) ident.ID {
	e.Helper()
	c := ActivityAt(e, ident.New(), 1)
	if _, _, err := s.ApplyBatch(e.ctx, dev.ID, []change.Change{c}, 10); err != nil {
		e.Fatal(err)
	}
	return c.ID
}

// The hub's own device row is in no device list or count and can be
// neither revoked nor enrolled; the stops it planned show under its name.
func testHubDeviceHidden(e *env) {
	s := e.s
	Enroll(e, s, "bus-1", "cd88")
	Enroll(e, s, "bus-9", "cd23")
	if _, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{Planned("N1", "2026-03-02", "", "", "Mairie", "88413")}, T0); err != nil {
		e.Fatal(err)
	}
	ds, err := s.Devices(e.ctx)
	if err != nil || len(ds) != 2 || ds[0].Name != "bus-1" || ds[1].Name != "bus-9" {
		e.Fatalf("devices: %+v %v", ds, err)
	}
	st, err := s.Stats(e.ctx)
	if err != nil || st.Devices != 2 || st.Records[domain.KindTourStop] != 1 || st.ByDevice[plan.HubDeviceName][domain.KindTourStop] != 1 || st.ByTeam["cd88"][domain.KindTourStop] != 1 {
		e.Fatalf("stats: %+v %v", st, err)
	}
	if err := s.Revoke(e.ctx, plan.HubDeviceName, T0); !errors.Is(err, store.ErrNoDevice) {
		e.Fatalf("revoking the hub: %v", err)
	}
	if err := s.CreateEnrollment(e.ctx, store.Enrollment{Name: plan.HubDeviceName, Team: "cd88", ExpiresAt: T0.Add(time.Hour)}); err == nil {
		e.Fatal("an enrollment took the hub's name")
	}
	// Nobody authenticates as the hub: its row holds no usable key.
	id, _ := s.HubDeviceID(e.ctx)
	if d, err := s.Device(e.ctx, id); err != nil || len(d.DeviceKey) != 0 || len(d.PushKey) != 0 || d.Name != plan.HubDeviceName {
		e.Fatalf("hub row: %+v %v", d, err)
	}
}

// The hub has no device of its own until it first writes: a refused plan
// creates none. Its id then stays, across restarts.
func testHubDeviceCreatedByFirstPlan(e *env) {
	Enroll(e, e.s, "bus-1", "cd88")
	hubID := func() string {
		e.Helper()
		id, err := e.s.HubDeviceID(e.ctx)
		if err != nil {
			e.Fatal(err)
		}
		return id
	}
	if id := hubID(); id != "" {
		e.Fatalf("hub device %q before any plan", id)
	}
	if _, err := e.s.PlanStops(e.ctx, "cd88", []domain.TourStop{Planned("N1", "2026-03-02", "", "", "", "88413")}, T0); err == nil {
		e.Fatal("a stop without a place was planned")
	}
	if id := hubID(); id != "" {
		e.Fatalf("a refused plan created the hub device %q", id)
	}
	if _, err := e.s.PlanStops(e.ctx, "cd88", []domain.TourStop{Planned("N1", "2026-03-02", "", "", "Mairie", "88413")}, T0); err != nil {
		e.Fatal(err)
	}
	first := hubID()
	e.restart()
	if _, err := e.s.PlanStops(e.ctx, "cd88", []domain.TourStop{Planned("N1", "2026-03-03", "", "", "Mairie", "88413")}, T0); err != nil {
		e.Fatal(err)
	}
	if id := hubID(); first == "" || id != first {
		e.Fatalf("hub device %q, then %q after a restart", first, id)
	}
}

// Every rule is checked, all problems come at once, and a refused plan
// writes nothing.
func testRules(e *env) {
	s := e.s
	a := Enroll(e, s, "bus-1", "cd88")
	ok := Planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413")
	if _, err := s.PlanStops(e.ctx, "cd8", []domain.TourStop{ok}, T0); !errors.Is(err, plan.ErrUnknownTeam) {
		e.Fatalf("misspelt team: %v", err)
	}
	if _, err := s.PlanStops(e.ctx, "", []domain.TourStop{ok}, T0); err == nil {
		e.Fatal("a plan without a team was accepted")
	}
	if _, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{ok}, T0); err != nil {
		e.Fatal(err)
	}
	bad := []domain.TourStop{
		Planned("N1", "2026-03-02", "11:00", "13:00", "Église", "88413"), // overlaps 09:00–12:00
		Planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"), // the same stop again
		Planned("N1", "2026-03-02", "12:00", "13:00", "Marché", "99999"), // no such commune
		{Vehicule: "N1", Date: "2026-03-04", Lieu: "Mairie", Commune: "88413", Realise: true},
		{Vehicule: "N1", Date: "2026-03-05", Lieu: "Mairie", Commune: "88413", Equipe: "cd23"},
		Planned("N2", "2026-03-02", "12:00", "13:00", "Marché", "88413"), // fine alone
	}
	_, err := s.PlanStops(e.ctx, "cd88", bad, T0)
	joined, isJoined := err.(interface{ Unwrap() []error })
	if !isJoined {
		e.Fatalf("a bad plan: %v, want the problems joined", err)
	}
	var problems []string
	for _, err := range joined.Unwrap() {
		var ve *domain.ValidationError
		if !errors.As(err, &ve) {
			e.Fatalf("not a validation error: %v", err)
		}
		for _, p := range ve.Problems {
			problems = append(problems, p.Field)
		}
	}
	slices.Sort(problems)
	if want := []string{"commune", "equipe", "heure_debut", "lieu", "realise"}; !slices.Equal(problems, want) {
		e.Fatalf("problems on %v, want %v: %v", problems, want, err)
	}
	if cs := Pull(e, s, "cd88", a.ID); len(cs) != 1 {
		e.Fatalf("a refused plan logged changes: %d", len(cs))
	}
	// Two stops of one call that overlap each other are refused too.
	pair := []domain.TourStop{
		Planned("N3", "2026-03-02", "09:00", "12:00", "Mairie", "88413"),
		Planned("N3", "2026-03-02", "10:00", "11:00", "Église", "88413"),
	}
	if _, err := s.PlanStops(e.ctx, "cd88", pair, T0); err == nil {
		e.Fatal("two overlapping stops of one call were planned")
	}
	// Back to back is no overlap.
	if _, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{Planned("N1", "2026-03-02", "12:00", "13:00", "Marché", "88413")}, T0); err != nil {
		e.Fatalf("back-to-back stops: %v", err)
	}
}

// A stop given an id the hub does not hold is created under it, once: a
// retried call finds it and changes nothing. The id of a record that is
// no stop of the team is refused.
func testGivenIDCreatesOnce(e *env) {
	s := e.s
	a := Enroll(e, s, "bus-1", "cd88")
	Enroll(e, s, "bus-9", "cd23")
	stop := Planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413")
	stop.ID = ident.New()
	for range 2 {
		got, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{stop}, T0)
		if err != nil || got[0].ID != stop.ID {
			e.Fatalf("planning under a given id: %+v %v", got, err)
		}
	}
	if cs := Pull(e, s, "cd88", a.ID); len(cs) != 1 || cs[0].ID != stop.ID {
		e.Fatalf("a retried plan logged %d changes", len(cs))
	}
	if _, err := s.PlanStops(e.ctx, "cd23", []domain.TourStop{stop}, T0); !errors.Is(err, plan.ErrNotFound) {
		e.Fatalf("another team planning a cd88 stop's id: %v", err)
	}
	other := Planned("N1", "2026-03-09", "", "", "Mairie", "88413")
	other.ID = recordActivity(e, s, a)
	if _, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{other}, T0); !errors.Is(err, plan.ErrNotFound) {
		e.Fatalf("planning a stop under an activity's id: %v", err)
	}
}

// ActivityAt is an agent's activity recorded at a stop, as change seq.
func ActivityAt(t testing.TB, stop ident.ID, seq uint64) change.Change {
	t.Helper()
	a := &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30, TypeLieu: "lieu_activite",
		Commune: "88413", Thematiques: []string{"email"}, Arret: &stop}
	f, err := change.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	return change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f, HLC: hlc.FromTime(T0.Add(time.Hour)) + hlc.Timestamp(seq), Seq: seq}
}

// A stop is made when an activity refers to it or when the mediators
// marked it; the summary counts per vehicle and lists communes reached.
func testMadeAndSummary(e *env) {
	s := e.s
	a := Enroll(e, s, "bus-1", "cd88")
	Enroll(e, s, "bus-9", "cd23")
	got, err := s.PlanStops(e.ctx, "cd88", []domain.TourStop{
		Planned("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"),
		Planned("N1", "2026-03-02", "14:00", "17:00", "Salle des fêtes", "88160"),
		Planned("N1", "2026-03-09", "09:00", "12:00", "Mairie", "88413"),
		Planned("N2", "2026-03-02", "09:00", "12:00", "Place", "88465"),
	}, T0)
	if err != nil {
		e.Fatal(err)
	}
	if _, err := s.PlanStops(e.ctx, "cd23", []domain.TourStop{Planned("N1", "2026-03-02", "09:00", "12:00", "Bourg", "23096")}, T0); err != nil {
		e.Fatal(err)
	}
	// Two activities at the first stop; the second stop marked made.
	if _, _, err := s.ApplyBatch(e.ctx, a.ID, []change.Change{ActivityAt(e, got[0].ID, 1), ActivityAt(e, got[0].ID, 2)}, 10); err != nil {
		e.Fatal(err)
	}
	PushRealise(e, s, a, 3, got[1].ID, hlc.FromTime(T0.Add(2*time.Hour)))

	list, err := s.PlannedStops(e.ctx, plan.Filter{Team: "cd88", Vehicle: "N1", From: "2026-03-01", To: "2026-03-08"})
	if err != nil {
		e.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != got[0].ID || list[0].Activities != 2 || !list[0].Made || list[0].Realise ||
		list[1].ID != got[1].ID || !list[1].Made || list[1].Activities != 0 {
		e.Fatalf("N1 in the first week: %+v", list)
	}
	all, err := s.PlannedStops(e.ctx, plan.Filter{})
	if err != nil || len(all) != 5 {
		e.Fatalf("all stops: %d %v", len(all), err)
	}
	sum := plan.Summarize(all)
	want := []plan.VehicleSummary{
		{Team: "cd23", Vehicle: "N1", Planned: 1, Made: 0, Communes: []string{}},
		{Team: "cd88", Vehicle: "N1", Planned: 3, Made: 2, Communes: []string{"88160", "88413"}},
		{Team: "cd88", Vehicle: "N2", Planned: 1, Made: 0, Communes: []string{}},
	}
	if len(sum) != len(want) {
		e.Fatalf("summary %+v", sum)
	}
	for i := range want {
		if g := sum[i]; g.Team != want[i].Team || g.Vehicle != want[i].Vehicle || g.Planned != want[i].Planned || g.Made != want[i].Made || !slices.Equal(g.Communes, want[i].Communes) {
			e.Errorf("summary line %d: %+v, want %+v", i, g, want[i])
		}
	}
	if _, err := s.PlannedStops(e.ctx, plan.Filter{From: "2026-03-09", To: "2026-03-01"}); err == nil {
		e.Fatal("a filter ending before it starts was accepted")
	}
}
