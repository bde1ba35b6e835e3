package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// scanned is what the UI would compute without the index, by listing every
// record: each beneficiary's live consents, assessments and activities
// (theirs, and the workshops they attended) in List order, and the live
// beneficiaries for the search.
type scanned struct {
	related map[ident.ID][]ident.ID
	benefs  []*domain.Beneficiary
}

func scanAll(t *testing.T, s *Store) scanned {
	t.Helper()
	sc := scanned{related: map[ident.ID][]ident.ID{}}
	err := s.List(context.Background(), "", false, func(it Item) error {
		switch rec := it.Record.(type) {
		case *domain.Beneficiary:
			sc.benefs = append(sc.benefs, rec)
		case *domain.Consent:
			sc.related[rec.Beneficiaire] = append(sc.related[rec.Beneficiaire], rec.ID)
		case *domain.Activity:
			if rec.Beneficiaire != nil {
				sc.related[*rec.Beneficiaire] = append(sc.related[*rec.Beneficiaire], rec.ID)
			}
			// A workshop is on the page of each followed participant.
			if rec.Type == "collectif" && rec.Participants != nil {
				seen := map[ident.ID]bool{}
				for _, b := range rec.Participants.Beneficiaires {
					if b.IsZero() || seen[b] || (rec.Beneficiaire != nil && *rec.Beneficiaire == b) {
						continue
					}
					seen[b] = true
					sc.related[b] = append(sc.related[b], rec.ID)
				}
			}
		case *domain.Assessment:
			sc.related[rec.Beneficiaire] = append(sc.related[rec.Beneficiaire], rec.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// search is the UI's search before the index, word for word.
func (sc scanned) search(q string) []ident.ID {
	nq := territoire.Normalize(strings.TrimSpace(q))
	if nq == "" {
		return nil
	}
	var out []ident.ID
	for _, b := range sc.benefs {
		if !b.Identified() {
			continue
		}
		name := territoire.Normalize(b.Prenom + " " + b.Nom)
		rev := territoire.Normalize(b.Nom + " " + b.Prenom)
		if strings.Contains(name, nq) || strings.Contains(rev, nq) {
			out = append(out, b.ID)
		}
	}
	return out
}

func related(t *testing.T, s *Store, b ident.ID) []ident.ID {
	t.Helper()
	var out []ident.ID
	if err := s.Related(context.Background(), b, func(it Item) error {
		out = append(out, it.Record.RecordID())
		return nil
	}); err != nil {
		t.Fatalf("Related: %v", err)
	}
	return out
}

func searched(t *testing.T, s *Store, q string) []ident.ID {
	t.Helper()
	var out []ident.ID
	if err := s.SearchNames(context.Background(), q, func(it Item) error {
		out = append(out, it.Record.RecordID())
		return nil
	}); err != nil {
		t.Fatalf("SearchNames(%q): %v", q, err)
	}
	return out
}

// sameAsScan checks Related and SearchNames against the scan for every
// beneficiary and every query.
func sameAsScan(t *testing.T, s *Store, queries []string) {
	t.Helper()
	sc := scanAll(t, s)
	ids := []ident.ID{ident.New()} // and one nobody refers to
	for _, b := range sc.benefs {
		ids = append(ids, b.ID)
	}
	for b := range sc.related {
		// Deleted beneficiaries too; not the zero id, which assessments
		// erased or made anonymous "refer to": no page has it.
		if !b.IsZero() {
			ids = append(ids, b)
		}
	}
	for _, b := range ids {
		if got, want := related(t, s, b), sc.related[b]; !slices.Equal(got, want) {
			t.Errorf("Related(%s) = %v, the scan gives %v", b, got, want)
		}
	}
	found := 0
	for _, q := range queries {
		got, want := searched(t, s, q), sc.search(q)
		if !slices.Equal(got, want) {
			t.Errorf("SearchNames(%q) = %v, the scan gives %v", q, got, want)
		}
		found += len(want)
	}
	if found == 0 {
		t.Fatal("no query found anybody: the comparison proves nothing")
	}
}

// indexFixture stores a fixture with the cases a name index can get
// wrong, and returns the queries to compare.
type indexFixture struct {
	set      *fixture.Set
	queries  []string
	idents   []*domain.Beneficiary // identified, from the fixture
	homonyms [2]*domain.Beneficiary
	saint    *domain.Beneficiary
	ghost    [2]ident.ID // a beneficiary and an activity whose save failed
}

func newIndexFixture(t *testing.T, s *Store) *indexFixture {
	t.Helper()
	f := &indexFixture{set: fixture.Generate(fixture.Options{N: 400, Seed: 7})}
	if _, err := stream(context.Background(), s, 256, f.set.Records()...); err != nil {
		t.Fatal(err)
	}
	// Homonyms: two people, one name.
	for i := range f.homonyms {
		b, c, a := followed(domain.FinaliteSuivi, domain.FinaliteDiagnostic)
		as := &domain.Assessment{ID: ident.New(), Beneficiaire: b.ID, Date: "2026-03-02", Commentaire: "à revoir",
			Domaines: map[string]string{"information_donnees": "1"}}
		mustSave(t, s, b, c, a, as)
		f.homonyms[i] = b
	}
	// Abbreviated saints, apostrophes, and a person followed by phone
	// number only.
	f.saint = &domain.Beneficiary{ID: ident.New(), Prenom: "Zoé", Nom: "Saint-Dié d’Œuilly", Commune: "88160"}
	phone := &domain.Beneficiary{ID: ident.New(), Telephone: "0611223344", Commune: "88160"}
	for _, b := range []*domain.Beneficiary{f.saint, phone} {
		mustSave(t, s, b, &domain.Consent{ID: ident.New(), Beneficiaire: b.ID, Finalites: []string{domain.FinaliteSuivi},
			Mode: "ecrit", Date: "2026-03-02", TexteVersion: "v1"})
	}
	for _, b := range f.set.Beneficiaries {
		if b.Identified() {
			f.idents = append(f.idents, b)
		}
	}
	if len(f.idents) < 20 {
		t.Fatalf("fixture has %d identified beneficiaries", len(f.idents))
	}
	f.queries = []string{"Hélène", "helene lefevre", "LEFÈVRE-GARNIER", "garnier helene", "zoe", "st die", "saint-dié",
		"d oeuilly", "Œuilly", "", "   ", "-", "'", "0611223344", "e", "ma"}
	for _, b := range f.idents[:20] {
		f.queries = append(f.queries, b.Nom, strings.ToUpper(territoire.Normalize(b.Prenom)), b.Nom+" "+b.Prenom,
			territoire.Normalize(b.Prenom)[:2])
	}
	return f
}

// edit makes, through the store, the writes a person's page and a search
// must follow: erasure, withdrawals, deletions, a renaming, an activity
// moved to another person, a remote erasure and a remote new person.
func (f *indexFixture) edit(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	// Erasure of one homonym and of a fixture person.
	if _, err := s.EraseBeneficiary(ctx, f.homonyms[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EraseBeneficiary(ctx, f.idents[0].ID); err != nil {
		t.Fatal(err)
	}
	// Withdrawals: everything (identity erased), diagnostic only
	// (assessments erased, unlinked).
	consentOf := func(b ident.ID) ident.ID {
		for _, c := range f.set.Consents {
			if c.Beneficiaire == b {
				return c.ID
			}
		}
		t.Fatalf("no consent for %s", b)
		return ident.Nil
	}
	if _, err := s.WithdrawConsent(ctx, consentOf(f.idents[1].ID), nil, "2026-04-01"); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.set.Consents {
		if slices.Contains(c.Finalites, domain.FinaliteDiagnostic) && c.Beneficiaire != f.idents[1].ID && c.Beneficiaire != f.idents[0].ID {
			if _, err := s.WithdrawConsent(ctx, c.ID, []string{domain.FinaliteDiagnostic}, "2026-04-01"); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	// Deletions: a person, an activity, a consent of someone else.
	if _, err := s.Delete(ctx, f.idents[2].ID); err != nil {
		t.Fatal(err)
	}
	var moved *domain.Activity
	for _, a := range f.set.Activities {
		if a.Beneficiaire != nil && *a.Beneficiaire == f.idents[3].ID {
			if _, err := s.Delete(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
		}
		if a.Beneficiaire != nil && *a.Beneficiaire != f.idents[3].ID && moved == nil && *a.Beneficiaire != f.idents[0].ID {
			moved = a
		}
	}
	if _, err := s.Delete(ctx, consentOf(f.idents[4].ID)); err != nil {
		t.Fatal(err)
	}
	// A renaming, and an activity moved to the other homonym.
	renamed := *f.idents[5]
	renamed.Nom = "Étiévant"
	mustSave(t, s, &renamed)
	m := *moved
	m.Beneficiaire = ptr(f.homonyms[1].ID)
	mustSave(t, s, &m)
	// From another device: a new person, and an erasure.
	nb := &domain.Beneficiary{ID: ident.New(), Prenom: "Anaïs", Nom: "Lefèvre", Commune: "88160"}
	fields, err := change.Encode(nb)
	if err != nil {
		t.Fatal(err)
	}
	stamp := s.clock.Now() + 1000
	cs := []change.Change{
		{Kind: domain.KindBeneficiary, ID: nb.ID, Op: change.OpUpsert, Fields: fields, HLC: stamp, Device: "other", Seq: 1},
		{Kind: domain.KindBeneficiary, ID: f.idents[6].ID, Op: change.OpErase, HLC: stamp + 1, Device: "other", Seq: 2},
	}
	if _, err := s.ApplyRemote(ctx, cs, 2, nil); err != nil {
		t.Fatal(err)
	}
	// A batch that fails writes nothing, the index included.
	ghost := &domain.Beneficiary{ID: ident.New(), Prenom: "Fantôme", Nom: "Zorglub"} // identity without consent
	ghostAct := m
	ghostAct.ID = ident.New()
	if _, err := s.Save(ctx, &ghostAct, ghost); err == nil {
		t.Fatal("identity without consent accepted")
	}
	f.ghost = [2]ident.ID{ghost.ID, ghostAct.ID}
	f.queries = append(f.queries, "etievant", territoire.Normalize(f.idents[5].Nom), "anais lefevre", "zorglub", "fantome",
		f.idents[0].Nom, f.idents[1].Nom, f.idents[2].Nom, f.idents[6].Nom)
}

// The index gives the scan's results, in the scan's order: built from a
// store (accents, homonyms, erased, withdrawn, deleted people), then
// followed through every kind of write, then built again from scratch.
func TestIndexMatchesTheScan(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	f := newIndexFixture(t, s)
	sameAsScan(t, s, f.queries) // built at the first lookup
	ix := s.ix
	f.edit(t, s)
	if got := searched(t, s, "e"); s.ix != ix || len(got) == 0 {
		t.Fatal("the index was built again after this process's own writes")
	}
	sameAsScan(t, s, f.queries) // followed write by write
	// The search would not show it (it reads each candidate back), but
	// the index must not hold it either.
	if _, held := s.ix.refOf[f.ghost[1]]; held || !slices.Equal(related(t, s, f.homonyms[1].ID), scanAll(t, s).related[f.homonyms[1].ID]) {
		t.Fatal("a rolled-back save left its activity in the index")
	}
	if _, held := s.ix.names[f.ghost[0]]; held || len(searched(t, s, "zorglub")) != 0 {
		t.Fatal("a rolled-back save left its name in the index")
	}
	if got := searched(t, s, f.idents[0].Nom+" "+f.idents[0].Prenom); slices.Contains(got, f.idents[0].ID) {
		t.Fatal("an erased person is still found by name")
	}

	s2, err := Open(ctx, s.dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	sameAsScan(t, s2, f.queries) // built from the edited store
}

// Erasure removes the person's names from memory at once, and Lock wipes
// every name the index held.
func TestIndexForgetsErasedNames(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	other, oc, _ := followed(domain.FinaliteSuivi)
	other.Prenom, other.Nom = "Léon", "Marchal"
	mustSave(t, s, b, c, a, other, oc)
	if got := searched(t, s, "helene"); !slices.Equal(got, []ident.ID{b.ID}) {
		t.Fatalf("before erasure: %v", got)
	}
	held := s.ix.names[b.ID]
	if !strings.Contains(string(held.name), "helene") {
		t.Fatalf("index holds %q", held.name)
	}
	if _, err := s.EraseBeneficiary(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ix.names[b.ID]; ok {
		t.Fatal("erased person's name still in the index")
	}
	if strings.Trim(string(held.name)+string(held.rev), "\x00") != "" {
		t.Fatalf("erased name not wiped from memory: %q %q", held.name, held.rev)
	}
	if got := searched(t, s, "helene"); len(got) != 0 {
		t.Fatalf("erased person found: %v", got)
	}
	if got := related(t, s, b.ID); !slices.Equal(got, []ident.ID{c.ID, a.ID}) {
		t.Fatalf("erased person's page lists %v", got) // the anonymous records stay
	}

	kept := s.ix.names[other.ID]
	s.Lock()
	if s.ix != nil || strings.Trim(string(kept.name)+string(kept.rev), "\x00") != "" {
		t.Fatalf("Lock left the index or its names: %q", kept.name)
	}
	if err := s.SearchNames(ctx, "leon", func(Item) error { return nil }); !errors.Is(err, ErrLocked) {
		t.Fatalf("search while locked: %v", err)
	}
	if err := s.Related(ctx, b.ID, func(Item) error { return nil }); !errors.Is(err, ErrLocked) {
		t.Fatalf("page while locked: %v", err)
	}
}

// `agent import` or `agent seed` beside `agent serve`: what one process
// writes, the other's index shows at its next lookup, whoever wrote last.
func TestIndexSeesTheOtherProcessWrites(t *testing.T) {
	ctx := context.Background()
	a, _ := mustCreate(t)
	b, err := Open(ctx, a.dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	p1, c1, act1 := followed(domain.FinaliteSuivi)
	mustSave(t, a, p1, c1)
	if got := searched(t, a, "lefevre"); !slices.Equal(got, []ident.ID{p1.ID}) {
		t.Fatalf("a: %v", got)
	}
	if got := searched(t, b, "lefevre"); !slices.Equal(got, []ident.ID{p1.ID}) {
		t.Fatalf("b: %v", got)
	}
	// b writes: a new person, an activity of the first one. a catches
	// up from the log, without building its index again.
	ix := a.ix
	p2, c2, _ := followed(domain.FinaliteSuivi)
	p2.Nom = "Lefèvre"
	mustSave(t, b, p2, c2, act1)
	if got := searched(t, a, "lefevre"); !slices.Equal(got, sortedIDs(p1.ID, p2.ID)) {
		t.Fatalf("a after b's save: %v", got)
	}
	if got := related(t, a, p1.ID); !slices.Equal(got, []ident.ID{c1.ID, act1.ID}) {
		t.Fatalf("a's page after b's save: %v", got)
	}
	if a.ix != ix {
		t.Error("a built its index again for a save it could catch up with")
	}
	// b erases p1, then a writes before looking: its own write must not
	// hide b's.
	if _, err := b.EraseBeneficiary(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	p3, c3, _ := followed(domain.FinaliteSuivi)
	mustSave(t, a, p3, c3)
	if got := searched(t, a, "lefevre"); !slices.Equal(got, sortedIDs(p2.ID, p3.ID)) {
		t.Fatalf("a after b's erasure and its own save: %v", got)
	}
	if got := searched(t, b, "lefevre"); !slices.Equal(got, sortedIDs(p2.ID, p3.ID)) {
		t.Fatalf("b after a's save: %v", got)
	}
	if a.ix != ix {
		t.Error("a built its index again")
	}
	// a pulls changes itself (its sync loop), then b saves: a's index
	// followed its own pull, and catches up with b's save from the log.
	stamp := hlc.FromTime(time.Now())
	remote := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 2", Date: "2026-03-02", Lieu: "Mairie", Commune: "88160"}
	rf, err := change.Encode(remote)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplyRemote(ctx, []change.Change{{Kind: domain.KindTourStop, ID: remote.ID, Op: change.OpUpsert, Fields: rf,
		HLC: stamp, Device: "other", Seq: 1}}, 1, []byte("tag1")); err != nil {
		t.Fatal(err)
	}
	p5, c5, _ := followed(domain.FinaliteSuivi)
	p5.Nom = "Lefèvre"
	mustSave(t, b, p5, c5)
	if got := searched(t, a, "lefevre"); !slices.Equal(got, sortedIDs(p2.ID, p3.ID, p5.ID)) {
		t.Fatalf("a after its pull and b's save: %v", got)
	}
	if a.ix != ix {
		t.Error("a built its index again after its own pull")
	}
	// b applies pulled changes, which log nothing: a builds its index
	// again. A new person, and p2 erased by another device.
	p4 := &domain.Beneficiary{ID: ident.New(), Prenom: "Anaïs", Nom: "Lefèvre", Commune: "88160"}
	fields, err := change.Encode(p4)
	if err != nil {
		t.Fatal(err)
	}
	cs := []change.Change{
		{Kind: domain.KindBeneficiary, ID: p4.ID, Op: change.OpUpsert, Fields: fields, HLC: stamp + 1, Device: "other", Seq: 2},
		{Kind: domain.KindBeneficiary, ID: p2.ID, Op: change.OpErase, HLC: stamp + 2, Device: "other", Seq: 3},
	}
	if _, err := b.ApplyRemote(ctx, cs, 3, []byte("tag3")); err != nil {
		t.Fatal(err)
	}
	if got := searched(t, a, "lefevre"); !slices.Equal(got, sortedIDs(p3.ID, p4.ID, p5.ID)) {
		t.Fatalf("a after b's pull: %v", got)
	}
	if a.ix == ix {
		t.Error("a caught up with pulled changes from a log that does not hold them")
	}
	sameAsScan(t, a, []string{"lefevre", "helene", "anais"})
}

func sortedIDs(ids ...ident.ID) []ident.ID {
	slices.SortFunc(ids, func(p, q ident.ID) int { return strings.Compare(string(p[:]), string(q[:])) })
	return ids
}

// With IndexOnUnlock the build runs in the background: writes made while
// it reads end up in it, and Lock in the middle of it stops it cleanly
// (the race detector watches the key).
func TestIndexBuiltInTheBackground(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	if _, err := stream(ctx, s, 256, fixture.Generate(fixture.Options{N: 300, Seed: 3}).Records()...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(ctx, s.dir, Options{KDF: testKDF, IndexOnUnlock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 5 {
		if err := s.Unlock(ctx, []byte(testPass)); err != nil {
			t.Fatal(err)
		}
		s.Lock() // the build is stopped, or finished and wiped
	}
	if err := s.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	p, c, act := followed(domain.FinaliteSuivi)
	p.Nom = "Quintard"
	mustSave(t, s, p, c, act) // most likely while the build reads
	if got := searched(t, s, "quintard"); !slices.Equal(got, []ident.ID{p.ID}) {
		t.Fatalf("a save made during the build: %v", got)
	}
	if got := related(t, s, p.ID); !slices.Equal(got, []ident.ID{c.ID, act.ID}) {
		t.Fatalf("its page: %v", got)
	}
	sameAsScan(t, s, []string{"quintard", "helene", "ma", "e"})
}

// A lookup waiting for the build gives up with its context, and the build
// goes on for the next one.
func TestIndexWaitEndsWithTheContext(t *testing.T) {
	s, _ := mustCreate(t)
	p, c, _ := followed(domain.FinaliteSuivi)
	mustSave(t, s, p, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.SearchNames(ctx, "helene", func(Item) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled search: %v", err)
	}
	if got := searched(t, s, "helene"); !slices.Equal(got, []ident.ID{p.ID}) {
		t.Fatalf("next search: %v", got)
	}
}
