package sqlite

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"numeribus/hub/report"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// factsWorld is a small hub fed through ApplyBatch, whose indicators are
// worked out by hand in the tests below.
type factsWorld struct {
	s          *Store
	path       string
	dev54      string
	dev88      string
	seq        map[string]uint64
	b1, b2     ident.ID
	a1, a2, a3 ident.ID
	a5         ident.ID
}

var tFacts = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

func (w *factsWorld) apply(t *testing.T, dev string, op change.Op, r domain.Record) {
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
		HLC: hlc.FromTime(tFacts.Add(time.Duration(w.seq[dev]) * time.Minute)), Seq: w.seq[dev]}
	if _, n, err := w.s.ApplyBatch(context.Background(), dev, []change.Change{c}, 100); err != nil || n != 1 {
		t.Fatalf("apply %s %s: applied %d, %v", op, r.Kind(), n, err)
	}
}

func newID(i int) ident.ID {
	return ident.FromRand(tFacts, func() uint64 { return uint64(i) * 0x9E3779B97F4A7C15 })
}

// seedFacts: team cd54 (device bus-54) and cd88 (bus-88).
//
//	B1 identified, feminin, 40-59, retraite, Nancy, premier 2026-03-02
//	B2 anonymous, masculin
//	A1 2026-03-02 individuel 45 min Nancy, B1, email+navigation, ordinateur, autonome, oriented (administration), pass 2, notes
//	A2 2026-03-10 individuel 120 min Nancy, B2, démarches (logement), caf, partiellement_autonome
//	A3 2026-04-01 collectif 90 min Lunéville, 8 participants (3 already helped, 5 f 2 m), B1 followed
//	A4 2025-06-15 individuel 30 min Nancy, B1 (the previous year)
//	A5 2026-05-01 individuel 30 min Épinal (88), team cd88
//	A6 2026-05-02 individuel 20 min à distance, no commune
func seedFacts(t *testing.T) *factsWorld {
	t.Helper()
	s, p := openTemp(t)
	t.Cleanup(func() { s.Close() })
	w := &factsWorld{s: s, path: p, seq: map[string]uint64{}}
	w.dev54 = enroll(t, s, "bus-54", "cd54").ID
	w.dev88 = enroll(t, s, "bus-88", "cd88").ID
	w.b1, w.b2 = newID(1), newID(2)
	w.a1, w.a2, w.a3, w.a5 = newID(11), newID(12), newID(13), newID(15)
	w.apply(t, w.dev54, change.OpUpsert, &domain.Beneficiary{ID: w.b1, Prenom: "Jeanne", Nom: "Martinez-Secret", Genre: "feminin",
		TrancheAge: "quarante_cinquante_neuf", StatutSocial: "retraite", Commune: "54395", PremierAccompagnement: "2026-03-02"})
	w.apply(t, w.dev54, change.OpUpsert, &domain.Beneficiary{ID: w.b2, Genre: "masculin", Commune: "54329"})
	w.apply(t, w.dev54, change.OpUpsert, &domain.Activity{ID: w.a1, Type: "individuel", Date: "2026-03-02", Duree: 45,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email", "navigation_sur_internet"},
		Materiel: []string{"ordinateur"}, Beneficiaire: &w.b1, Autonomie: "autonome", PassNumerique: 2,
		Orientation: &domain.Orientation{Oriente: true, StructureDeRedirection: "administration"},
		Vehicule:    "Numéribus 3", Mediateur: "Camille D.", Notes: "SECRET-NOTE-XYZ; a ; \"quoted\""})
	w.apply(t, w.dev54, change.OpUpsert, &domain.Activity{ID: w.a2, Type: "individuel", Date: "2026-03-10", Duree: 120,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{domain.ThemeDemarches}, Demarches: []string{"logement"},
		StructurePartenaire: "caf", Beneficiaire: &w.b2, Autonomie: "partiellement_autonome", Vehicule: "Numéribus 3", Mediateur: "Léo M."})
	w.apply(t, w.dev54, change.OpUpsert, &domain.Activity{ID: w.a3, Type: "collectif", Date: "2026-04-01", Duree: 90,
		TypeLieu: "lieu_activite", Commune: "54329", Thematiques: []string{"securite_numerique"}, Niveau: "debutant",
		Participants: &domain.Participants{Total: 8, DejaAccompagne: 3, Genre: map[string]int{"feminin": 5, "masculin": 2},
			Beneficiaires: []ident.ID{w.b1}}, Vehicule: "Numéribus 3", Mediateur: "Camille D."})
	w.apply(t, w.dev54, change.OpUpsert, &domain.Activity{ID: newID(14), Type: "individuel", Date: "2025-06-15", Duree: 30,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email"}, Beneficiaire: &w.b1})
	w.apply(t, w.dev88, change.OpUpsert, &domain.Activity{ID: w.a5, Type: "individuel", Date: "2026-05-01", Duree: 30,
		TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"email"}})
	w.apply(t, w.dev54, change.OpUpsert, &domain.Activity{ID: newID(16), Type: "individuel", Date: "2026-05-02", Duree: 20,
		TypeLieu: "a_distance", Thematiques: []string{"email"}})
	return w
}

var year2026 = report.Filter{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}

func mustTerritory(t *testing.T, s string) report.Territory {
	t.Helper()
	x, err := report.ParseTerritory(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func overview(t *testing.T, s *Store, f report.Filter, sc report.Scope) *report.Overview {
	t.Helper()
	ov, err := report.ComputeOverview(context.Background(), s, f, sc, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ov
}

func countOf(cs []report.Count, code string) int {
	for _, c := range cs {
		if c.Code == code {
			return c.Count
		}
	}
	return -1
}

func TestOverviewByHand(t *testing.T) {
	w := seedFacts(t)
	f := year2026
	f.Territory = mustTerritory(t, "dep:54")
	ov := overview(t, w.s, f, report.Scope{})
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
		if got := countOf(c.cs, c.code); got != c.want {
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
	if got := overview(t, w.s, f, report.Scope{}).Headline.Activites; got != 4 {
		t.Errorf("team cd54 everywhere: %d activities, want 4", got)
	}
	if got := overview(t, w.s, year2026, report.Scope{}).Headline.Activites; got != 5 {
		t.Errorf("everything: %d activities, want 5", got)
	}
	f = year2026
	f.Vehicle = "Numéribus 3"
	f.Mediateur = "Camille D."
	if got := overview(t, w.s, f, report.Scope{}).Headline; got.Activites != 2 || got.Accompagnements != 9 {
		t.Errorf("vehicle+mediator: %+v", got)
	}
}

func TestScopeIntersection(t *testing.T) {
	w := seedFacts(t)
	ctx := context.Background()
	sc54, err := report.ParseScope([]string{"dep:54"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		territory string
		team      string
		want      int
		err       error
	}{
		{"", "", 3, nil},               // the scope's territory
		{"dep:54", "", 3, nil},         // the same
		{"com:54395", "", 2, nil},      // inside
		{"epci:245400676", "", 2, nil}, // Nancy's EPCI
		{"dep:88", "", 0, report.ErrOutOfScope},
		{"com:88160", "", 0, report.ErrOutOfScope},
		{"reg:44", "", 3, nil}, // Grand Est ∩ 54 = 54
	} {
		f := year2026
		if c.territory != "" {
			f.Territory = mustTerritory(t, c.territory)
		}
		ov, err := report.ComputeOverview(ctx, w.s, f, sc54, report.Options{})
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.territory, err, c.err)
			continue
		}
		if err == nil && ov.Headline.Activites != c.want {
			t.Errorf("%s: %d activities, want %d", c.territory, ov.Headline.Activites, c.want)
		}
		if err == nil {
			if _, err := report.ComputeCoverage(ctx, w.s, f, sc54, report.Options{}); err != nil {
				t.Errorf("%s coverage: %v", c.territory, err)
			}
		}
	}
	// A team scope refuses another team, and the exports refuse too.
	f := year2026
	f.Team = "cd88"
	if _, err := report.ComputeOverview(ctx, w.s, f, report.Scope{Teams: []string{"cd54"}}, report.Options{}); !errors.Is(err, report.ErrOutOfScope) {
		t.Errorf("team out of scope: %v", err)
	}
	f = year2026
	f.Territory = mustTerritory(t, "dep:88")
	var buf bytes.Buffer
	if err := report.WriteActivitiesCSV(ctx, &buf, w.s, f, sc54, report.Options{}); !errors.Is(err, report.ErrOutOfScope) || buf.Len() != 0 {
		t.Errorf("export out of scope: %v, %d bytes", err, buf.Len())
	}
}

func TestFactsFollowUpdatesDeletesErasure(t *testing.T) {
	w := seedFacts(t)
	f := year2026
	f.Territory = mustTerritory(t, "dep:54")
	// A2 moves to Épinal: out of 54.
	w.apply(t, w.dev54, change.OpUpsert, &domain.Activity{ID: w.a2, Type: "individuel", Date: "2026-03-10", Duree: 120,
		TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"email"}, Beneficiaire: &w.b2})
	if got := overview(t, w.s, f, report.Scope{}).Headline; got.Activites != 2 || got.Minutes != 135 {
		t.Errorf("after move: %+v", got)
	}
	// A1 deleted.
	w.apply(t, w.dev54, change.OpDelete, &domain.Activity{ID: w.a1})
	ov := overview(t, w.s, f, report.Scope{})
	if ov.Headline.Activites != 1 || ov.Beneficiaires.Suivis != 1 {
		t.Errorf("after delete: %+v %+v", ov.Headline, ov.Beneficiaires)
	}
	// B1 erased: still counted, no longer identified; no personal data in any fact.
	w.apply(t, w.dev54, change.OpErase, &domain.Beneficiary{ID: w.b1})
	ov = overview(t, w.s, f, report.Scope{})
	if ov.Beneficiaires.Distincts != 1 || ov.Beneficiaires.Suivis != 0 || countOf(ov.Genres, "feminin") != 6 {
		t.Errorf("after erase: %+v genres %+v", ov.Beneficiaires, ov.Genres)
	}
	var n int
	if err := w.s.r.QueryRow(`SELECT count(*) FROM activity_facts WHERE id = ?`, w.a1[:]).Scan(&n); err != nil || n != 0 {
		t.Errorf("deleted activity keeps %d fact rows (%v)", n, err)
	}
	for _, table := range []string{"activity_facts", "beneficiary_facts", "assessment_facts", "tourstop_facts"} {
		rows, err := w.s.r.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			rows.Scan(ptrs...)
			for _, v := range vals {
				if s, ok := v.(string); ok && (strings.Contains(s, "SECRET") || strings.Contains(s, "Jeanne")) {
					t.Errorf("%s holds personal data: %q", table, s)
				}
			}
		}
		rows.Close()
	}
}

func TestActivitiesCSV(t *testing.T) {
	w := seedFacts(t)
	f := year2026
	f.Territory = mustTerritory(t, "dep:54")
	var buf bytes.Buffer
	if err := report.WriteActivitiesCSV(context.Background(), &buf, w.s, f, report.Scope{}, report.Options{}); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if !bytes.HasPrefix(out, []byte("\xef\xbb\xbf")) {
		t.Fatalf("no BOM: %q", out[:10])
	}
	if bytes.Contains(out, []byte("SECRET")) || bytes.Contains(out, []byte("Jeanne")) || bytes.Contains(out, []byte("Martinez")) {
		t.Fatal("export holds notes or identifying fields")
	}
	r := csv.NewReader(bytes.NewReader(out[3:]))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || strings.Join(recs[0], ";") != strings.Join(report.ActivityColumns, ";") {
		t.Fatalf("%d lines, header %v", len(recs), recs[0])
	}
	col := func(line int, name string) string {
		for i, c := range report.ActivityColumns {
			if c == name {
				return recs[line][i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	if col(1, "date") != "02/03/2026" || col(1, "commune_nom") != "Nancy" || col(1, "departement") != "54" ||
		col(1, "thematiques") != "navigation_sur_internet, email" && col(1, "thematiques") != "email, navigation_sur_internet" ||
		col(1, "beneficiaire_genre") != "feminin" || col(1, "oriente") != "oui" || col(1, "appareil") != "bus-54" ||
		col(1, "type_libelle") != "Accompagnement individuel" {
		t.Errorf("line 1: %v", recs[1])
	}
	if col(3, "type") != "collectif" || col(3, "accompagnements") != "8" || col(3, "participants_suivis") != "1" ||
		col(3, "participants_deja_accompagnes") != "3" || col(3, "commune_nom") != "Lunéville" {
		t.Errorf("line 3: %v", recs[3])
	}
	var ind bytes.Buffer
	if err := report.WriteIndicatorsCSV(&ind, overview(t, w.s, f, report.Scope{})); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ind.Bytes(), []byte("\ufeffindicateur;code;")) || !bytes.Contains(ind.Bytes(), []byte("periode;du;Du;01/01/2026;")) ||
		!bytes.Contains(ind.Bytes(), []byte("synthese;heures;Heures;4,25;")) {
		t.Errorf("indicators CSV:\n%s", ind.String())
	}
}

// "Nouveaux" rests on each person's first activity, which the facts
// follower keeps: deleting the 2025 session of the followed person makes
// her new in 2026; the backfill at open computes the same.
func TestNewPeopleFollowDeletes(t *testing.T) {
	w := seedFacts(t)
	f := year2026
	f.Territory = mustTerritory(t, "dep:54")
	if got := overview(t, w.s, f, report.Scope{}).Beneficiaires.Nouveaux; got != 1 {
		t.Fatalf("nouveaux before: %d, want 1", got)
	}
	w.apply(t, w.dev54, change.OpDelete, &domain.Activity{ID: newID(14)})
	if got := overview(t, w.s, f, report.Scope{}).Beneficiaires.Nouveaux; got != 2 {
		t.Fatalf("nouveaux after deleting her 2025 session: %d, want 2", got)
	}
	if _, err := w.s.w.Exec(`UPDATE beneficiary_facts SET premiere_activite = NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.w.Exec(`INSERT INTO facts_meta(key, value) VALUES ('backfill', 1)`); err != nil {
		t.Fatal(err)
	}
	w.s.Close()
	s, err := Open(context.Background(), w.path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := overview(t, s, f, report.Scope{}).Beneficiaires.Nouveaux; got != 2 {
		t.Fatalf("nouveaux after the backfill: %d, want 2", got)
	}
}

func TestFactsBackfillAtOpen(t *testing.T) {
	w := seedFacts(t)
	ctx := context.Background()
	f := year2026
	f.Territory = mustTerritory(t, "dep:54")
	before, _ := json.Marshal(overview(t, w.s, f, report.Scope{}))
	// An upgraded hub: records without facts, the flag the migration sets.
	for _, q := range []string{`DELETE FROM activity_facts`, `DELETE FROM beneficiary_facts`,
		`INSERT INTO facts_meta(key, value) VALUES ('backfill', 1)`} {
		if _, err := w.s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if got := overview(t, w.s, f, report.Scope{}).Headline.Activites; got != 0 {
		t.Fatalf("facts not cleared: %d", got)
	}
	w.s.Close()
	s, err := Open(ctx, w.path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, _ := json.Marshal(overview(t, s, f, report.Scope{}))
	if !bytes.Equal(before, after) {
		t.Errorf("after backfill\n%s\nwant\n%s", after, before)
	}
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM facts_meta WHERE key = 'backfill'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("backfill flag left: %d %v", n, err)
	}
}

// Facts are written off the ingest path: with no report asked for, the
// background follower brings them to the end of the change log shortly
// after the pushes pause, and records its cursor with them.
func TestFactsFollowTheLog(t *testing.T) {
	w := seedFacts(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var end, cursor, facts int64
		if err := w.s.r.QueryRow(`SELECT (SELECT max(hseq) FROM changes),
			coalesce((SELECT value FROM facts_meta WHERE key = 'hseq'), 0), (SELECT count(*) FROM activity_facts)`).Scan(&end, &cursor, &facts); err != nil {
			t.Fatal(err)
		}
		if end > 0 && cursor == end && facts > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("facts not caught up in the background: log end %d, cursor %d, %d activity facts", end, cursor, facts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCoverageAndVehicles(t *testing.T) {
	w := seedFacts(t)
	ctx := context.Background()
	f := year2026
	f.Territory = mustTerritory(t, "epci:245400676") // Métropole du Grand Nancy
	cv, err := report.ComputeCoverage(ctx, w.s, f, report.Scope{}, report.Options{})
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
	f.Territory = mustTerritory(t, "dep:54")
	cv, err = report.ComputeCoverage(ctx, w.s, f, report.Scope{}, report.Options{})
	if err != nil || cv.Visitees != 2 || cv.NiveauGroupes != "epci" {
		t.Errorf("dep coverage: %v %+v", err, cv)
	}
	// Stops of Numéribus 3: one made and one not, from its laptop, and
	// one planned at the hub (a hub-authored change the facts follow too).
	w.apply(t, w.dev54, change.OpUpsert, &domain.TourStop{ID: newID(31), Vehicule: "Numéribus 3", Date: "2026-03-02",
		Lieu: "Place de la mairie", Commune: "54395", Realise: true})
	w.apply(t, w.dev54, change.OpUpsert, &domain.TourStop{ID: newID(32), Vehicule: "Numéribus 3", Date: "2026-03-09",
		Lieu: "Salle des fêtes", Commune: "54329"})
	if _, err := w.s.PlanStops(ctx, "cd54", []domain.TourStop{{Vehicule: "Numéribus 3", Date: "2026-06-01",
		Lieu: "Médiathèque", Commune: "54395", Equipe: "cd54"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	vs, err := report.ComputeVehicles(ctx, w.s, year2026, report.Scope{}, report.Options{})
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
		n3.Planifies != 3 || n3.Arrets != 1 {
		t.Errorf("vehicles: %+v", vs.Vehicules)
	}
}
