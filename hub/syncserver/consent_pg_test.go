package syncserver

import (
	"context"
	"slices"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/store/postgres"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/pgtest"
	"numeribus/internal/wire"
)

func TestMain(m *testing.M) { pgtest.Main(m) } // starts PostgreSQL only for the tests that ask

// pgWritesBetween is writesBetween on PostgreSQL, whose batches pin the
// consents their rules read (store.ConsentPinner).
type pgWritesBetween struct {
	*postgres.Store
	between func()
}

func (s *pgWritesBetween) once() {
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
}

func (s *pgWritesBetween) ApplyBatch(ctx context.Context, device string, cs []change.Change, bytes int) (uint64, int, error) {
	s.once()
	return s.Store.ApplyBatch(ctx, device, cs, bytes)
}

func (s *pgWritesBetween) ApplyPinned(ctx context.Context, pinned []store.Consent, device string, cs []change.Change, bytes int) (uint64, int, error) {
	s.once()
	return s.Store.ApplyPinned(ctx, pinned, device, cs, bytes)
}

// On PostgreSQL too, a consent withdrawn by another laptop between a
// batch's consent look-up (in its turn) and its transaction refuses the
// person's identifying fields: the batch pins the consents read, finds
// one changed, and its rules are read again.
func TestConsentWithdrawnJustBeforeTheTurnRefusesOnPostgres(t *testing.T) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.NewDB(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d, other := enrollIn(t, st, "bus-1", "cd88"), enrollIn(t, st, "bus-2", "cd88")
	now := time.Now()
	old := hlc.FromTime(now.Add(-time.Hour))
	person := ident.New()
	given := &domain.Consent{ID: ident.New(), Beneficiaire: person, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	withdrawn := *given
	withdrawn.RetireLe, withdrawn.Retraits = "2026-03-03", []string{domain.FinaliteSuivi}
	if _, _, err := st.ApplyBatch(ctx, d.ID, []change.Change{upsertOf(t, 1, old+1, given)}, 0); err != nil {
		t.Fatal(err)
	}
	cs := []change.Change{
		upsertOf(t, 2, old+2, &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30}),
		upsertOf(t, 3, old+3, &domain.Beneficiary{ID: person, Nom: "Martin", Genre: "feminin"}),
	}
	wrapped := &pgWritesBetween{Store: st, between: func() {
		if _, _, err := st.ApplyBatch(ctx, other.ID, []change.Change{upsertOf(t, 1, hlc.FromTime(now.Add(-time.Minute)), &withdrawn)}, 0); err != nil {
			t.Fatal(err)
		}
	}}
	out, err := ApplyPush(ctx, wrapped, d, wire.ProtocolVersion, 1, cs, nil, 0, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := codes(out.Rejected)
	if want := []string{"3 " + wire.CodeNoConsent}; !slices.Equal(got, want) || out.HWM != 3 {
		t.Errorf("refused %q, mark %d; want %q, 3", got, out.HWM, want)
	}
	if nom := nameOf(t, st, person); nom != "" {
		t.Errorf("the withdrawn person's name was taken: %q", nom)
	}
}
