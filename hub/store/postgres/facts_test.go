package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/hub/report"
	"numeribus/hub/report/sourcetest"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/pgtest"
)

// The conformance suite of report sources, on PostgreSQL: the same
// hand-counted indicators as on SQLite.
func TestSource(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) sourcetest.Backend {
		s, err := Open(context.Background(), pgtest.NewDB(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// No fact table holds a trace of personal data once a person is erased,
// whatever its column: read raw, beyond what the Source hands out.
func TestFactTablesHoldNoPersonalData(t *testing.T) {
	s, _ := open(t)
	w := sourcetest.Seed(t, s)
	w.Apply(t, w.Dev54, change.OpErase, &domain.Beneficiary{ID: w.B1})
	if _, err := s.Sums(context.Background(), report.Query{To: 99991231}); err != nil { // catch up
		t.Fatal(err)
	}
	for table, rows := range factDump(t, s) {
		for _, r := range rows {
			if strings.Contains(r, "SECRET") || strings.Contains(r, "Jeanne") || strings.Contains(r, "Martinez") {
				t.Errorf("%s holds personal data: %s", table, r)
			}
		}
	}
}

// A report that finds the facts' lock held by another instance's follower
// waits briefly, then reads the facts as they are instead of failing; once
// the lock is free, it brings them up to date itself.
func TestReportBesideABusyFollower(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	w := sourcetest.Seed(t, s)
	q := report.Query{To: 99991231}
	before, err := s.Sums(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	hold, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, factsLock); err != nil {
		t.Fatal(err)
	}
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: sourcetest.NewID(900), Type: "individuel", Date: "2026-06-01",
		Duree: 15, TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email"}})
	s.facts.readWait = 200 * time.Millisecond
	got, err := s.Sums(ctx, q)
	if err != nil || got != before {
		t.Fatalf("report beside a busy follower: %+v, %v; want the facts as they were, %+v", got, err, before)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Sums(ctx, q); err != nil || got.Activites != before.Activites+1 {
		t.Fatalf("report once the lock is free: %+v, %v; want %d activities", got, err, before.Activites+1)
	}
}

// Two hub instances over one database, both applying batches and both
// following the log (in small steps, with reports asking for catch-ups
// all along), end with every live record's facts exactly once, the
// cursor at the end of the log, and the facts one instance computes from
// the whole log alone.
func TestFactsFollowedByTwoInstances(t *testing.T) {
	s1, url := open(t)
	s2, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ctx := context.Background()
	stores := []*Store{s1, s2}
	for i, s := range stores {
		s.facts.chunk.Store(int64(5 + 2*i))
		s.beforeCommit = func(string) { time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond) }
	}
	const writersPerStore, batches = 2, 15
	var wg sync.WaitGroup
	for i, s := range stores {
		for j := range writersPerStore {
			dev := enroll(t, s, fmt.Sprintf("bus-%d-%d", i, j), "cd54")
			g := newWorkGen(uint64(10*i + j))
			wg.Go(func() {
				for range batches {
					if _, _, err := s.ApplyBatch(ctx, dev, g.batch(t), 100); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	for _, s := range stores {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Sums(ctx, report.Query{To: 99991231}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if t.Failed() {
		return
	}
	if err := s2.facts.catchUp(ctx, time.Now().Add(time.Minute), factsBusyPause); err != nil {
		t.Fatal(err)
	}
	checkFactsOnce(t, s1)
	followed := factDump(t, s1)

	// What one instance computes from the whole log, alone.
	s2.Close()
	resetFacts(t, s1)
	s1.facts.chunk.Store(factsChunk)
	if err := s1.facts.catchUp(ctx, time.Now().Add(time.Minute), factsBusyPause); err != nil {
		t.Fatal(err)
	}
	alone := factDump(t, s1)
	for _, table := range factTables {
		a, b := followed[table.Name], alone[table.Name]
		if !slices.Equal(a, b) {
			t.Errorf("%s followed by two instances differs from one instance's (%d rows, %d)", table.Name, len(a), len(b))
		}
	}
	if len(followed["activity_facts"]) == 0 || len(followed["beneficiary_facts"]) == 0 {
		t.Fatalf("no facts: %d activities, %d beneficiaries", len(followed["activity_facts"]), len(followed["beneficiary_facts"]))
	}
}

// checkFactsOnce checks that the facts' cursor is at the end of the log
// and that every live record of a kind with facts has exactly one row.
func checkFactsOnce(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	end, cursor, err := s.facts.position(ctx)
	if err != nil || end == 0 || cursor != end {
		t.Fatalf("facts' cursor %d, log end %d (%v)", cursor, end, err)
	}
	for _, k := range []domain.Kind{domain.KindActivity, domain.KindBeneficiary, domain.KindAssessment, domain.KindTourStop} {
		table := factTableOf(k).Name
		var live, rows, distinct, strays int
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM records WHERE kind = $1 AND NOT deleted),
			(SELECT count(*) FROM `+table+`), (SELECT count(DISTINCT id) FROM `+table+`),
			(SELECT count(*) FROM `+table+` f WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = f.id AND NOT r.deleted))`,
			string(k)).Scan(&live, &rows, &distinct, &strays); err != nil {
			t.Fatal(err)
		}
		if rows != live || distinct != live || strays != 0 {
			t.Errorf("%s: %d rows, %d distinct, %d of no live record, for %d live records", table, rows, distinct, strays, live)
		}
	}
}

// factDump returns every row of every fact table as text, by id.
func factDump(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range factTables {
		rows, err := s.pool.Query(context.Background(), `SELECT f::text FROM `+table.Name+` f ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				t.Fatal(err)
			}
			out[table.Name] = append(out[table.Name], r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// resetFacts empties the fact tables and their cursor, as a hub that
// never followed the log.
func resetFacts(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, factsLock); err != nil {
		t.Fatal(err)
	}
	for _, table := range factTables {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM facts_meta WHERE key = 'hseq'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// workGen makes one device's batches: new people, sessions of them
// (individual and workshops), sessions moved or deleted, assessments and
// stops — what moves facts and first activities around.
type workGen struct {
	r          *rand.Rand
	seq        uint64
	people     []ident.ID
	activities []*domain.Activity
}

func newWorkGen(seed uint64) *workGen {
	return &workGen{r: rand.New(rand.NewPCG(seed, 16))}
}

var workCommunes = []string{"54395", "54329", "88160", ""}

func (g *workGen) date() string {
	return fmt.Sprintf("202%d-%02d-%02d", 5+g.r.IntN(2), 1+g.r.IntN(12), 1+g.r.IntN(28))
}

func (g *workGen) person() *ident.ID {
	id := g.people[g.r.IntN(len(g.people))]
	return &id
}

// batch returns the device's next batch of changes.
func (g *workGen) batch(t *testing.T) []change.Change {
	t.Helper()
	var cs []change.Change
	up := func(r domain.Record) {
		r.Normalize()
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		g.seq++
		cs = append(cs, change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f,
			HLC: hlc.FromTime(time.Now()) + hlc.Timestamp(g.seq), Seq: g.seq})
	}
	b := &domain.Beneficiary{ID: ident.New(), Genre: "feminin", Commune: workCommunes[g.r.IntN(3)], PremierAccompagnement: g.date()}
	g.people = append(g.people, b.ID)
	up(b)
	for range 3 {
		a := &domain.Activity{ID: ident.New(), Type: "individuel", Date: g.date(), Duree: 30, TypeLieu: "lieu_activite",
			Commune: workCommunes[g.r.IntN(len(workCommunes))], Thematiques: []string{"email"}, Beneficiaire: g.person(),
			Vehicule: "Numéribus 1"}
		g.activities = append(g.activities, a)
		up(a)
	}
	up(&domain.Activity{ID: ident.New(), Type: "collectif", Date: g.date(), Duree: 90, TypeLieu: "lieu_activite",
		Commune: "54395", Thematiques: []string{"securite_numerique"},
		Participants: &domain.Participants{Total: 6, Beneficiaires: []ident.ID{*g.person(), *g.person()}}})
	moved := g.activities[g.r.IntN(len(g.activities))]
	moved.Date, moved.Commune = g.date(), workCommunes[g.r.IntN(len(workCommunes))]
	up(moved)
	if len(g.activities) > 4 && g.r.IntN(2) == 0 {
		i := g.r.IntN(len(g.activities))
		g.seq++
		cs = append(cs, change.Change{Kind: domain.KindActivity, ID: g.activities[i].ID, Op: change.OpDelete,
			HLC: hlc.FromTime(time.Now()) + hlc.Timestamp(g.seq), Seq: g.seq})
		g.activities = slices.Delete(g.activities, i, i+1)
	}
	up(&domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: g.date(), Lieu: "Mairie", Commune: "54329", Realise: g.r.IntN(2) == 0})
	scores := map[string]string{}
	for i, c := range domain.DomainesCRCN.Codes {
		if i%2 == g.r.IntN(2) {
			scores[c.Code] = fmt.Sprint(g.r.IntN(3))
		}
	}
	up(&domain.Assessment{ID: ident.New(), Date: g.date(), Commune: "54395", Beneficiaire: *g.person(), Domaines: scores})
	return cs
}
