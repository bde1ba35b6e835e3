package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"numeribus/agent/store"
	hubcli "numeribus/hub/cli"
	"numeribus/hub/syncserver"
	"numeribus/internal/access"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
	"numeribus/internal/sqlitex"
)

// A person's distinctive values: after an erasure or a purge, no file of
// the agents' or the hub's data directories holds any of them, in clear
// or in the sealed form they had.
var quax = struct {
	first, name, phone, email, address, note, comment string
}{"Zéphyrine", "Quaxlebrot-Vantongerloo", "0677123409", "zephyrine.quaxlebrot@example.org",
	"17 impasse des Quaxles", "note-Quaxlebrot-4471", "commentaire-Quaxlebrot-9921"}

func quaxValues() []string {
	return []string{quax.first, quax.name, quax.phone, quax.email, quax.address, quax.note, quax.comment}
}

// quaxWorld is Zéphyrine's records, made at made: her identity, a
// consent, a session with notes, two assessments with a comment.
type quaxWorld struct {
	who           *domain.Beneficiary
	consent       *domain.Consent
	session       *domain.Activity
	first, second *domain.Assessment
	sealedOn      map[string][][]byte // agent dir → sealed bodies of her erased records, before
}

// madeAt returns a UUIDv7 of time t (ident.NewAt never goes back before
// an id this process made).
func madeAt(t time.Time) ident.ID { return ident.FromRand(t, rand.Uint64) }

func newQuax(made time.Time) *quaxWorld {
	date := made.Format(domain.DateLayout)
	w := &quaxWorld{sealedOn: map[string][][]byte{}}
	w.who = &domain.Beneficiary{ID: madeAt(made), Prenom: quax.first, Nom: quax.name, Telephone: quax.phone, Email: quax.email,
		Adresse: quax.address, AnneeNaissance: 1951, Genre: "feminin", StatutSocial: "retraite", Commune: "88160", PremierAccompagnement: date}
	w.consent = &domain.Consent{ID: madeAt(made), Beneficiaire: w.who.ID, Mode: "ecrit", Date: date,
		Finalites: []string{domain.FinaliteSuivi, domain.FinaliteDiagnostic, domain.FinalitePartage}}
	w.session = &domain.Activity{ID: madeAt(made), Type: "individuel", Date: date, Duree: 45, TypeLieu: "lieu_activite", Commune: "88160",
		Thematiques: []string{"email"}, Beneficiaire: &w.who.ID, Autonomie: "partiellement_autonome", Notes: quax.note}
	w.first = &domain.Assessment{ID: madeAt(made), Beneficiaire: w.who.ID, Date: date, Commune: "88160", AutonomieGlobale: "entierement_accompagne",
		Domaines: map[string]string{"information_donnees": "0", "communication_collaboration": "1"}, Commentaire: quax.comment}
	w.second = &domain.Assessment{ID: madeAt(made), Beneficiaire: w.who.ID, Date: made.AddDate(0, 1, 0).Format(domain.DateLayout),
		Commune: "88160", AutonomieGlobale: "partiellement_autonome",
		Domaines: map[string]string{"information_donnees": "2", "communication_collaboration": "1"}, Commentaire: quax.comment}
	return w
}

func (w *quaxWorld) records() []domain.Record {
	return []domain.Record{w.who, w.consent, w.session, w.first, w.second}
}

// erased lists the records an erasure of her takes along.
func (w *quaxWorld) erased() []ident.ID {
	return []ident.ID{w.who.ID, w.session.ID, w.first.ID, w.second.ID}
}

// noteSealed keeps the sealed bodies the agent holds of her records now
// (records, logged changes, their copies sealed to the hub): after the
// erasure these very bytes must be nowhere, WAL and freed pages included.
func (w *quaxWorld) noteSealed(t *testing.T, a *testAgent) {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(a.st.Path(), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range w.erased() {
		for _, q := range []string{`SELECT body FROM records WHERE id = ?`, `SELECT body FROM changes WHERE record_id = ?`,
			`SELECT hub_body FROM changes WHERE record_id = ? AND hub_body IS NOT NULL`} {
			rows, err := db.Query(q, id[:])
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var b []byte
				if err := rows.Scan(&b); err != nil {
					t.Fatal(err)
				}
				if len(b) >= 48 {
					w.sealedOn[a.dir] = append(w.sealedOn[a.dir], append([]byte(nil), b[len(b)/2-16:len(b)/2+16]...))
				}
			}
			rows.Close()
		}
	}
	if len(w.sealedOn[a.dir]) == 0 {
		t.Fatalf("%s holds no sealed body of hers", a.name)
	}
}

// scanFiles returns, for each file under dir, which of needles its bytes
// hold ("" when none does).
func scanFiles(t *testing.T, dir string, needles map[string][]byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for what, n := range needles {
			if bytes.Contains(b, n) {
				hits = append(hits, filepath.Base(p)+": "+what)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func clearNeedles() map[string][]byte {
	m := map[string][]byte{}
	for _, v := range quaxValues() {
		m[v] = []byte(v)
	}
	return m
}

// assertGone checks every file of the hub's and the agents' directories
// for her values in clear, and the agents' for the sealed bodies she had;
// and that no agent shows anything of hers, its search included, nor
// holds any of it in its log once opened.
func (w *quaxWorld) assertGone(t *testing.T, h *testHub, agents ...*testAgent) {
	t.Helper()
	if hits := scanFiles(t, h.dir, clearNeedles()); len(hits) > 0 {
		t.Errorf("the hub's files still hold her values: %v", hits)
	}
	for _, a := range agents {
		needles := clearNeedles()
		for i, n := range w.sealedOn[a.dir] {
			needles["sealed body "+string(rune('A'+i))] = n
		}
		if hits := scanFiles(t, a.dir, needles); len(hits) > 0 {
			t.Errorf("%s's files still hold: %v", a.name, hits)
		}
		for _, l := range a.lines(t) {
			for _, v := range quaxValues() {
				if strings.Contains(l, v) {
					t.Errorf("%s still shows %q: %s", a.name, v, l)
				}
			}
		}
		var found int
		if err := a.st.SearchNames(context.Background(), quax.name, func(store.Item) error { found++; return nil }); err != nil || found > 0 {
			t.Errorf("%s's search finds her: %d %v", a.name, found, err)
		}
		// Her dossier opens this laptop's log of every record about her.
		d, err := a.st.Dossier(context.Background(), w.who.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var doc bytes.Buffer
		access.WriteText(&doc, d)
		for _, v := range quaxValues() {
			if strings.Contains(doc.String(), v) {
				t.Errorf("%s's opened log still says %q", a.name, v)
			}
		}
	}
}

// An erasure on one laptop reaches the hub and the team's other laptop,
// and leaves no byte of the person behind: not in clear in any file of
// the hub's directory (SQLite: secure_delete, the WAL checkpointed), not
// in any file of either agent's, not even as the sealed bodies the
// agents held of her; not in their opened logs, not in their search.
func TestErasureLeavesNoByteBehind(t *testing.T) {
	ctx := context.Background()
	h := startHub(t)
	a1 := newAgent(t, h, "bus-1", "cd88", nil)
	a2 := newAgent(t, h, "bus-2", "cd88", nil)
	w := newQuax(time.Now())
	a1.save(t, w.records()...)
	a1.sync(t)
	a2.sync(t)
	if hits := scanFiles(t, h.dir, clearNeedles()); len(hits) < len(quaxValues()) {
		t.Fatalf("the hub does not hold her values before the erasure (the scan would prove nothing): %v", hits)
	}
	w.noteSealed(t, a1)
	w.noteSealed(t, a2)
	if _, err := a1.st.EraseBeneficiary(ctx, w.who.ID); err != nil {
		t.Fatal(err)
	}
	a1.sync(t)
	a2.sync(t)
	w.assertGone(t, h, a1, a2)
	// What stays: the anonymous record, the activity and its statistics.
	it, err := a2.st.Get(ctx, w.who.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b := it.Record.(*domain.Beneficiary); b.Genre != "feminin" || b.Commune != "88160" || !it.Erased {
		t.Errorf("her anonymous record on bus-2: %+v", b)
	}
}

// ageWorld is a team whose work was recorded long ago, on laptops and a
// hub whose clocks the test sets, with Zéphyrine's records 30 months old,
// a workshop's notes 20 months old and a person met 3 months ago.
type ageWorld struct {
	*quaxWorld
	clk            *hubClock
	h              *testHub
	a1, a2         *testAgent
	bob            *domain.Beneficiary
	workshop       *domain.Activity
	old, mid, late time.Time
}

func newAgeWorld(t *testing.T) *ageWorld {
	t.Helper()
	now := time.Now()
	aw := &ageWorld{clk: &hubClock{}, old: now.AddDate(0, -30, 0), mid: now.AddDate(0, -20, 0), late: now.AddDate(0, -3, 0)}
	aw.clk.later(aw.old.Sub(now))
	aw.h = startHubTuned(t, t.TempDir(), func(o *syncserver.Options) { o.Now = aw.clk.now })
	// While the world is made, nothing is due: the laptops would purge
	// after each round.
	for _, k := range []string{"identite", "diagnostics", "notes"} {
		if code, out := aw.h.sub(t, "retention", "set", "--kind", k, "--months", "60"); code != 0 {
			t.Fatalf("retention set: %d %s", code, out)
		}
	}
	aw.a1 = newAgent(t, aw.h, "bus-1", "cd88", aw.clk.now)
	aw.a2 = newAgent(t, aw.h, "bus-2", "cd88", aw.clk.now)
	aw.quaxWorld = newQuax(aw.old)
	aw.bob = &domain.Beneficiary{ID: madeAt(aw.old), Prenom: "Barnabé", Nom: "Toujours-La", Genre: "masculin", Commune: "88160"}
	bobConsent := &domain.Consent{ID: madeAt(aw.old), Beneficiaire: aw.bob.ID, Mode: "ecrit", Date: aw.old.Format(domain.DateLayout),
		Finalites: []string{domain.FinaliteSuivi}}
	aw.a1.save(t, append(aw.records(), aw.bob, bobConsent)...)
	aw.a1.sync(t)
	aw.clk.later(aw.mid.Sub(aw.old))
	aw.workshop = &domain.Activity{ID: madeAt(aw.mid), Type: "collectif", Date: aw.mid.Format(domain.DateLayout), Duree: 90,
		TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"securite_numerique"}, Niveau: "debutant",
		TitreAtelier: "Arnaques", Participants: &domain.Participants{Total: 9, Genre: map[string]int{"feminin": 6}}, Notes: "salle-humide-Quaxles"}
	aw.a2.save(t, aw.workshop)
	aw.a2.sync(t)
	aw.clk.later(aw.late.Sub(aw.mid))
	aw.a2.save(t, &domain.Activity{ID: madeAt(aw.late), Type: "individuel", Date: aw.late.Format(domain.DateLayout), Duree: 30,
		TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"email"}, Beneficiaire: &aw.bob.ID})
	aw.a2.sync(t)
	aw.a1.sync(t)
	aw.clk.later(now.Sub(aw.late))
	for _, k := range []string{"identite", "diagnostics", "notes"} {
		if code, out := aw.h.sub(t, "retention", "set", "--kind", k, "--default"); code != 0 {
			t.Fatalf("retention set: %d %s", code, out)
		}
	}
	return aw
}

// overviews returns `hub stats --json`'s overview of each year the world
// spans, and of the whole of it.
func (aw *ageWorld) overviews(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	ranges := [][2]time.Time{{aw.old.AddDate(0, -1, 0), time.Now()}}
	for y := aw.old.Year(); y <= time.Now().Year(); y++ {
		ranges = append(ranges, [2]time.Time{time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)})
	}
	for _, r := range ranges {
		from, to := r[0].Format(domain.DateLayout), r[1].Format(domain.DateLayout)
		code, got := aw.h.cli(t, "stats", "--json", "--from", from, "--to", to)
		if code != 0 {
			t.Fatalf("hub stats: %d %s", code, got)
		}
		var v struct{ Overview json.RawMessage }
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Fatalf("hub stats --json: %v: %s", err, got)
		}
		out[from+" "+to] = string(v.Overview)
	}
	return out
}

func sameOverviews(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, b := range before {
		if after[k] != b {
			var bm, am map[string]json.RawMessage
			json.Unmarshal([]byte(b), &bm)
			json.Unmarshal([]byte(after[k]), &am)
			for part, v := range bm {
				if !bytes.Equal(v, am[part]) {
					t.Errorf("%s: %s changed with the purge:\nbefore %s\nafter  %s", k, part, v, am[part])
				}
			}
		}
	}
}

// The retention purge, from a laptop: the hub's policy (notes kept 18
// months) reaches both laptops; the first to sync purges what is due —
// Zéphyrine's identity, her session's notes, her assessments, the
// workshop's notes — and pushes it; the hub and the other laptop erase
// too, and the hub's own purge then finds nothing left. Every indicator
// the hub shows, for every year, is the same as before; no byte of hers
// is left in any file; Barnabé, met three months ago, keeps his name.
func TestRetentionPurgeFromALaptop(t *testing.T) {
	ctx := context.Background()
	aw := newAgeWorld(t)
	if code, out := aw.h.sub(t, "retention", "set", "--kind", "notes", "--months", "18"); code != 0 {
		t.Fatalf("retention set: %d %s", code, out)
	}
	before := aw.overviews(t)
	aw.noteSealed(t, aw.a1)
	aw.noteSealed(t, aw.a2)
	rep := aw.a1.sync(t)
	if rep.Purged != 5 { // her record, her session, two assessments, the workshop
		t.Errorf("bus-1's purge erased %d records, want 5", rep.Purged)
	}
	for _, a := range []*testAgent{aw.a1, aw.a2} {
		if a == aw.a2 {
			aw.a2.sync(t)
		}
		p, err := a.st.Retention(ctx)
		if err != nil || p.Months(retention.Notes) != 18 {
			t.Errorf("%s's policy: notes %d months, %v", a.name, p.Months(retention.Notes), err)
		}
	}
	if code, out := aw.h.sub(t, "retention", "purge", "--json"); code != 0 || !strings.Contains(out, `"records":0`) {
		t.Errorf("the hub's purge after the laptops': %d %s", code, out)
	}
	aw.a1.sync(t)
	aw.a2.sync(t)
	sameOverviews(t, before, aw.overviews(t))
	aw.assertGone(t, aw.h, aw.a1, aw.a2)
	for _, a := range []*testAgent{aw.a1, aw.a2} {
		it, err := a.st.Get(ctx, aw.bob.ID)
		if err != nil || !it.Record.(*domain.Beneficiary).Identified() {
			t.Errorf("%s: Barnabé lost his name: %+v %v", a.name, it.Record, err)
		}
		ws, err := a.st.Get(ctx, aw.workshop.ID)
		if err != nil || ws.Record.(*domain.Activity).Notes != "" {
			t.Errorf("%s: the workshop's notes stayed: %+v %v", a.name, ws.Record, err)
		}
	}
}

// The retention purge, from the hub: `hub retention purge` erases as the
// hub; both laptops receive its erasures at their next pull and their own
// purge finds nothing left; indicators and files as above.
func TestRetentionPurgeFromTheHub(t *testing.T) {
	aw := newAgeWorld(t)
	// The laptops have purged nothing yet: locked, they only push.
	for _, a := range []*testAgent{aw.a1, aw.a2} {
		a.st.Lock()
	}
	before := aw.overviews(t)
	aw.noteSealed(t, aw.a1)
	aw.noteSealed(t, aw.a2)
	code, out := aw.h.sub(t, "retention", "purge", "--json")
	if code != 0 {
		t.Fatalf("hub retention purge: %d %s", code, out)
	}
	var p struct{ People, Assessments, Notes, Records int }
	json.Unmarshal([]byte(out), &p)
	// Under the default periods the workshop's notes (20 months) stay.
	if p.People != 1 || p.Assessments != 2 || p.Notes != 0 || p.Records != 4 {
		t.Errorf("the hub's purge: %s", out)
	}
	for _, a := range []*testAgent{aw.a1, aw.a2} {
		if err := a.st.Unlock(context.Background(), []byte(pass)); err != nil {
			t.Fatal(err)
		}
		if rep := a.sync(t); rep.Purged != 0 {
			t.Errorf("%s purged %d records the hub had erased already", a.name, rep.Purged)
		}
	}
	sameOverviews(t, before, aw.overviews(t))
	aw.assertGone(t, aw.h, aw.a1, aw.a2)
}

// sub runs a hub subcommand (`hub retention set …`) on the hub's data
// directory.
func (h *testHub) sub(t testing.TB, cmd, sub string, args ...string) (int, string) {
	t.Helper()
	var out syncBuffer
	code := hubcli.Main(context.Background(), append([]string{cmd, sub, "--data", h.dir}, args...), hubcli.Env{Stdout: &out, Stderr: &out})
	return code, out.String()
}
