package store

import (
	"context"
	"errors"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

func fieldNum(t *testing.T, k domain.Kind, name string) uint64 {
	t.Helper()
	for _, f := range domain.Fields(k) {
		if f.Name == name {
			return f.Num
		}
	}
	t.Fatalf("%s has no field %s", k, name)
	return 0
}

// A pulled page holding a change that does not decode (a duration typed
// as text, an unknown field number) applies the rest and skips that one:
// the receiving laptop never stores a record it cannot open.
func TestApplyRemoteSkipsChangesThatDoNotDecode(t *testing.T) {
	s, _ := mustCreate(t)
	ctx := context.Background()
	good := &domain.Activity{ID: ident.New(), Date: "2026-03-02", Type: "individuel", Duree: 30, Commune: "88160",
		Thematiques: []string{"courriels"}}
	fields, err := change.Encode(good)
	if err != nil {
		t.Fatal(err)
	}
	badType := change.Fields{fieldNum(t, domain.KindActivity, "duree"): mustRaw(t, "abc")}
	unknown := change.Fields{999: mustRaw(t, "x")}
	stamp := hlc.Timestamp(1 << 40)
	cs := []change.Change{
		{Kind: domain.KindActivity, ID: ident.New(), Op: change.OpUpsert, HLC: stamp, Device: "d", Seq: 1, Fields: badType},
		{Kind: domain.KindActivity, ID: good.ID, Op: change.OpUpsert, HLC: stamp + 1, Device: "d", Seq: 2, Fields: fields},
		{Kind: domain.KindActivity, ID: ident.New(), Op: change.OpUpsert, HLC: stamp + 2, Device: "d", Seq: 3, Fields: unknown},
	}
	skipped, err := s.ApplyRemote(ctx, cs, 3, nil)
	if err != nil || skipped != 2 {
		t.Fatalf("ApplyRemote: skipped %d, %v; want 2 skipped", skipped, err)
	}
	n := 0
	if err := s.List(ctx, "", false, func(Item) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("listed %d records (%v), want the good one", n, err)
	}
}

// List goes past a stored record it cannot open, lists the others, and
// names it.
func TestListGoesPastARecordItCannotOpen(t *testing.T) {
	s, _ := mustCreate(t)
	ctx := context.Background()
	_, _, a := followed()
	a.Beneficiaire = nil
	mustSave(t, s, a)
	bad := ident.New()
	if _, err := s.write(ctx, func(w *writeTx) error {
		st := merge.NewState()
		st.Fields[fieldNum(t, domain.KindActivity, "duree")] = mustRaw(t, "abc")
		return w.saveState(domain.KindActivity, bad, st)
	}); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := s.List(ctx, "", false, func(Item) error { n++; return nil })
	var ue *UnreadableError
	if !errors.As(err, &ue) || len(ue.IDs) != 1 || ue.IDs[0] != bad || n != 1 {
		t.Fatalf("List: %d listed, %v; want 1 listed and %s named", n, err, bad)
	}
}

func mustRaw(t *testing.T, v any) []byte {
	t.Helper()
	b, err := change.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
