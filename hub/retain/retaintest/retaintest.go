// Package retaintest is the conformance suite of the hub's retention and
// access (hub/retain.Store): each store (hub/store/sqlite,
// hub/store/postgres) runs it from its own tests, so that a purge erases
// the same records, leaves the same indicators, and a dossier lists the
// same records whichever database the hub runs on.
//
//	func TestRetainConformance(t *testing.T) {
//		retaintest.Run(t, func(t *testing.T) retaintest.Backend { … })
//	}
package retaintest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
	"numeribus/hub/retain"
	"numeribus/hub/store"
	"numeribus/internal/access"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/retention"
)

// Backend is what the suite needs of a store.
type Backend interface {
	store.Store
	report.Source
	retain.Store
	accounts.Store
	Record(ctx context.Context, id ident.ID) (domain.Kind, string, *merge.State, error)
}

// Run runs the suite, each test on a new, empty backend that it closes.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *World)
	}{
		{"Policy", testPolicy},
		{"PurgeKeepsTheIndicators", testPurgeKeepsTheIndicators},
		{"PurgeFollowsThePolicy", testPurgeFollowsThePolicy},
		{"Dossier", testDossier},
		{"AuditLog", testAuditLog},
	} {
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

// The personal values of the world: each must be gone after the purge.
const (
	AnaFirst = "Gwendoline"
	AnaName  = "Testerman-Aged"
	AnaPhone = "0698765432"
	AnaNote  = "rappeler-Testerman-pour-le-RSA"
	AnaDiag  = "commentaire-confidentiel-Testerman"
	OldNote  = "salle-trop-froide-en-2024"
)

// Secrets lists them.
var Secrets = []string{AnaFirst, AnaName, AnaPhone, AnaNote, AnaDiag, OldNote}

// World is a hub holding two years of a team's work, made in 2024 but
// for one person met again in 2026:
//
//	Ana   followed (name, phone), consent 2024-03-01, session A1 2024-03-01 (notes),
//	      workshop W1 2024-04-01 (notes, 8 participants, Ana among them),
//	      assessments D1 2024-03-01 (level 0) and D2 2024-06-01 (level 2), with comments
//	Bob   followed, consent 2024-03-01, session A2 2026-01-15
//	Dan   anonymous, session A3 2024-03-05
//
// At Now (2026-09-01), under the default periods, Ana's identity, her
// session's notes, her assessments and the workshop's notes are due;
// nothing of Bob's or Dan's.
type World struct {
	B              Backend
	Dev            string
	Ana, Bob, Dan  ident.ID
	A1, A2, A3, W1 ident.ID
	C1, C2, D1, D2 ident.ID
	seq            uint64
}

// Now is when the suite purges.
var Now = time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)

// Made is when most of the world was recorded.
var Made = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

func newID(i int) ident.ID {
	return ident.FromRand(Made, func() uint64 { return uint64(i) * 0x9E3779B97F4A7C15 })
}

// Apply merges one change of r from the world's device, stamped at.
func (w *World) Apply(t *testing.T, at time.Time, op change.Op, r domain.Record) {
	t.Helper()
	var f change.Fields
	if op == change.OpUpsert {
		r.Normalize()
		var err error
		if f, err = change.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	w.seq++
	c := change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: op, Fields: f, HLC: hlc.FromTime(at.Add(time.Duration(w.seq) * time.Second)), Seq: w.seq}
	if _, n, err := w.B.ApplyBatch(context.Background(), w.Dev, []change.Change{c}, 100); err != nil || n != 1 {
		t.Fatalf("apply %s %s: applied %d, %v", op, r.Kind(), n, err)
	}
}

// Seed feeds b (empty) the world.
func Seed(t *testing.T, b Backend) *World {
	t.Helper()
	ctx := context.Background()
	w := &World{B: b}
	tok := [32]byte{1}
	if err := b.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: "bus-1", Team: "cd88", ExpiresAt: Now}); err != nil {
		t.Fatal(err)
	}
	d, err := b.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: []byte("dk"), PushKey: []byte("pk")}, Made)
	if err != nil {
		t.Fatal(err)
	}
	w.Dev = d.ID
	w.Ana, w.Bob, w.Dan = newID(1), newID(2), newID(3)
	w.A1, w.A2, w.A3, w.W1 = newID(11), newID(12), newID(13), newID(14)
	w.C1, w.C2, w.D1, w.D2 = newID(21), newID(22), newID(31), newID(32)
	up := func(at time.Time, r domain.Record) { w.Apply(t, at, change.OpUpsert, r) }
	up(Made, &domain.Beneficiary{ID: w.Ana, Prenom: AnaFirst, Nom: AnaName, Telephone: AnaPhone, Genre: "feminin",
		TrancheAge: "soixante_dix_plus", StatutSocial: "retraite", Commune: "88160", PremierAccompagnement: "2024-03-01"})
	up(Made, &domain.Beneficiary{ID: w.Bob, Prenom: "Barnabé", Nom: "Recent", Genre: "masculin", Commune: "88160"})
	up(Made, &domain.Beneficiary{ID: w.Dan, Genre: "masculin", Commune: "88413"})
	for _, c := range []struct{ id, who ident.ID }{{w.C1, w.Ana}, {w.C2, w.Bob}} {
		up(Made, &domain.Consent{ID: c.id, Beneficiaire: c.who, Finalites: []string{domain.FinaliteSuivi, domain.FinaliteDiagnostic},
			Mode: "ecrit", Date: "2024-03-01"})
	}
	act := func(id, who ident.ID, date, commune, notes string) *domain.Activity {
		return &domain.Activity{ID: id, Type: "individuel", Date: date, Duree: 45, TypeLieu: "lieu_activite", Commune: commune,
			Thematiques: []string{"email"}, Beneficiaire: &who, Autonomie: "partiellement_autonome", Notes: notes}
	}
	up(Made, act(w.A1, w.Ana, "2024-03-01", "88160", AnaNote))
	up(Made, act(w.A3, w.Dan, "2024-03-05", "88413", ""))
	up(Made, &domain.Activity{ID: w.W1, Type: "collectif", Date: "2024-04-01", Duree: 90, TypeLieu: "lieu_activite", Commune: "88160",
		Thematiques: []string{"securite_numerique"}, Niveau: "debutant", TitreAtelier: "Arnaques",
		Participants: &domain.Participants{Total: 8, Beneficiaires: []ident.ID{w.Ana}, Genre: map[string]int{"feminin": 5}}, Notes: OldNote})
	for _, d := range []struct {
		id          ident.ID
		date, level string
	}{{w.D1, "2024-03-01", "0"}, {w.D2, "2024-06-01", "2"}} {
		up(Made, &domain.Assessment{ID: d.id, Beneficiaire: w.Ana, Date: d.date, Commune: "88160", AutonomieGlobale: "autonome",
			Domaines: map[string]string{"information_donnees": d.level}, Commentaire: AnaDiag})
	}
	up(time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC), act(w.A2, w.Bob, "2026-01-15", "88160", ""))
	return w
}

// Overviews returns the overview of each year of the world, the whole
// département, as JSON parts.
func Overviews(t *testing.T, src report.Source) map[string]map[string]json.RawMessage {
	t.Helper()
	out := map[string]map[string]json.RawMessage{}
	for _, y := range []int{2024, 2025, 2026} {
		f := report.Filter{From: time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)}
		ov, err := report.ComputeOverview(context.Background(), src, f, report.Scope{}, report.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ov)
		var parts map[string]json.RawMessage
		json.Unmarshal(b, &parts)
		out[fmt.Sprint(y)] = parts
	}
	return out
}

// SameOverviews fails on any part of before and after that differs.
func SameOverviews(t *testing.T, before, after map[string]map[string]json.RawMessage) {
	t.Helper()
	for y, parts := range before {
		for k, v := range parts {
			if !bytes.Equal(v, after[y][k]) {
				t.Errorf("%s: %s changed with the purge:\nbefore %s\nafter  %s", y, k, v, after[y][k])
			}
		}
	}
}

// loggedSecrets returns the secrets some change of the team's log still
// holds.
func loggedSecrets(t *testing.T, b Backend) []string {
	t.Helper()
	cs, _, _, err := b.ChangesSince(context.Background(), "cd88", "", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, c := range cs {
		for _, s := range Secrets {
			if bytes.Contains(c.Raw, []byte(s)) {
				found = append(found, fmt.Sprintf("%s in change %d (%s %s)", s, c.HubSeq, c.Kind, c.ID))
			}
		}
	}
	return found
}

func testPolicy(t *testing.T, w *World) {
	ctx := context.Background()
	p, err := w.B.RetentionPolicy(ctx)
	if err != nil || !p.Equal(retention.Default()) {
		t.Fatalf("policy of a new hub: %+v %v", p, err)
	}
	q, _ := p.With(retention.Identite, 12)
	q, _ = q.With(retention.Journal, 6)
	if err := w.B.SetRetentionPolicy(ctx, q); err != nil {
		t.Fatal(err)
	}
	got, err := w.B.RetentionPolicy(ctx)
	if err != nil || !got.Equal(q) || !got.IsSet(retention.Identite) || got.IsSet(retention.Notes) {
		t.Fatalf("policy read back: %+v %v", got, err)
	}
	if err := w.B.SetRetentionPolicy(ctx, retention.Default()); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.B.RetentionPolicy(ctx); got.IsSet(retention.Identite) {
		t.Error("a policy set back to the defaults still says identite was set")
	}
}

// The heart of retention at the hub: a purge erases, as the hub, exactly
// what is due; the indicators of every year are the same before and
// after; the personal values are gone from every record and change; the
// erasures are in the team's log for the agents to pull; a second purge
// has nothing left to do.
func testPurgeKeepsTheIndicators(t *testing.T, w *World) {
	ctx := context.Background()
	if found := loggedSecrets(t, w.B); len(found) < len(Secrets) {
		t.Fatalf("the world does not hold every secret before the purge (the checks would prove nothing): %v", found)
	}
	before := Overviews(t, w.B)
	_, cursor, _, err := w.B.ChangesSince(ctx, "cd88", "", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.B.PurgeExpired(ctx, Now)
	if err != nil {
		t.Fatal(err)
	}
	if want := (retain.Purged{People: 1, Assessments: 2, Notes: 1, Records: 5}); got != want {
		t.Errorf("purged %+v, want %+v", got, want)
	}
	SameOverviews(t, before, Overviews(t, w.B))
	if found := loggedSecrets(t, w.B); len(found) > 0 {
		t.Errorf("the log still holds: %v", found)
	}
	for _, id := range []ident.ID{w.Ana, w.A1, w.W1, w.D1, w.D2} {
		_, _, st, err := w.B.Record(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := st.Marshal()
		for _, s := range Secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("record %s still holds %q", id, s)
			}
		}
		if !st.IsErased() {
			t.Errorf("record %s not erased", id)
		}
	}
	for _, id := range []ident.ID{w.Bob, w.A2, w.A3, w.Dan} {
		if _, _, st, _ := w.B.Record(ctx, id); st.IsErased() {
			t.Errorf("record %s erased, though not due", id)
		}
	}
	// The erasures reach the agents: the hub's erase changes are in the
	// team's log after what they had pulled.
	cs, _, _, err := w.B.ChangesSince(ctx, "cd88", w.Dev, cursor, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	erases := map[ident.ID]bool{}
	for _, c := range cs {
		if c.Op == change.OpErase && c.Device != w.Dev {
			erases[c.ID] = true
		}
	}
	if len(erases) != 5 {
		t.Errorf("erase changes in the team's log: %d, want 5", len(erases))
	}
	again, err := w.B.PurgeExpired(ctx, Now.Add(time.Hour))
	if err != nil || again.Records != 0 {
		t.Errorf("second purge: %+v %v", again, err)
	}
	SameOverviews(t, before, Overviews(t, w.B))
}

// Periods come from the stored policy: longer ones keep everything.
func testPurgeFollowsThePolicy(t *testing.T, w *World) {
	ctx := context.Background()
	p, _ := retention.Default().With(retention.Identite, 60)
	p, _ = p.With(retention.Diagnostics, 60)
	p, _ = p.With(retention.Notes, 60)
	if err := w.B.SetRetentionPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, err := w.B.PurgeExpired(ctx, Now); err != nil || got.Records != 0 {
		t.Fatalf("purge under five years: %+v %v", got, err)
	}
	// Notes only, after a year: the 2024 notes go, no identity.
	p, _ = p.With(retention.Notes, 12)
	if err := w.B.SetRetentionPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := w.B.PurgeExpired(ctx, Now)
	if err != nil {
		t.Fatal(err)
	}
	if want := (retain.Purged{Notes: 2, Records: 2}); got != want {
		t.Errorf("purge of notes alone: %+v, want %+v", got, want)
	}
	if _, _, st, _ := w.B.Record(ctx, w.Ana); st.IsErased() {
		t.Error("Ana erased under a five-year identity period")
	}
}

// A dossier lists every record about the person, the hub's history of
// each with the device that wrote it, the changes refused about her; none
// of another person's.
func testDossier(t *testing.T, w *World) {
	ctx := context.Background()
	if _, err := w.B.Reject(ctx, w.Dev, []store.Rejected{{Seq: w.seq + 1, HLC: hlc.FromTime(Now), Kind: domain.KindBeneficiary,
		ID: w.Ana, Op: change.OpUpsert, Code: "no_consent", Reason: "identité sans consentement", At: Now}}); err != nil {
		t.Fatal(err)
	}
	w.seq++
	d, err := w.B.Dossier(ctx, w.Ana, Now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Beneficiary == nil || d.Beneficiary.Record.(*domain.Beneficiary).Nom != AnaName {
		t.Fatalf("her record: %+v", d.Beneficiary)
	}
	if h := d.Beneficiary.History; len(h) != 1 || h[0].Device != "bus-1" || h[0].Op != change.OpUpsert {
		t.Errorf("her record's history: %+v", h)
	}
	ids := func(es []access.Entry) map[ident.ID]bool {
		m := map[ident.ID]bool{}
		for _, e := range es {
			m[e.Record.RecordID()] = true
		}
		return m
	}
	if got := ids(d.Activities); len(got) != 2 || !got[w.A1] || !got[w.W1] {
		t.Errorf("her activities: %v", got)
	}
	if got := ids(d.Assessments); len(got) != 2 || !got[w.D1] || !got[w.D2] {
		t.Errorf("her assessments: %v", got)
	}
	if got := ids(d.Consents); len(got) != 1 || !got[w.C1] {
		t.Errorf("her consents: %v", got)
	}
	if len(d.Refused) != 1 || d.Refused[0].Code != "no_consent" {
		t.Errorf("refused about her: %+v", d.Refused)
	}
	if d.Policy == nil || d.Holder == "" {
		t.Errorf("holder %q policy %v", d.Holder, d.Policy)
	}
	var text bytes.Buffer
	if err := access.WriteText(&text, d); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{AnaName, AnaPhone, AnaNote, AnaDiag, "Atelier collectif du 01/04/2024 « Arnaques »", "poste bus-1"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("the document lacks %q", s)
		}
	}
	// After the purge, her dossier says what is left: no value of hers.
	if _, err := w.B.PurgeExpired(ctx, Now); err != nil {
		t.Fatal(err)
	}
	d, err = w.B.Dossier(ctx, w.Ana, Now)
	if err != nil {
		t.Fatal(err)
	}
	text.Reset()
	access.WriteText(&text, d)
	for _, s := range Secrets {
		if strings.Contains(text.String(), s) {
			t.Errorf("after the purge, her dossier still says %q", s)
		}
	}
	if d.Beneficiary == nil || !d.Beneficiary.Erased {
		t.Errorf("after the purge, her record: %+v", d.Beneficiary)
	}
	// Bob's dossier holds nothing of hers.
	d, err = w.B.Dossier(ctx, w.Bob, Now)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(d.Activities); len(got) != 1 || !got[w.A2] || len(d.Assessments) != 0 || len(d.Refused) != 0 {
		t.Errorf("Bob's dossier: activities %v, %d assessments, %d refused", got, len(d.Assessments), len(d.Refused))
	}
}

// The audit log keeps its journal period.
func testAuditLog(t *testing.T, w *World) {
	ctx := context.Background()
	for _, at := range []time.Time{Now.AddDate(0, -13, 0), Now.AddDate(0, -11, 0)} {
		if err := w.B.Audit(ctx, accounts.AuditEntry{At: at, Action: accounts.ActionPersonalRead, What: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := w.B.PurgeExpired(ctx, Now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Audit != 1 {
		t.Errorf("audit entries deleted: %d, want 1 (the one of 13 months ago)", got.Audit)
	}
	log, err := w.B.AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || !log[0].At.Equal(Now.AddDate(0, -11, 0)) {
		t.Errorf("audit log after the purge: %+v", log)
	}
}
