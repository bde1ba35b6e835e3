package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/store/storetest"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

var upsertOf = storetest.UpsertOf

// A batch applied with the consents its rules read pinned (ApplyPinned)
// is refused, nothing written, when one was withdrawn since; read again,
// it goes. While it runs, it holds them: a withdrawal by another laptop
// waits for its commit, rather than landing between its check and it.
func TestApplyPinnedHoldsTheConsentsRead(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	a, b := enroll(t, s, "bus-1", "cd88"), enroll(t, s, "bus-2", "cd88")
	old := hlc.FromTime(time.Now().Add(-time.Hour))
	person := ident.New()
	given := &domain.Consent{ID: ident.New(), Beneficiaire: person, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	withdrawn := *given
	withdrawn.RetireLe, withdrawn.Retraits = "2026-03-03", []string{domain.FinaliteSuivi}
	if _, _, err := s.ApplyBatch(ctx, a, []change.Change{upsertOf(t, 1, old+1, given)}, 0); err != nil {
		t.Fatal(err)
	}
	read := func() []store.Consent {
		cs, err := s.Consents(ctx, "cd88", []ident.ID{person}, nil)
		if err != nil || len(cs) != 1 || cs[0].Stored == nil {
			t.Fatalf("consents read: %+v, %v", cs, err)
		}
		return cs
	}
	pinned := read()
	if _, _, err := s.ApplyBatch(ctx, b, []change.Change{upsertOf(t, 1, old+10, &withdrawn)}, 0); err != nil {
		t.Fatal(err)
	}
	name := []change.Change{upsertOf(t, 2, old+2, &domain.Beneficiary{ID: person, Nom: "Martin", Genre: "feminin"})}
	if _, _, err := s.ApplyPinned(ctx, pinned, a, name, 0); !errors.Is(err, store.ErrConsentsMoved) {
		t.Fatalf("applied beside a consent withdrawn since its read: %v", err)
	}
	if d, err := s.Device(ctx, a); err != nil || d.HWM != 1 {
		t.Fatalf("mark %d (%v) after the refused batch, want 1", d.HWM, err)
	}
	if hwm, n, err := s.ApplyPinned(ctx, read(), a, name, 0); err != nil || hwm != 2 || n != 1 {
		t.Fatalf("read again: %d, %d, %v", hwm, n, err)
	}

	// Held from the check to the commit: the other laptop's change of
	// the consent waits for it.
	again := *given
	again.Date = "2026-03-04"
	atCommit, release := make(chan struct{}), make(chan struct{})
	var released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	defer free() // a failure below must not leave the batch waiting
	s.afterPins = func(dev string) {
		if dev == a {
			close(atCommit)
			<-release
		}
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.ApplyPinned(ctx, read(), a, []change.Change{upsertOf(t, 3, old+3, &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30})}, 0)
		done <- err
	}()
	<-atCommit
	changed := make(chan error, 1)
	go func() {
		_, _, err := s.ApplyBatch(ctx, b, []change.Change{upsertOf(t, 2, old+20, &again)}, 0)
		changed <- err
	}()
	select {
	case err := <-changed:
		free()
		<-done
		t.Fatalf("the consent changed between the check of a batch that read it and its commit: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-changed; err != nil {
		t.Fatal(err)
	}
}
