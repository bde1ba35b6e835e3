package sqlite

import (
	"context"
	"database/sql"
	"testing"

	"numeribus/hub/retain"
	"numeribus/hub/retain/retaintest"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
)

// The conformance suite of retention and access, on SQLite.
func TestRetainConformance(t *testing.T) {
	retaintest.Run(t, func(t *testing.T) retaintest.Backend {
		s, _ := openTemp(t)
		return s
	})
}

// A change logged between the purge's census and its writes is not
// overruled: Ana, met again meanwhile, keeps her identity and her
// assessments, and only the workshop's notes go.
func TestPurgeRechecksWhatChangedSinceItsCensus(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	w := retaintest.Seed(t, s)
	if err := s.catchUpFacts(ctx); err != nil {
		t.Fatal(err)
	}
	var (
		c  *retention.Census
		at int64
	)
	err := s.readOnly(ctx, func(tx *sql.Tx) error {
		var err error
		c, at, err = retain.Gather(ctx, sqlReader{tx}, retention.Default(), retaintest.Now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pl := c.Plan()
	if len(pl.People) != 1 || len(pl.Assessments) != 2 {
		t.Fatalf("plan: %+v", pl)
	}
	ana := w.Ana
	w.Apply(t, retaintest.Now, change.OpUpsert, &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-08-31", Duree: 30,
		TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"email"}, Beneficiaire: &ana})
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	got, err := retain.Recheck(ctx, sqlReader{tx}, at, pl)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.People) != 0 || len(got.Assessments) != 0 || len(got.Notes) != 1 {
		t.Errorf("plan after a new session of Ana's: %+v", got)
	}
}
