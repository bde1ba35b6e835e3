package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/sqlitex"
)

// One change stamped far ahead, pulled from a teammate (a hostile device,
// or a hub that logged it before stamps were bounded), must neither win
// the record nor drag this laptop's clock along, and the rest of the page
// is applied.
func TestPulledStampBeyondTheBoundIsSkipped(t *testing.T) {
	s, _ := mustCreate(t)
	ctx := context.Background()
	now := time.Now()
	stop := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-02", Lieu: "Mairie", Commune: "88160"}
	fields, err := change.Encode(stop)
	if err != nil {
		t.Fatal(err)
	}
	poisoned := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-02", Lieu: "Salle", Commune: "88160"}
	pf, err := change.Encode(poisoned)
	if err != nil {
		t.Fatal(err)
	}
	cs := []change.Change{
		{Kind: domain.KindTourStop, ID: poisoned.ID, Op: change.OpUpsert, HLC: hlc.Max, Device: "d", Seq: 1, Fields: pf},
		{Kind: domain.KindTourStop, ID: poisoned.ID, Op: change.OpUpsert, HLC: hlc.FromTime(now.AddDate(50, 0, 0)), Device: "d", Seq: 2, Fields: pf},
		{Kind: domain.KindTourStop, ID: stop.ID, Op: change.OpUpsert, HLC: hlc.FromTime(now.Add(hlc.MaxAhead - time.Hour)), Device: "d", Seq: 3, Fields: fields},
	}
	skipped, err := s.ApplyRemote(ctx, cs, 3, nil)
	if err != nil || skipped != 2 {
		t.Fatalf("ApplyRemote: skipped %d, %v; want the 2 stamped beyond the bound", skipped, err)
	}
	if _, err := s.Get(ctx, poisoned.ID); err == nil {
		t.Fatalf("a change stamped beyond the bound was applied")
	}
	if _, err := s.Get(ctx, stop.ID); err != nil {
		t.Fatalf("the change within the bound was not applied: %v", err)
	}
	// Saves still work, stamped within the bound.
	res := mustSave(t, s, &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-03", Lieu: "École", Commune: "88160"})
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := s.clock.Last(); last > hlc.BoundAt(time.Now()) {
		t.Fatalf("clock at %v after the pull (status %s, result %+v): dragged beyond the bound", last, st.HLC, res)
	}
}

// A store whose clock was poisoned before stamps were bounded (persisted
// at the highest stamp) still opens and saves.
func TestPoisonedStoreClockStaysUsable(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _, err := Create(ctx, dir, []byte(testPass), Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sqlitex.OpenWriter(filepath.Join(dir, "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ?`, int64(hlc.Max), metaHLC); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(ctx, dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		mustSave(t, s, &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-03", Lieu: "École", Commune: "88160"})
	}
}
