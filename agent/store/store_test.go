package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/seal"
)

// testKDF keeps key derivation cheap in tests; make bench measures the
// real cost.
var testKDF = seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

const testPass = "mot de passe de test"

// mustCreate makes an unlocked store in a temp dir.
func mustCreate(tb testing.TB) (*Store, string) {
	tb.Helper()
	dir := tb.TempDir()
	s, code, err := Create(context.Background(), dir, []byte(testPass), Options{KDF: testKDF})
	if err != nil {
		tb.Fatalf("Create: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, code
}

func mustSave(tb testing.TB, s *Store, recs ...domain.Record) Result {
	tb.Helper()
	res, err := s.Save(context.Background(), recs...)
	if err != nil {
		tb.Fatalf("Save: %v", err)
	}
	return res
}

func ptr[T any](v T) *T { return &v }

// followed returns a beneficiary with identity, its consent and an
// individual activity about them.
func followed(finalites ...string) (*domain.Beneficiary, *domain.Consent, *domain.Activity) {
	b := &domain.Beneficiary{ID: ident.New(), Prenom: "Hélène", Nom: "Lefèvre-Garnier", Telephone: "0612345678",
		Email: "helene.lefevre@example.fr", AnneeNaissance: 1950, Commune: "88160", Genre: "feminin", StatutSocial: "retraite"}
	c := &domain.Consent{ID: ident.New(), Beneficiaire: b.ID, Finalites: finalites, Mode: "ecrit", Date: "2026-03-02", TexteVersion: "v1"}
	a := &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 45, TypeLieu: "lieu_activite",
		Commune: "88160", Thematiques: []string{"aide_aux_demarches_administratives"}, Demarches: []string{"argent_impots"},
		Beneficiaire: ptr(b.ID), Autonomie: "partiellement_autonome", Notes: "Revoir Hélène pour sa déclaration"}
	return b, c, a
}

func TestCreateRefusesExisting(t *testing.T) {
	s, _ := mustCreate(t)
	if _, _, err := Create(context.Background(), s.dir, []byte("x"), Options{KDF: testKDF}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	if _, err := Open(context.Background(), t.TempDir(), Options{}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("Open of empty dir: %v, want ErrNoStore", err)
	}
}

func hashDir(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

func TestWrongPassphraseLeavesFilesUnchanged(t *testing.T) {
	ctx := context.Background()
	s, code := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	dir := s.dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := hashDir(t, dir)

	s2, err := Open(ctx, dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Unlock(ctx, []byte("pas le bon")); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("Unlock with wrong passphrase: %v", err)
	}
	if _, err := s2.Save(ctx, &domain.TourStop{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Save while locked: %v", err)
	}
	if _, err := s2.Get(ctx, b.ID); !errors.Is(err, ErrLocked) {
		t.Fatalf("Get while locked: %v", err)
	}
	if _, err := s2.Status(ctx); err != nil {
		t.Fatalf("Status while locked: %v", err)
	}
	s2.Close()
	after := hashDir(t, dir)
	if len(before) != len(after) {
		t.Fatalf("files changed: before %v after %v", keys(before), keys(after))
	}
	for name, h := range before {
		if after[name] != h {
			t.Fatalf("%s changed after a wrong passphrase", name)
		}
	}

	// The recovery code unlocks, typed loosely, and resets the passphrase.
	s3, err := Open(ctx, dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if err := s3.Unlock(ctx, []byte(" "+code+" ")); err != nil {
		t.Fatalf("Unlock with recovery code: %v", err)
	}
	if err := s3.SetPassphrase(ctx, []byte("nouveau")); err != nil {
		t.Fatal(err)
	}
	s3.Lock()
	if err := s3.Unlock(ctx, []byte(testPass)); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("old passphrase still works: %v", err)
	}
	if err := s3.Unlock(ctx, []byte("nouveau")); err != nil {
		t.Fatalf("new passphrase: %v", err)
	}
	it, err := s3.Get(ctx, b.ID)
	if err != nil || it.Record.(*domain.Beneficiary).Nom != b.Nom {
		t.Fatalf("Get after passphrase change: %+v, %v", it, err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestSaveLogsFieldLevelChanges(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	res := mustSave(t, s, b, c, a)
	if res.Created != 3 || res.FirstSeq != 1 || res.LastSeq != 3 {
		t.Fatalf("first save: %+v", res)
	}
	// Same content again: nothing new.
	b2, c2, a2 := *b, *c, *a
	if res := mustSave(t, s, &b2, &c2, &a2); res.Unchanged != 3 || res.LastSeq != 0 {
		t.Fatalf("idempotent save: %+v", res)
	}
	// One field edited: one change with that field only.
	a3 := *a
	a3.Duree = 60
	if res := mustSave(t, s, &a3); res.Updated != 1 || res.LastSeq != 4 {
		t.Fatalf("update: %+v", res)
	}
	pend, err := s.Pending(ctx, 3, 10)
	if err != nil || len(pend) != 1 {
		t.Fatalf("Pending: %v %v", pend, err)
	}
	if got := pend[0].Fields.Nums(); !slices.Equal(got, []uint64{4}) || pend[0].ID != a.ID || pend[0].Op != change.OpUpsert {
		t.Fatalf("change fields %v of %v", got, pend[0])
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 4 || st.LastSeq != 4 || st.Records[domain.KindActivity].Live != 1 {
		t.Fatalf("status %+v", st)
	}
	if err := s.Ack(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, 2); err != nil { // never backwards
		t.Fatal(err)
	}
	if err := s.Ack(ctx, 99); err == nil {
		t.Fatal("ack beyond the log accepted")
	}
	if st, _ := s.Status(ctx); st.Pending != 1 || st.AckedSeq != 3 {
		t.Fatalf("after ack: %+v", st)
	}
}

func TestConsentGatesIdentityAndAssessment(t *testing.T) {
	s, _ := mustCreate(t)
	b, _, _ := followed()
	_, err := s.Save(context.Background(), b)
	var be *BatchError
	var ve *domain.ValidationError
	if !errors.As(err, &be) || !errors.As(be.Items[0].Err, &ve) || ve.Problems[0].Code != domain.ProblemConsentRequired {
		t.Fatalf("identity without consent: %v", err)
	}
	if st, _ := s.Status(context.Background()); st.LastSeq != 0 || st.Records[domain.KindBeneficiary].Live != 0 {
		t.Fatalf("a refused batch wrote something: %+v", st)
	}
	b, c, _ := followed(domain.FinaliteSuivi)
	as := &domain.Assessment{Beneficiaire: b.ID, Date: "2026-03-02", Domaines: map[string]string{"information_donnees": "1"}}
	_, err = s.Save(context.Background(), b, c, as)
	if !errors.As(err, &be) || len(be.Items) != 1 || be.Items[0].Index != 2 {
		t.Fatalf("assessment without diagnostic consent: %v", err)
	}
	c.Finalites = []string{domain.FinaliteSuivi, domain.FinaliteDiagnostic}
	mustSave(t, s, b, c, as)
}

func TestMovedCiphertextFailsToOpen(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	// Copy the beneficiary's sealed body onto the activity's row.
	if _, err := s.w.ExecContext(ctx, `UPDATE records SET body = (SELECT body FROM records WHERE id = ?) WHERE id = ?`, b.ID[:], a.ID[:]); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, a.ID)
	if !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("moved ciphertext: %v, want seal.ErrOpen", err)
	}
	t.Logf("error as shown: %v", err)
	// Same kind, other row: still refused.
	b2 := &domain.Beneficiary{ID: ident.New(), Genre: "masculin"}
	mustSave(t, s, b2)
	s.w.ExecContext(ctx, `UPDATE records SET body = (SELECT body FROM records WHERE id = ?) WHERE id = ?`, b.ID[:], b2.ID[:])
	if _, err := s.Get(ctx, b2.ID); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("ciphertext moved within a kind: %v", err)
	}
}

func TestEraseStripsPersonalFieldsEverywhere(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi, domain.FinaliteDiagnostic)
	as := &domain.Assessment{ID: ident.New(), Beneficiaire: b.ID, Date: "2026-03-02", Commentaire: "Hélène a peur des arnaques",
		Domaines: map[string]string{"information_donnees": "1", "protection_securite": "0"}, AutonomieGlobale: "partiellement_autonome"}
	mustSave(t, s, b, c, a, as)
	if _, err := s.EraseBeneficiary(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	it, err := s.Get(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := it.Record.(*domain.Beneficiary)
	if got.Identified() || !it.Erased {
		t.Fatalf("beneficiary after erase: %+v", got)
	}
	if got.Genre != "feminin" || got.StatutSocial != "retraite" || got.TrancheAge != "soixante_dix_plus" || got.Commune != "88160" {
		t.Fatalf("statistics lost: %+v", got)
	}
	ai, _ := s.Get(ctx, a.ID)
	if act := ai.Record.(*domain.Activity); act.Notes != "" || act.Duree != 45 || act.Beneficiaire == nil {
		t.Fatalf("activity after erase: %+v", act)
	}
	asi, _ := s.Get(ctx, as.ID)
	if got := asi.Record.(*domain.Assessment); got.Commentaire != "" || !got.Beneficiaire.IsZero() || got.Domaines["information_donnees"] != "1" {
		t.Fatalf("assessment after erase: %+v", got)
	}
	// The log keeps no personal field either.
	pend, err := s.Pending(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[change.Op]int{}
	for _, ch := range pend {
		ops[ch.Op]++
		for _, n := range domain.PersonalFields(ch.Kind) {
			if _, ok := ch.Fields[n]; ok && (ch.ID == b.ID || ch.ID == a.ID || ch.ID == as.ID) {
				t.Errorf("change %d of %s still has personal field %d", ch.Seq, ch.Kind, n)
			}
		}
	}
	if ops[change.OpErase] != 3 {
		t.Fatalf("erase changes: %v", ops)
	}
	// An erased assessment, listed and imported again, is still valid.
	if _, err := s.Save(ctx, asi.Record); err != nil {
		t.Fatalf("re-saving an erased assessment: %v", err)
	}
	// Writing the identity again cannot bring it back.
	b.Normalize()
	mustSave(t, s, b)
	if it, _ := s.Get(ctx, b.ID); it.Record.(*domain.Beneficiary).Identified() {
		t.Fatal("identity came back after erasure")
	}
}

func TestWithdrawConsent(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, _ := followed(domain.FinaliteSuivi, domain.FinaliteDiagnostic)
	as := &domain.Assessment{ID: ident.New(), Beneficiaire: b.ID, Date: "2026-03-02", Commentaire: "à revoir", AutonomieGlobale: "autonome"}
	mustSave(t, s, b, c, as)

	eff, err := s.WithdrawConsent(ctx, c.ID, []string{domain.FinaliteDiagnostic}, "2026-04-01")
	if err != nil {
		t.Fatal(err)
	}
	if !eff.EraseAssessments || eff.EraseIdentity {
		t.Fatalf("effects %+v", eff)
	}
	if it, _ := s.Get(ctx, as.ID); it.Record.(*domain.Assessment).Commentaire != "" {
		t.Fatal("assessment kept after diagnostic withdrawn")
	}
	if it, _ := s.Get(ctx, b.ID); !it.Record.(*domain.Beneficiary).Identified() {
		t.Fatal("identity erased though suivi_nominatif still given")
	}
	// A new assessment is now refused.
	if _, err := s.Save(ctx, &domain.Assessment{Beneficiaire: b.ID, Date: "2026-04-02"}); err == nil {
		t.Fatal("assessment accepted after diagnostic withdrawn")
	}
	if _, err := s.WithdrawConsent(ctx, c.ID, []string{"inconnu"}, "2026-04-02"); err == nil {
		t.Fatal("unknown purpose accepted")
	}
	if _, err := s.WithdrawConsent(ctx, c.ID, nil, "2026-04-02"); err != nil {
		t.Fatal(err)
	}
	it, _ := s.Get(ctx, b.ID)
	if it.Record.(*domain.Beneficiary).Identified() {
		t.Fatal("identity kept after full withdrawal")
	}
	ci, _ := s.Get(ctx, c.ID)
	if got := ci.Record.(*domain.Consent); got.RetireLe != "2026-04-02" || len(got.Active()) != 0 {
		t.Fatalf("consent after withdrawal: %+v", got)
	}
}

func TestSchemaTooNewIsRefused(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, 'future', 'x')`); err != nil {
		t.Fatal(err)
	}
	dir := s.dir
	s.Close()
	_, err := Open(ctx, dir, Options{})
	if !errors.Is(err, ErrTooNew) {
		t.Fatalf("Open of a newer store: %v", err)
	}
	t.Logf("message: %v", err)
}

func TestDeleteIsFinal(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	st := &domain.TourStop{Vehicule: "Numéribus 1", Date: "2026-03-02", Lieu: "Place de la mairie", Commune: "88160"}
	mustSave(t, s, st)
	if _, err := s.Delete(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	st.Lieu = "Ailleurs"
	if _, err := s.Save(ctx, st); !errors.Is(err, ErrConflict) {
		t.Fatalf("update of a deleted record: %v", err)
	}
	n := 0
	s.List(ctx, domain.KindTourStop, false, func(Item) error { n++; return nil })
	if n != 0 {
		t.Fatal("deleted record listed")
	}
	s.List(ctx, domain.KindTourStop, true, func(it Item) error { n++; return nil })
	if n != 1 {
		t.Fatal("tombstone not listed")
	}
}
