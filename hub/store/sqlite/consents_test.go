package sqlite

import (
	"context"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// The consent counter moves with every write to a consent — created,
// edited, erased, by a batch of a device or by the prepared path — and
// stays put for batches that touch no consent: a batch's consent look-up
// made ahead of its turn is used only while it has not moved.
func TestConsentVersionMovesWithEveryConsentWrite(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	d := enroll(t, s, "bus-1", "cd88")
	person := ident.New()
	consent := &domain.Consent{ID: ident.New(), Beneficiaire: person, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	withdrawn := *consent
	withdrawn.RetireLe, withdrawn.Retraits = "2026-03-03", []string{domain.FinaliteSuivi}
	seq := uint64(0)
	upsert := func(r domain.Record) change.Change {
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		return change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f, HLC: hlc.FromTime(t0) + hlc.Timestamp(seq), Seq: seq}
	}
	erase := func(k domain.Kind, id ident.ID) change.Change {
		seq++
		return change.Change{Kind: k, ID: id, Op: change.OpErase, HLC: hlc.FromTime(t0) + hlc.Timestamp(seq), Seq: seq}
	}
	steps := []struct {
		name     string
		batch    func() []change.Change
		prepared bool
		moves    bool
	}{
		{"a person, no consent", func() []change.Change {
			return []change.Change{upsert(&domain.Beneficiary{ID: person, Genre: "feminin"})}
		}, false, false},
		{"a consent created (prepared)", func() []change.Change { return []change.Change{upsert(consent)} }, true, true},
		{"activities", func() []change.Change {
			return []change.Change{upsert(&domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30})}
		}, false, false},
		{"the consent withdrawn", func() []change.Change { return []change.Change{upsert(&withdrawn)} }, false, true},
		{"the consent erased", func() []change.Change { return []change.Change{erase(domain.KindConsent, consent.ID)} }, false, true},
	}
	last, err := s.ConsentVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		cs := st.batch()
		if st.prepared {
			_, _, err = s.ApplyPrepared(ctx, d.ID, cs, s.PrepareBatch(d.ID, d.Team, cs), 0)
		} else {
			_, _, err = s.ApplyBatch(ctx, d.ID, cs, 0)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		v, err := s.ConsentVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if moved := v != last; moved != st.moves {
			t.Errorf("%s: the counter moved %v, want %v", st.name, moved, st.moves)
		}
		_, at, err := s.ConsentsAt(ctx, d.Team, []ident.ID{person}, nil)
		if err != nil || at != v {
			t.Errorf("%s: ConsentsAt saw the counter at %d (%v), ConsentVersion at %d", st.name, at, err, v)
		}
		last = v
	}
}
