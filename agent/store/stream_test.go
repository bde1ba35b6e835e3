package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
)

// stream sends recs to SaveStream in runs of n.
func stream(ctx context.Context, s *Store, n int, recs ...domain.Record) (Result, error) {
	in := make(chan []domain.Record)
	go func() {
		defer close(in)
		for start := 0; start < len(recs); start += n {
			in <- recs[start:min(start+n, len(recs))]
		}
	}()
	return s.SaveStream(ctx, in)
}

// outboxOK checks that the outbox holds one change per created record,
// seqs 1..n without a gap, each record's change decrypting to its fields.
func outboxOK(t *testing.T, s *Store, n int) {
	t.Helper()
	cs, err := s.Pending(context.Background(), 0, n+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != n {
		t.Fatalf("outbox has %d changes, want %d", len(cs), n)
	}
	for i, c := range cs {
		if c.Seq != uint64(i+1) {
			t.Fatalf("change %d has seq %d", i, c.Seq)
		}
	}
}

// storeEmpty checks that s holds no record and no change.
func storeEmpty(t *testing.T, s *Store) {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range st.Records {
		if *n != (KindCount{}) {
			t.Errorf("%s: %+v left", k, *n)
		}
	}
	if st.LastSeq != 0 {
		t.Errorf("last seq %d, want 0", st.LastSeq)
	}
}

func TestSaveStreamWritesEveryRunOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	recs := fixture.Generate(fixture.Options{N: 1500, Seed: 3}).Records()
	// Runs of 100: lookups, deferred rows and flushes cross run borders.
	res, err := stream(ctx, s, 100, recs...)
	if err != nil {
		t.Fatalf("SaveStream: %v", err)
	}
	if res.Created != len(recs) || res.FirstSeq != 1 || res.LastSeq != uint64(len(recs)) {
		t.Fatalf("result %+v for %d records", res, len(recs))
	}
	outboxOK(t, s, len(recs))
	for _, r := range []domain.Record{recs[0], recs[len(recs)/2], recs[len(recs)-1]} {
		it, err := s.Get(ctx, r.RecordID())
		if err != nil || it.Record.Kind() != r.Kind() {
			t.Fatalf("Get %s: %v %v", r.RecordID(), it.Record, err)
		}
	}

	// The same stream again creates and logs nothing.
	res, err = stream(ctx, s, 64, recs...)
	if err != nil || res.Created != 0 || res.Updated != 0 || res.Unchanged != len(recs) {
		t.Fatalf("second stream: %+v, %v", res, err)
	}
	outboxOK(t, s, len(recs))
}

func TestSaveStreamMergesARecordSeenInSeveralRuns(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	recs := fixture.Generate(fixture.Options{N: 200, Seed: 4}).Records()
	a := recs[len(recs)-1].(*domain.Activity)
	changed := *a
	changed.Duree = a.Duree + 15
	changed.Notes = "revu plus tard dans le fichier"
	// a in the first run, its new version in the last (three runs, each
	// looked up in bulk against the store as it was before the batch),
	// and again the same record in the middle of a run.
	all := append([]domain.Record{a}, recs[:len(recs)-1]...)
	all = append(all, &changed, recs[5])
	run := (len(all) + 2) / 3
	if last := len(all) - 2*run; last < 64 {
		t.Fatalf("the last run has %d records: too few to be looked up in bulk", last)
	}
	res, err := stream(ctx, s, run, all...)
	if err != nil {
		t.Fatalf("SaveStream: %v", err)
	}
	if res.Created != len(recs) || res.Updated != 1 || res.Unchanged != 1 {
		t.Fatalf("result %+v", res)
	}
	it, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := it.Record.(*domain.Activity)
	if got.Duree != changed.Duree || got.Notes != changed.Notes {
		t.Fatalf("stored %d %q, want the last version", got.Duree, got.Notes)
	}
	outboxOK(t, s, len(recs)+1)
}

func TestSaveStreamValidatesTheWholeBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	fill := fixture.Generate(fixture.Options{N: 150, Seed: 5}).Records()
	b, c, a := followed("suivi_nominatif")
	// The identity comes in the first run, the consent allowing it
	// several runs later: the batch is valid as a whole.
	all := append([]domain.Record{b}, fill...)
	all = append(all, c, a)
	if _, err := stream(ctx, s, 64, all...); err != nil {
		t.Fatalf("consent after identity, runs apart: %v", err)
	}

	// Without the consent the identity is refused, with its index in the
	// whole stream, and nothing of any run is written.
	s2, _ := mustCreate(t)
	b2, _, _ := followed("suivi_nominatif")
	bad := append(append([]domain.Record{}, fill...), b2)
	_, err := stream(ctx, s2, 64, bad...)
	var be *BatchError
	if !errors.As(err, &be) || len(be.Items) != 1 || be.Items[0].Index != len(fill) {
		t.Fatalf("got %v, want one problem at index %d", err, len(fill))
	}
	storeEmpty(t, s2)
}

func TestSaveStreamCancelledWritesNothing(t *testing.T) {
	s, _ := mustCreate(t)
	recs := fixture.Generate(fixture.Options{N: 300, Seed: 6}).Records()
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan []domain.Record)
	done := make(chan error, 1)
	go func() {
		_, err := s.SaveStream(ctx, in)
		done <- err
	}()
	in <- recs[:100]
	in <- recs[100:200]
	cancel() // a bad line further down the file
	in <- recs[200:]
	close(in)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled stream: %v", err)
	}
	storeEmpty(t, s)
	// The store still takes writes.
	mustSave(t, s, &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-02", Commune: "88160", Lieu: "Mairie"})
}

func TestSaveStreamFullDiskFailsFastAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	// SQLite's "database or disk is full", a few pages from now.
	var pages int
	if err := s.w.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+40)); err != nil {
		t.Fatal(err)
	}
	recs := fixture.Generate(fixture.Options{N: 1500, Seed: 8}).Records()
	const runs = 30 // of 100: far more than 40 pages
	in := make(chan []domain.Record)
	done := make(chan error, 1)
	go func() {
		_, err := s.SaveStream(ctx, in)
		done <- err
	}()
	var err error
	sent := 0
send:
	for sent < runs {
		start := sent * 100 % len(recs)
		select {
		case in <- recs[start:min(start+100, len(recs))]:
			sent++
		case err = <-done:
			break send
		}
	}
	if sent == runs {
		close(in)
		t.Fatalf("SaveStream took every run (%v), want it to give up at the first full page", <-done)
	}
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("got %v, want the full disk", err)
	}
	// The sender is never blocked: the rest is read and dropped.
	for range 3 {
		in <- recs[:10]
	}
	close(in)
	storeEmpty(t, s)
	if _, err := s.w.Exec(`PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, recs[0])
}
