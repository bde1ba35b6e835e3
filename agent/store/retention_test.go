package store

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
)

// clock is a wall clock a test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func at(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t.Add(10 * time.Hour)
}

func createAt(tb testing.TB, c *clock) *Store {
	tb.Helper()
	s, _, err := Create(context.Background(), tb.TempDir(), []byte(testPass), Options{KDF: testKDF, Wall: c.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// agedWorld is a store whose records were made in March 2024, but one
// person met again in January 2026.
type agedWorld struct {
	s                   *Store
	clk                 *clock
	ana, bob            *domain.Beneficiary
	anaAct, bobAct      *domain.Activity
	anaDiag             *domain.Assessment
	workshop, workshop2 *domain.Activity
}

const (
	anaName  = "Testerman"
	anaPhone = "0698765432"
	anaNote  = "rappeler-Testerman-au-sujet-du-RSA"
	anaDiag  = "commentaire-confidentiel-Testerman"
)

func newAgedWorld(t *testing.T) *agedWorld {
	t.Helper()
	clk := &clock{now: at("2024-03-01")}
	w := &agedWorld{s: createAt(t, clk), clk: clk}
	made := clk.Now()
	w.ana = &domain.Beneficiary{ID: madeAt(made), Prenom: "Gwendoline", Nom: anaName, Telephone: anaPhone,
		Commune: "88160", Genre: "feminin", StatutSocial: "retraite"}
	w.bob = &domain.Beneficiary{ID: madeAt(made), Prenom: "Barnabé", Nom: "Recent", Commune: "88160", Genre: "masculin"}
	consent := func(b *domain.Beneficiary) *domain.Consent {
		return &domain.Consent{ID: madeAt(made), Beneficiaire: b.ID, Finalites: []string{domain.FinaliteSuivi, domain.FinaliteDiagnostic},
			Mode: "ecrit", Date: "2024-03-01"}
	}
	act := func(b *domain.Beneficiary, date, notes string) *domain.Activity {
		return &domain.Activity{ID: madeAt(made), Type: "individuel", Date: date, Duree: 30, TypeLieu: "lieu_activite",
			Commune: "88160", Thematiques: []string{"email"}, Beneficiaire: ptr(b.ID), Notes: notes}
	}
	w.anaAct = act(w.ana, "2024-03-01", anaNote)
	w.anaDiag = &domain.Assessment{ID: madeAt(made), Beneficiaire: w.ana.ID, Date: "2024-03-01",
		Domaines: map[string]string{"information_donnees": "1"}, Commentaire: anaDiag}
	w.workshop = &domain.Activity{ID: madeAt(made), Type: "collectif", Date: "2024-03-01", Duree: 90, TypeLieu: "lieu_activite",
		Commune: "88160", Thematiques: []string{"email"}, TitreAtelier: "Courriel", Niveau: "debutant",
		Participants: &domain.Participants{Total: 8}, Notes: "salle-trop-froide-2024"}
	mustSave(t, w.s, w.ana, w.bob, consent(w.ana), consent(w.bob), w.anaAct, w.anaDiag, w.workshop)
	clk.Set(at("2026-01-15"))
	w.bobAct = act(w.bob, "2026-01-15", "")
	w.workshop2 = &domain.Activity{ID: ident.New(), Type: "collectif", Date: "2026-01-15", Duree: 60, TypeLieu: "lieu_activite",
		Commune: "88160", Thematiques: []string{"email"}, TitreAtelier: "Courriel 2", Niveau: "debutant",
		Participants: &domain.Participants{Total: 5}, Notes: "salle-2026"}
	mustSave(t, w.s, w.bobAct, w.workshop2)
	return w
}

// madeAt returns a UUIDv7 made at t: ident.NewAt never goes back before
// an id this process already made.
func madeAt(t time.Time) ident.ID {
	return ident.FromRand(t, rand.Uint64)
}

func get[T domain.Record](t *testing.T, s *Store, id ident.ID) (T, Item) {
	t.Helper()
	it, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it.Record.(T), it
}

// Expired personal data is erased with erase changes, to be sent to the
// hub; what is recent, and every anonymous field, stays; the search index
// and the log, opened, hold none of it.
func TestPurgeExpired(t *testing.T) {
	ctx := context.Background()
	w := newAgedWorld(t)
	s := w.s
	if n := len(searched(t, s, anaName)); n != 1 {
		t.Fatalf("before the purge, the search finds %d, want her", n)
	}
	_, ackedBefore, _ := s.Seqs(ctx)
	now := at("2026-06-01")
	w.clk.Set(now)
	got, err := s.PurgeExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Purged{People: 1, Assessments: 1, Notes: 1, Records: 4}); got != want {
		t.Errorf("purged %+v, want %+v", got, want)
	}
	ana, it := get[*domain.Beneficiary](t, s, w.ana.ID)
	if ana.Identified() || !it.Erased || ana.Genre != "feminin" || ana.StatutSocial != "retraite" || ana.Commune != "88160" {
		t.Errorf("Ana after the purge: %+v (erased %v)", ana, it.Erased)
	}
	act, it := get[*domain.Activity](t, s, w.anaAct.ID)
	if act.Notes != "" || !it.Erased || act.Duree != 30 || act.Beneficiaire == nil || *act.Beneficiaire != w.ana.ID {
		t.Errorf("Ana's session after the purge: %+v", act)
	}
	diag, _ := get[*domain.Assessment](t, s, w.anaDiag.ID)
	if diag.Commentaire != "" || !diag.Beneficiaire.IsZero() || diag.Domaines["information_donnees"] != "1" {
		t.Errorf("Ana's assessment after the purge: %+v", diag)
	}
	ws, _ := get[*domain.Activity](t, s, w.workshop.ID)
	if ws.Notes != "" || ws.Participants.Total != 8 {
		t.Errorf("2024 workshop: %+v", ws)
	}
	bob, it := get[*domain.Beneficiary](t, s, w.bob.ID)
	if !bob.Identified() || it.Erased {
		t.Errorf("Bob, met in January 2026, was purged: %+v", bob)
	}
	if ws2, _ := get[*domain.Activity](t, s, w.workshop2.ID); ws2.Notes != "salle-2026" {
		t.Errorf("the 2026 workshop's notes went: %+v", ws2)
	}
	// The search index forgot her name: no lookup finds her, and no name
	// it holds in memory carries a token of it.
	if n := len(searched(t, s, anaName)); n != 0 {
		t.Errorf("the search still finds her: %d", n)
	}
	s.mu.Lock()
	for _, n := range s.ix.names {
		if bytes.Contains(n.name, []byte("testerman")) || bytes.Contains(n.rev, []byte("gwendoline")) {
			t.Errorf("the lookup index holds her name: %q", n.name)
		}
	}
	if refs := s.ix.refs[w.ana.ID]; len(refs) != 2 { // her consent and her session: the assessment is unlinked
		t.Errorf("index references to her: %d, want 2", len(refs))
	}
	s.mu.Unlock()
	// Nothing of hers in the log, even opened with the key.
	for _, secret := range []string{anaName, anaPhone, anaNote, anaDiag, "salle-trop-froide-2024"} {
		if seq := openedLogHolds(t, s, secret); seq != 0 {
			t.Errorf("change %d of the log still holds %q", seq, secret)
		}
	}
	// The erasures are in the outbox: they reach the hub.
	last, acked, _ := s.Seqs(ctx)
	if acked != ackedBefore || last-acked < 4 {
		t.Errorf("outbox after the purge: last %d acked %d", last, acked)
	}
	// Done for the day, and nothing left to do after.
	if due, _ := s.PurgeDue(ctx, now.Add(time.Hour)); due {
		t.Error("a purge is due again an hour later")
	}
	if again, err := s.PurgeExpired(ctx, now); err != nil || again.Records != 0 {
		t.Errorf("second purge: %+v %v", again, err)
	}
}

// openedLogHolds returns the seq of a change of the log whose opened body
// holds secret, or 0.
func openedLogHolds(t *testing.T, s *Store, secret string) uint64 {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, err := s.r.Query(`SELECT seq, kind, record_id, body FROM changes`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq  uint64
			k    domain.Kind
			idb  []byte
			body []byte
		)
		if err := rows.Scan(&seq, &k, &idb, &body); err != nil {
			t.Fatal(err)
		}
		raw, err := s.key.Open(nil, body, changeAD(k, ident.ID(idb), seq))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(secret)) {
			return seq
		}
	}
	return 0
}

// A policy from the hub replaces the held one and makes a purge due at
// once; the same policy again changes nothing.
func TestRetentionPolicy(t *testing.T) {
	ctx := context.Background()
	w := newAgedWorld(t)
	s := w.s
	if p, err := s.Retention(ctx); err != nil || !p.Equal(retention.Default()) {
		t.Fatalf("policy before any hub: %v %v", p, err)
	}
	now := at("2025-01-10")
	if _, err := s.PurgeExpired(ctx, now); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.PurgeDue(ctx, now.Add(time.Hour)); due {
		t.Fatal("purge due right after one")
	}
	// Ten months: Ana's 2024 notes and identity are due now.
	p, _ := retention.Default().With(retention.Identite, 10)
	p, _ = p.With(retention.Notes, 10)
	if changed, err := s.SetRetention(ctx, p, now); err != nil || !changed {
		t.Fatalf("SetRetention: %v %v", changed, err)
	}
	if due, _ := s.PurgeDue(ctx, now.Add(time.Hour)); !due {
		t.Error("a new policy does not make a purge due")
	}
	if changed, _ := s.SetRetention(ctx, p, now); changed {
		t.Error("the same policy counted as a change")
	}
	got, err := s.PurgeExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.People != 1 || got.Assessments != 0 || got.Notes != 1 {
		t.Errorf("purge under ten months: %+v, want Ana's identity and the workshop's notes", got)
	}
	if due, _ := s.PurgeDue(ctx, now.Add(PurgeEvery)); !due {
		t.Error("no purge due a day later")
	}
}

// The right of access gathers every record about the person, deleted ones
// too, with this device's history of each.
func TestDossier(t *testing.T) {
	ctx := context.Background()
	w := newAgedWorld(t)
	s := w.s
	// She was in the 2026 workshop too; her phone number changed once.
	ws := *w.workshop2
	ws.Participants = &domain.Participants{Total: 5, Beneficiaires: []ident.ID{w.ana.ID}}
	ana := *w.ana
	ana.Telephone = "0600000001"
	mustSave(t, s, &ws, &ana)
	if _, err := s.Delete(ctx, w.anaAct.ID); err != nil {
		t.Fatal(err)
	}
	d, err := s.Dossier(ctx, w.ana.ID, at("2026-02-01"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Beneficiary == nil || d.Beneficiary.Record.(*domain.Beneficiary).Telephone != "0600000001" {
		t.Fatalf("her record: %+v", d.Beneficiary)
	}
	if h := d.Beneficiary.History; len(h) != 2 || h[0].Op != change.OpUpsert || h[1].Fields[4] == nil {
		t.Errorf("her record's history: %+v", h)
	}
	if len(d.Consents) != 1 || len(d.Assessments) != 1 || len(d.Activities) != 2 {
		t.Errorf("gathered %d consents, %d assessments, %d activities; want 1, 1, 2", len(d.Consents), len(d.Assessments), len(d.Activities))
	}
	deleted := false
	for _, e := range d.Activities {
		deleted = deleted || e.Deleted && e.Record.RecordID() == w.anaAct.ID
	}
	if !deleted {
		t.Error("her deleted session, still held, is not in the export")
	}
	if !strings.Contains(d.Holder, "poste de médiation") || d.Policy == nil {
		t.Errorf("holder %q, policy %v", d.Holder, d.Policy)
	}
	// Nobody else's records.
	other, err := s.Dossier(ctx, w.bob.ID, at("2026-02-01"))
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Activities) != 1 || len(other.Assessments) != 0 {
		t.Errorf("Bob's export: %d activities, %d assessments", len(other.Activities), len(other.Assessments))
	}
}
