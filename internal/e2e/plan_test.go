package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/hub/plan"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// run runs a hub or agent command in a child process and returns its
// output, failing the test on a non-zero exit.
func run(t *testing.T, role string, args ...string) string {
	t.Helper()
	out, err := child(role, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", role, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// procAgent is an agent used only through its command line, each command
// a process of its own.
type procAgent struct {
	name, dir string
}

func newProcAgent(t *testing.T, h *testHub, name, team string) procAgent {
	t.Helper()
	a := procAgent{name: name, dir: filepath.Join(t.TempDir(), name)}
	run(t, "agent", "init", "--data", a.dir)
	run(t, "agent", "enroll", "--data", a.dir, h.enrollCode(t, name, team))
	return a
}

func (a procAgent) sync(t *testing.T) { t.Helper(); run(t, "agent", "sync", "--data", a.dir) }

// stops returns the agent's tour stops as `agent list --json` prints
// them, by id, with the lines themselves.
func (a procAgent) stops(t *testing.T) (map[ident.ID]domain.TourStop, map[ident.ID]string) {
	t.Helper()
	out := run(t, "agent", "list", "--data", a.dir, "--kind", "tourstop", "--json")
	stops, lines := map[ident.ID]domain.TourStop{}, map[ident.ID]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var s struct {
			Kind string `json:"kind"`
			domain.TourStop
		}
		if err := json.Unmarshal([]byte(l), &s); err != nil || s.Kind != "tourstop" {
			t.Fatalf("%s: list line %q: %v", a.name, l, err)
		}
		stops[s.ID], lines[s.ID] = s.TourStop, l
	}
	return stops, lines
}

// planAdd plans a stop with `hub plan add` in a process of its own,
// beside the running hub, and returns it.
func planAdd(t *testing.T, hubDir, team, vehicle, date, start, end, place, commune string) domain.TourStop {
	t.Helper()
	out := run(t, "hub", "plan", "add", "--data", hubDir, "--team", team, "--vehicle", vehicle, "--date", date,
		"--start", start, "--end", end, "--place", place, "--commune", commune, "--json")
	var s domain.TourStop
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.ID.IsZero() {
		t.Fatalf("hub plan add printed %q: %v", out, err)
	}
	return s
}

// planList is `hub plan list --json`.
func planList(t *testing.T, hubDir string, args ...string) (map[ident.ID]plan.Stop, []plan.VehicleSummary) {
	t.Helper()
	out := run(t, "hub", append([]string{"plan", "list", "--data", hubDir, "--json"}, args...)...)
	var v struct {
		Stops    []plan.Stop
		Vehicles []plan.VehicleSummary
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("hub plan list printed %q: %v", out, err)
	}
	m := map[ident.ID]plan.Stop{}
	for _, s := range v.Stops {
		m[s.ID] = s
	}
	return m, v.Vehicles
}

// A coordinator plans stops with `hub plan add` beside a running hub; the
// team's agents receive them at their next sync, another team's do not;
// a mediator marks one made and records an activity at the other, and
// `hub plan list` shows planned vs made; a cancellation reaches the
// agents too. Hub, CLI commands and agents are all separate processes on
// loopback.
func TestPlanReachesTeamAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; run without -short")
	}
	hp := &hubProc{dir: t.TempDir(), addr: freePort(t)}
	hp.start(t)
	defer hp.kill()
	h := &testHub{t: t, dir: hp.dir}
	a := newProcAgent(t, h, "bus-1", "cd88")
	b := newProcAgent(t, h, "bus-9", "cd23")

	today := time.Now().Format(domain.DateLayout)
	tomorrow := time.Now().AddDate(0, 0, 1).Format(domain.DateLayout)
	s1 := planAdd(t, hp.dir, "cd88", "Numéribus 1", today, "09:00", "12:00", "Place de la mairie", "88413")
	s2 := planAdd(t, hp.dir, "cd88", "Numéribus 1", tomorrow, "14:00", "17:00", "Salle des fêtes", "88160")
	s3 := planAdd(t, hp.dir, "cd23", "Numéribus 9", today, "09:00", "12:00", "Place du marché", "23096")

	a.sync(t)
	b.sync(t)
	got, lines := a.stops(t)
	if len(got) != 2 || got[s1.ID] != s1 || got[s2.ID] != s2 || got[s1.ID].Equipe != "cd88" {
		t.Fatalf("team cd88's agent holds %+v, want %+v and %+v", got, s1, s2)
	}
	if gotB, _ := b.stops(t); len(gotB) != 1 || gotB[s3.ID] != s3 {
		t.Fatalf("team cd23's agent holds %+v, want only its own stop %+v", gotB, s3)
	}

	// The mediator of bus-1 marks the first stop made (the line as listed,
	// realise true) and records an activity at the second.
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[s1.ID]), &line); err != nil {
		t.Fatal(err)
	}
	line["realise"] = true
	made, _ := json.Marshal(line)
	activity := `{"kind":"activity","type":"collectif","date":"` + tomorrow + `","duree":90,"type_lieu":"lieu_activite","commune":"88160",` +
		`"arret":"` + s2.ID.String() + `","thematiques":["securite_numerique"],"titre_atelier":"Sécuriser ses comptes","niveau":"debutant","participants":{"total":6}}`
	file := filepath.Join(t.TempDir(), "terrain.jsonl")
	if err := os.WriteFile(file, []byte(string(made)+"\n"+activity+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "agent", "import", "--data", a.dir, file)
	a.sync(t)

	stops, vehicles := planList(t, hp.dir)
	if len(stops) != 3 {
		t.Fatalf("hub plan list: %d stops, want 3", len(stops))
	}
	if p := stops[s1.ID]; !p.Made || !p.Realise || p.Activities != 0 || !p.FromHub || p.Team != "cd88" {
		t.Errorf("stop marked made: %+v", p)
	}
	if p := stops[s2.ID]; !p.Made || p.Realise || p.Activities != 1 {
		t.Errorf("stop with an activity: %+v", p)
	}
	if p := stops[s3.ID]; p.Made || p.Team != "cd23" {
		t.Errorf("stop of cd23: %+v", p)
	}
	want := []plan.VehicleSummary{
		{Team: "cd23", Vehicle: "Numéribus 9", Planned: 1, Made: 0, Communes: []string{}},
		{Team: "cd88", Vehicle: "Numéribus 1", Planned: 2, Made: 2, Communes: []string{"88160", "88413"}},
	}
	if len(vehicles) != 2 {
		t.Fatalf("per vehicle: %+v", vehicles)
	}
	for i := range want {
		if g := vehicles[i]; g.Team != want[i].Team || g.Vehicle != want[i].Vehicle || g.Planned != want[i].Planned || g.Made != want[i].Made || !slices.Equal(g.Communes, want[i].Communes) {
			t.Errorf("vehicle line %d: %+v, want %+v", i, g, want[i])
		}
	}
	if only, _ := planList(t, hp.dir, "--team", "cd88", "--from", tomorrow, "--to", tomorrow); len(only) != 1 || only[s2.ID].ID != s2.ID {
		t.Errorf("filtered list: %+v", only)
	}

	// The hub's own device is not listed among the laptops.
	if out := run(t, "hub", "devices", "--data", hp.dir, "--json"); strings.Contains(out, "(hub)") || strings.Count(out, `"Name"`) != 2 {
		t.Errorf("hub devices: %s", out)
	}

	// Cancelling reaches the agent as a tombstone.
	run(t, "hub", "plan", "cancel", "--data", hp.dir, "--id", s2.ID.String())
	a.sync(t)
	if got, _ := a.stops(t); len(got) != 1 || !got[s1.ID].Realise {
		t.Fatalf("after cancelling, cd88's agent holds %+v", got)
	}
	if stops, _ := planList(t, hp.dir, "--team", "cd88"); len(stops) != 1 {
		t.Fatalf("hub plan list after cancel: %+v", stops)
	}

	// And the agent's store holds the plan itself, as the UI reads it.
	ctx := context.Background()
	st, err := store.Open(ctx, a.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Unlock(ctx, []byte(pass)); err != nil {
		t.Fatal(err)
	}
	it, err := st.Get(ctx, s1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ts, ok := it.Record.(*domain.TourStop); !ok || ts.Date != today || ts.Lieu != s1.Lieu || !ts.Realise {
		t.Fatalf("agent store: %+v", it.Record)
	}
	if it, err := st.Get(ctx, s2.ID); err == nil && !it.Deleted {
		t.Fatalf("cancelled stop still live on the agent: %+v", it)
	}
}
