// Package sourcetest is the conformance suite of hub/report.Source: every
// store that keeps the dashboard's facts (SQLite, PostgreSQL) runs it from
// its own tests, so that the indicators, the coverage, the vehicles and
// the exports come out the same whichever database the hub runs on.
//
//	func TestSource(t *testing.T) {
//		sourcetest.Run(t, func(t *testing.T) sourcetest.Backend { return openTemp(t) })
//	}
//
// The suite feeds a small hub through ApplyBatch (the sync's only write
// path) and checks indicators worked out by hand, read back through the
// Source only: the facts must follow the change log, updates, deletions
// and erasures included. What is not behind an interface (a backfill, a
// background follower, several processes) stays in each backend's tests,
// which may reuse [Seed] for it.
package sourcetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"numeribus/hub/report"
	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// Backend is what the suite needs of a store: the sync's write path, to
// feed it changes, and the Source its reports read.
type Backend interface {
	store.Store
	report.Source
}

// Planner is implemented by backends that plan tour stops at the hub
// (hub/plan): the suite then checks that hub-authored changes reach the
// facts too.
type Planner interface {
	PlanStops(ctx context.Context, team string, stops []domain.TourStop, now time.Time) ([]domain.TourStop, error)
}

// Run runs the suite. open must return a new, empty backend; the suite
// closes it.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, *World)
	}{
		{"OverviewByHand", testOverviewByHand},
		{"ScopeIntersection", testScopeIntersection},
		{"FollowUpdatesDeletesErasure", testFollowUpdatesDeletesErasure},
		{"ActivitiesCSV", testActivitiesCSV},
		{"ActivitiesXLSX", testActivitiesXLSX},
		{"LaCoopXLSX", testLaCoopXLSX},
		{"NewPeopleFollowDeletes", testNewPeopleFollowDeletes},
		{"CoverageAndVehicles", testCoverageAndVehicles},
		{"UnknownCommunesOnly", testUnknownCommunesOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, Seed(t, b))
		})
	}
}

// World is a small hub fed through ApplyBatch, whose indicators are
// worked out by hand in the suite.
type World struct {
	B            Backend
	Dev54, Dev88 string // devices bus-54 (team cd54) and bus-88 (team cd88)
	B1, B2       ident.ID
	A1, A2, A3   ident.ID
	A4, A5, A6   ident.ID
	seq          map[string]uint64
}

// T0 is the world's clock: changes are stamped a minute apart from it.
var T0 = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

// Year2026 is the filter of the seeded year.
var Year2026 = report.Filter{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}

// NewID returns the i-th record id of the world: the same ids on every run.
func NewID(i int) ident.ID {
	return ident.FromRand(T0, func() uint64 { return uint64(i) * 0x9E3779B97F4A7C15 })
}

// Apply merges one change of r (op) from device dev, the next seq of dev.
func (w *World) Apply(t *testing.T, dev string, op change.Op, r domain.Record) {
	t.Helper()
	var f change.Fields
	if op == change.OpUpsert {
		r.Normalize()
		var err error
		if f, err = change.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	w.seq[dev]++
	c := change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: op, Fields: f,
		HLC: hlc.FromTime(T0.Add(time.Duration(w.seq[dev]) * time.Minute)), Seq: w.seq[dev]}
	if _, n, err := w.B.ApplyBatch(context.Background(), dev, []change.Change{c}, 100); err != nil || n != 1 {
		t.Fatalf("apply %s %s: applied %d, %v", op, r.Kind(), n, err)
	}
}

// enroll registers a device of team in b.
func enroll(t *testing.T, b Backend, name, team string) string {
	t.Helper()
	ctx := context.Background()
	tok := [32]byte{}
	copy(tok[:], name)
	if err := b.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: T0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := b.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: []byte("dk"), PushKey: []byte("pk")}, T0)
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// Seed feeds b (empty) the world: team cd54 (device bus-54) and cd88
// (bus-88).
//
//	B1 identified, feminin, 40-59, retraite, Nancy, premier 2026-03-02
//	B2 anonymous, masculin
//	A1 2026-03-02 individuel 45 min Nancy, B1, email+navigation, ordinateur, autonome, oriented (administration), pass 2, notes
//	A2 2026-03-10 individuel 120 min Nancy, B2, démarches (logement), caf, partiellement_autonome
//	A3 2026-04-01 collectif 90 min Lunéville, 8 participants (3 already helped, 5 f 2 m), B1 followed
//	A4 2025-06-15 individuel 30 min Nancy, B1 (the previous year)
//	A5 2026-05-01 individuel 30 min Épinal (88), team cd88
//	A6 2026-05-02 individuel 20 min à distance, no commune
func Seed(t *testing.T, b Backend) *World {
	t.Helper()
	w := &World{B: b, seq: map[string]uint64{}}
	w.Dev54 = enroll(t, b, "bus-54", "cd54")
	w.Dev88 = enroll(t, b, "bus-88", "cd88")
	w.B1, w.B2 = NewID(1), NewID(2)
	w.A1, w.A2, w.A3, w.A4, w.A5, w.A6 = NewID(11), NewID(12), NewID(13), NewID(14), NewID(15), NewID(16)
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Beneficiary{ID: w.B1, Prenom: "Jeanne", Nom: "Martinez-Secret", Genre: "feminin",
		TrancheAge: "quarante_cinquante_neuf", StatutSocial: "retraite", Commune: "54395", PremierAccompagnement: "2026-03-02"})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Beneficiary{ID: w.B2, Genre: "masculin", Commune: "54329"})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: w.A1, Type: "individuel", Date: "2026-03-02", Duree: 45,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email", "navigation_sur_internet"},
		Materiel: []string{"ordinateur"}, Beneficiaire: &w.B1, Autonomie: "autonome", PassNumerique: 2,
		Orientation: &domain.Orientation{Oriente: true, StructureDeRedirection: "administration"},
		Vehicule:    "Numéribus 3", Mediateur: "Camille D.", Notes: "SECRET-NOTE-XYZ; a ; \"quoted\""})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: w.A2, Type: "individuel", Date: "2026-03-10", Duree: 120,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{domain.ThemeDemarches}, Demarches: []string{"logement"},
		StructurePartenaire: "caf", Beneficiaire: &w.B2, Autonomie: "partiellement_autonome", Vehicule: "Numéribus 3", Mediateur: "Léo M."})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: w.A3, Type: "collectif", Date: "2026-04-01", Duree: 90,
		TypeLieu: "lieu_activite", Commune: "54329", Thematiques: []string{"securite_numerique"}, Niveau: "debutant",
		Participants: &domain.Participants{Total: 8, DejaAccompagne: 3, Genre: map[string]int{"feminin": 5, "masculin": 2},
			Beneficiaires: []ident.ID{w.B1}}, Vehicule: "Numéribus 3", Mediateur: "Camille D."})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: w.A4, Type: "individuel", Date: "2025-06-15", Duree: 30,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email"}, Beneficiaire: &w.B1})
	w.Apply(t, w.Dev88, change.OpUpsert, &domain.Activity{ID: w.A5, Type: "individuel", Date: "2026-05-01", Duree: 30,
		TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"email"}})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: w.A6, Type: "individuel", Date: "2026-05-02", Duree: 20,
		TypeLieu: "a_distance", Thematiques: []string{"email"}})
	return w
}

// MustTerritory parses a territory ("dep:54").
func MustTerritory(t *testing.T, s string) report.Territory {
	t.Helper()
	x, err := report.ParseTerritory(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// Overview computes the overview of f within sc from src.
func Overview(t *testing.T, src report.Source, f report.Filter, sc report.Scope) *report.Overview {
	t.Helper()
	ov, err := report.ComputeOverview(context.Background(), src, f, sc, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ov
}

// CountOf returns the count of code in cs, -1 when absent.
func CountOf(cs []report.Count, code string) int {
	for _, c := range cs {
		if c.Code == code {
			return c.Count
		}
	}
	return -1
}

// dep54 is the 2026 filter on département 54.
func dep54(t *testing.T) report.Filter {
	f := Year2026
	f.Territory = MustTerritory(t, "dep:54")
	return f
}

func testOverviewByHand(t *testing.T, w *World) {
	f := dep54(t)
	ov := Overview(t, w.B, f, report.Scope{})
	h := ov.Headline
	if got, want := h, (report.Headline{From: "2026-01-01", To: "2026-12-31", Accompagnements: 10, Activites: 3, Individuels: 2,
		Collectifs: 1, Beneficiaires: 2, Minutes: 255, Heures: 4.25, PassNumerique: 2, Communes: 2}); got != want {
		t.Errorf("headline\n got %+v\nwant %+v", got, want)
	}
	if got, want := ov.Previous, (report.Headline{From: "2025-01-01", To: "2025-12-31", Accompagnements: 1, Activites: 1,
		Individuels: 1, Beneficiaires: 1, Minutes: 30, Heures: 0.5, Communes: 1}); got != want {
		t.Errorf("previous\n got %+v\nwant %+v", got, want)
	}
	if got, want := ov.Beneficiaires, (report.Beneficiaires{Distincts: 2, Nouveaux: 1, Suivis: 1, Anonymes: 1,
		ParticipantsAteliers: 8, ParticipantsAnonymes: 7, DejaAccompagnes: 3, Personnes: 9}); got != want {
		t.Errorf("beneficiaires\n got %+v\nwant %+v", got, want)
	}
	for _, c := range []struct {
		name string
		cs   []report.Count
		code string
		want int
	}{
		{"durees", ov.Durees, "moins_30", 0}, {"durees", ov.Durees, "30_60", 1}, {"durees", ov.Durees, "60_120", 1},
		{"durees", ov.Durees, "120_plus", 1},
		{"type", ov.ParType, "individuel", 2}, {"type", ov.ParType, "collectif", 1},
		{"themes", ov.Thematiques, "email", 1}, {"themes", ov.Thematiques, "securite_numerique", 1}, {"themes", ov.Thematiques, "sante", 0},
		{"demarches", ov.Demarches, "logement", 1}, {"partenaires", ov.Partenaires, "caf", 1},
		{"materiel", ov.Materiels, "ordinateur", 1}, {"lieux", ov.TypesLieu, "lieu_activite", 3},
		{"communes", ov.Communes, "54395", 2}, {"communes", ov.Communes, "54329", 1}, {"communes", ov.Communes, "88160", -1},
		{"genres", ov.Genres, "feminin", 6}, {"genres", ov.Genres, "masculin", 3},
		{"ages", ov.TranchesAge, "quarante_cinquante_neuf", 1}, {"ages", ov.TranchesAge, "non_communique", 1},
		{"statuts", ov.StatutsSociaux, "retraite", 1},
		{"residence", ov.CommunesResidence, "54395", 1}, {"residence", ov.CommunesResidence, "54329", 1},
		{"autonomie", ov.Autonomie, "autonome", 1}, {"autonomie", ov.Autonomie, "partiellement_autonome", 1},
		{"niveaux", ov.Niveaux, "debutant", 1},
		{"structures", ov.Orientation.Structures, "administration", 1},
	} {
		if got := CountOf(c.cs, c.code); got != c.want {
			t.Errorf("%s %s = %d, want %d", c.name, c.code, got, c.want)
		}
	}
	if ov.Communes[0].Label != "Nancy" || ov.Communes[0].Accompagnements != 2 || ov.Thematiques[0].Label == "" {
		t.Errorf("labels/order: %+v %+v", ov.Communes, ov.Thematiques[0])
	}
	if o := ov.Orientation; o.Orientes != 1 || o.Individuels != 2 || o.Part != 0.5 {
		t.Errorf("orientation %+v", o)
	}
	if len(ov.Mois) != 12 || ov.Mois[2].Month != "2026-03" || ov.Mois[2].Activites != 2 || ov.Mois[3].Accompagnements != 8 ||
		ov.Mois[2].Label != "mars 2026" || ov.Mois[2].Beneficiaires != 2 {
		t.Errorf("months: %+v", ov.Mois[:4])
	}
	// JSON keys are snake_case and stable.
	b, _ := json.Marshal(ov)
	for _, k := range []string{`"headline":`, `"accompagnements":10`, `"par_type":`, `"communes_residence":`, `"participants_anonymes":7`, `"areas":["dep:54"]`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("JSON lacks %s", k)
		}
	}

	// Without territory: everywhere, the activity without commune included.
	f.Territory = report.Territory{}
	f.Team = "cd54"
	if got := Overview(t, w.B, f, report.Scope{}).Headline.Activites; got != 4 {
		t.Errorf("team cd54 everywhere: %d activities, want 4", got)
	}
	if got := Overview(t, w.B, Year2026, report.Scope{}).Headline.Activites; got != 5 {
		t.Errorf("everything: %d activities, want 5", got)
	}
	f = Year2026
	f.Vehicle = "Numéribus 3"
	f.Mediateur = "Camille D."
	if got := Overview(t, w.B, f, report.Scope{}).Headline; got.Activites != 2 || got.Accompagnements != 9 {
		t.Errorf("vehicle+mediator: %+v", got)
	}
}

func testScopeIntersection(t *testing.T, w *World) {
	ctx := context.Background()
	sc54, err := report.ParseScope([]string{"dep:54"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		territory string
		want      int
		err       error
	}{
		{"", 3, nil},               // the scope's territory
		{"dep:54", 3, nil},         // the same
		{"com:54395", 2, nil},      // inside
		{"epci:245400676", 2, nil}, // Nancy's EPCI
		{"dep:88", 0, report.ErrOutOfScope},
		{"com:88160", 0, report.ErrOutOfScope},
		{"reg:44", 3, nil}, // Grand Est ∩ 54 = 54
	} {
		f := Year2026
		if c.territory != "" {
			f.Territory = MustTerritory(t, c.territory)
		}
		ov, err := report.ComputeOverview(ctx, w.B, f, sc54, report.Options{})
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.territory, err, c.err)
			continue
		}
		if err == nil && ov.Headline.Activites != c.want {
			t.Errorf("%s: %d activities, want %d", c.territory, ov.Headline.Activites, c.want)
		}
		if err == nil {
			if _, err := report.ComputeCoverage(ctx, w.B, f, sc54, report.Options{}); err != nil {
				t.Errorf("%s coverage: %v", c.territory, err)
			}
		}
	}
	// A team scope refuses another team, and the exports refuse too.
	f := Year2026
	f.Team = "cd88"
	if _, err := report.ComputeOverview(ctx, w.B, f, report.Scope{Teams: []string{"cd54"}}, report.Options{}); !errors.Is(err, report.ErrOutOfScope) {
		t.Errorf("team out of scope: %v", err)
	}
	f = Year2026
	f.Territory = MustTerritory(t, "dep:88")
	for name, write := range map[string]func(io.Writer) error{
		"csv": func(w2 io.Writer) error {
			return report.WriteActivitiesCSV(ctx, w2, w.B, f, sc54, report.Options{}, report.ExportInfo{})
		},
		"xlsx": func(w2 io.Writer) error {
			return report.WriteActivitiesXLSX(ctx, w2, w.B, f, sc54, report.Options{}, report.ExportInfo{})
		},
		"lacoop": func(w2 io.Writer) error {
			return report.WriteLaCoopXLSX(ctx, w2, w.B, f, sc54, report.Options{}, report.ExportInfo{})
		},
	} {
		var buf bytes.Buffer
		if err := write(&buf); !errors.Is(err, report.ErrOutOfScope) || buf.Len() != 0 {
			t.Errorf("%s export out of scope: %v, %d bytes", name, err, buf.Len())
		}
	}
}

func testFollowUpdatesDeletesErasure(t *testing.T, w *World) {
	ctx := context.Background()
	f := dep54(t)
	// A2 moves to Épinal: out of 54.
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: w.A2, Type: "individuel", Date: "2026-03-10", Duree: 120,
		TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"email"}, Beneficiaire: &w.B2})
	if got := Overview(t, w.B, f, report.Scope{}).Headline; got.Activites != 2 || got.Minutes != 135 {
		t.Errorf("after move: %+v", got)
	}
	// A1 deleted: gone from every read, not only from the totals.
	w.Apply(t, w.Dev54, change.OpDelete, &domain.Activity{ID: w.A1})
	ov := Overview(t, w.B, f, report.Scope{})
	if ov.Headline.Activites != 1 || ov.Beneficiaires.Suivis != 1 {
		t.Errorf("after delete: %+v %+v", ov.Headline, ov.Beneficiaires)
	}
	err := w.B.Activities(ctx, report.Query{From: 0, To: 99991231}, func(a *report.ActivityFact) error {
		if a.ID == w.A1 {
			return fmt.Errorf("deleted activity %s still has facts", a.ID)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// B1 erased: still counted, no longer identified; no personal data in any fact.
	w.Apply(t, w.Dev54, change.OpErase, &domain.Beneficiary{ID: w.B1})
	ov = Overview(t, w.B, f, report.Scope{})
	if ov.Beneficiaires.Distincts != 1 || ov.Beneficiaires.Suivis != 0 || CountOf(ov.Genres, "feminin") != 6 {
		t.Errorf("after erase: %+v genres %+v", ov.Beneficiaires, ov.Genres)
	}
	err = w.B.Beneficiaries(ctx, []ident.ID{w.B1, w.B2}, func(b *report.BeneficiaryFact) error {
		if b.ID == w.B1 && b.Suivi {
			return fmt.Errorf("erased beneficiary still identified: %+v", b)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	noPersonalData(t, w)
}

// noPersonalData reads every fact of every kind through the Source and
// fails on a trace of the seeded personal fields or notes.
func noPersonalData(t *testing.T, w *World) {
	t.Helper()
	ctx := context.Background()
	all := report.Query{From: 0, To: 99991231}
	check := func(kind string, v any) error {
		s := fmt.Sprintf("%+v", v)
		for _, p := range []string{"SECRET", "Jeanne", "Martinez"} {
			if strings.Contains(s, p) {
				return fmt.Errorf("%s fact holds personal data: %s", kind, s)
			}
		}
		return nil
	}
	errs := []error{
		w.B.Activities(ctx, all, func(a *report.ActivityFact) error { return check("activity", *a) }),
		w.B.Beneficiaries(ctx, []ident.ID{w.B1, w.B2}, func(b *report.BeneficiaryFact) error { return check("beneficiary", *b) }),
		w.B.Assessments(ctx, all, func(a *report.AssessmentFact) error { return check("assessment", *a) }),
		w.B.TourStops(ctx, all, func(s *report.TourStopFact) error { return check("stop", *s) }),
	}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

// "Nouveaux" rests on each person's first activity, which the facts keep
// as the log goes: deleting the 2025 session of the followed person makes
// her new in 2026.
func testNewPeopleFollowDeletes(t *testing.T, w *World) {
	f := dep54(t)
	if got := Overview(t, w.B, f, report.Scope{}).Beneficiaires.Nouveaux; got != 1 {
		t.Fatalf("nouveaux before: %d, want 1", got)
	}
	w.Apply(t, w.Dev54, change.OpDelete, &domain.Activity{ID: w.A4})
	if got := Overview(t, w.B, f, report.Scope{}).Beneficiaires.Nouveaux; got != 2 {
		t.Fatalf("nouveaux after deleting her 2025 session: %d, want 2", got)
	}
	// A session of B2 before 2026 makes him known already.
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: NewID(17), Type: "individuel", Date: "2025-11-20", Duree: 30,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email"}, Beneficiaire: &w.B2})
	if got := Overview(t, w.B, f, report.Scope{}).Beneficiaires.Nouveaux; got != 1 {
		t.Fatalf("nouveaux after a 2025 session of B2: %d, want 1", got)
	}
}

func testCoverageAndVehicles(t *testing.T, w *World) {
	ctx := context.Background()
	f := Year2026
	f.Territory = MustTerritory(t, "epci:245400676") // Métropole du Grand Nancy
	cv, err := report.ComputeCoverage(ctx, w.B, f, report.Scope{}, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cv.Visitees != 1 || cv.Communes < 10 || cv.NiveauGroupes != "commune" || len(cv.Groupes) != cv.Communes ||
		cv.PopulationAtteinte != 103671 || cv.NonVisiteesTotal != cv.Communes-1 || cv.VisiteesListe[0].Activites != 2 {
		t.Errorf("coverage: %+v", cv)
	}
	for i := 1; i < len(cv.NonVisitees); i++ {
		if cv.NonVisitees[i].Population > cv.NonVisitees[i-1].Population {
			t.Fatalf("non visited not ranked by population")
		}
	}
	f.Territory = MustTerritory(t, "dep:54")
	cv, err = report.ComputeCoverage(ctx, w.B, f, report.Scope{}, report.Options{})
	if err != nil || cv.Visitees != 2 || cv.NiveauGroupes != "epci" {
		t.Errorf("dep coverage: %v %+v", err, cv)
	}
	// Stops of Numéribus 3: one made and one not, from its laptop, and,
	// where the backend plans, one planned at the hub (a hub-authored
	// change the facts follow too).
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.TourStop{ID: NewID(31), Vehicule: "Numéribus 3", Date: "2026-03-02",
		Lieu: "Place de la mairie", Commune: "54395", Realise: true})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.TourStop{ID: NewID(32), Vehicule: "Numéribus 3", Date: "2026-03-09",
		Lieu: "Salle des fêtes", Commune: "54329"})
	planned := 2
	if p, ok := w.B.(Planner); ok {
		if _, err := p.PlanStops(ctx, "cd54", []domain.TourStop{{Vehicule: "Numéribus 3", Date: "2026-06-01",
			Lieu: "Médiathèque", Commune: "54395", Equipe: "cd54"}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		planned = 3
	}
	vs, err := report.ComputeVehicles(ctx, w.B, Year2026, report.Scope{}, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n3 *report.VehicleRow
	for i := range vs.Vehicules {
		if vs.Vehicules[i].Vehicule == "Numéribus 3" {
			n3 = &vs.Vehicules[i]
		}
	}
	if n3 == nil || n3.Activites != 3 || n3.Accompagnements != 10 || n3.Communes != 2 || n3.Mediateurs != 2 || n3.Dernier != "2026-04-01" ||
		n3.Planifies != planned || n3.Arrets != 1 {
		t.Errorf("vehicles (%d planned): %+v", planned, vs.Vehicules)
	}
	// Visits: per commune, the activities and the stops made.
	visits, err := w.B.Visits(ctx, report.Query{From: 20260101, To: 20261231})
	if err != nil {
		t.Fatal(err)
	}
	byCommune := map[string]report.Visit{}
	for _, v := range visits {
		byCommune[v.Commune] = v
	}
	if v := byCommune["54395"]; v.Activities != 2 || v.Accompagnements != 2 || v.Stops != 1 {
		t.Errorf("visits of Nancy: %+v", v)
	}
	if v := byCommune["54329"]; v.Activities != 1 || v.Accompagnements != 8 || v.Stops != 0 {
		t.Errorf("visits of Lunéville: %+v", v)
	}
}

// A query of only communes the territory index does not know reads
// nothing (it has no branch), and fails nothing.
func testUnknownCommunesOnly(t *testing.T, w *World) {
	ctx := context.Background()
	q := report.Query{From: 20260101, To: 20261231, Areas: []report.Territory{{Level: report.Commune, Code: "00000"}}}
	sums, err := w.B.Sums(ctx, q)
	if err != nil || sums != (report.Sums{}) {
		t.Errorf("sums of an unknown commune: %+v, %v", sums, err)
	}
	n := 0
	if err := w.B.TourStops(ctx, q, func(*report.TourStopFact) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("stops of an unknown commune: %d, %v", n, err)
	}
}
