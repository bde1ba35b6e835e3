package store

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/wire"
)

// The outbox hands each change's fields as the wire carries them — the
// bytes wire.FromChange makes of the decoded fields, nothing for a
// delete —, one read at a time: a read stops at its bound or where its
// taker says, and the next resumes at the change it left.
func TestOutboxHandsFieldsAsTheWireCarriesThem(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	a2 := *a
	a2.Duree = 60
	mustSave(t, s, &a2)
	if _, err := s.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	fieldsOf := func(r domain.Record) change.Fields {
		t.Helper()
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	want := []change.Fields{fieldsOf(b), fieldsOf(c), fieldsOf(a), change.Diff(fieldsOf(a), fieldsOf(&a2)), nil}

	var got []Outgoing
	if err := s.Outbox(ctx, 0, 100, func(o *Outgoing) bool { got = append(got, *o); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("the outbox gave %d changes, want %d", len(got), len(want))
	}
	for i, o := range got {
		if o.Seq != uint64(i+1) {
			t.Fatalf("change %d has seq %d", i, o.Seq)
		}
		w, err := wire.FromChange(&change.Change{Kind: o.Kind, ID: o.ID, Op: o.Op, HLC: o.HLC, Seq: o.Seq, Fields: want[i]})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(o.Fields, w.Fields) || (o.Fields == nil) != (w.Fields == nil) {
			t.Fatalf("change %d: fields %x, the wire carries %x", o.Seq, o.Fields, w.Fields)
		}
	}
	if got[4].Op != change.OpDelete || got[3].Op != change.OpUpsert {
		t.Fatalf("ops %v, %v", got[3].Op, got[4].Op)
	}

	// A read stops at its bound, or at the change its taker refuses; the
	// next read from the last one taken starts with it.
	var (
		seqs    []uint64
		refused int
	)
	take := func(n int) func(*Outgoing) bool {
		return func(o *Outgoing) bool {
			if len(seqs) == n {
				if refused++; refused > 1 {
					t.Errorf("the read went on after its taker refused change %d", o.Seq)
				}
				return false
			}
			seqs = append(seqs, o.Seq)
			return true
		}
	}
	if err := s.Outbox(ctx, 1, 2, take(10)); err != nil || len(seqs) != 2 || seqs[1] != 3 {
		t.Fatalf("a read bounded at 2 took %v (%v)", seqs, err)
	}
	seqs = seqs[:0]
	if err := s.Outbox(ctx, 0, 100, take(2)); err != nil || len(seqs) != 2 {
		t.Fatalf("a taker of 2 took %v (%v)", seqs, err)
	}
	refused = 0
	if err := s.Outbox(ctx, seqs[1], 100, take(3)); err != nil || len(seqs) != 3 || seqs[2] != 3 {
		t.Fatalf("the next read took %v (%v), want it to resume at 3", seqs, err)
	}

	s.Lock()
	if err := s.Outbox(ctx, 0, 100, func(*Outgoing) bool { return true }); !errors.Is(err, ErrLocked) {
		t.Fatalf("Outbox of a locked store: %v, want ErrLocked", err)
	}
}
