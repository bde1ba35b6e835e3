package store

import (
	"context"
	"errors"
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// TestTwoStoresOnOneDirectory is `agent seed` or `agent import` run while
// `agent serve` has the store open: two *Store values on one file, both
// unlocked, saving in turn. Each must take its seq and stamps from the
// store as the other left it, and see the other's consents.
func TestTwoStoresOnOneDirectory(t *testing.T) {
	ctx := context.Background()
	a, _ := mustCreate(t)
	b, err := Open(ctx, a.dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}

	want := map[ident.ID]bool{}
	saveOn := func(s *Store, recs ...domain.Record) {
		t.Helper()
		mustSave(t, s, recs...)
		for _, r := range recs {
			want[r.RecordID()] = true
		}
	}
	// Both build their consent index, then each writes in turn.
	ben, c, act := followed(domain.FinaliteSuivi)
	saveOn(a, ben, c, act)
	ben, c, act = followed(domain.FinaliteSuivi)
	saveOn(b, ben, c, act)
	for range 5 {
		ben, c, act = followed(domain.FinaliteSuivi)
		saveOn(a, ben, c, act)
		ben, c, act = followed(domain.FinaliteSuivi)
		saveOn(b, ben, c, act)
	}
	// A consent given through one store allows an assessment through the
	// other, whose consent index was built before.
	ben, c, _ = followed(domain.FinaliteSuivi, domain.FinaliteDiagnostic)
	saveOn(a, ben, c)
	saveOn(b, &domain.Assessment{ID: ident.New(), Beneficiaire: ben.ID, Date: "2026-03-02",
		Domaines: map[string]string{"information_donnees": "1"}})
	// An edit through one store of a record the other wrote.
	c2 := *c
	c2.TexteVersion = "v2"
	saveOn(b, &c2)
	ben2 := *ben
	ben2.Telephone = "0698765432"
	saveOn(a, &ben2)

	var n uint64
	var last hlc.Timestamp
	seen := map[ident.ID]bool{}
	err = a.Log(ctx, func(e LogEntry) error {
		n++
		if e.Seq != n {
			return errors.New("gap in the change log")
		}
		if e.HLC <= last {
			t.Errorf("change %d stamped %v, not after %v", e.Seq, e.HLC, last)
		}
		last = e.HLC
		seen[e.ID] = true
		return nil
	})
	if err != nil {
		t.Fatalf("log after %d changes: %v", n, err)
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("record %s has no change in the log", id)
		}
	}
	for _, s := range []*Store{a, b} {
		last, _, err := s.Seqs(ctx)
		if err != nil || last != n {
			t.Errorf("last seq %d (%v), log has %d changes", last, err, n)
		}
	}
	// Later saves from both still go through.
	for i := range 3 {
		s := []*Store{a, b}[i%2]
		ben, c, act = followed(domain.FinaliteSuivi)
		res := mustSave(t, s, ben, c, act)
		if res.FirstSeq != n+1 || res.LastSeq != n+3 {
			t.Fatalf("save %d: seqs %d..%d, want %d..%d", i, res.FirstSeq, res.LastSeq, n+1, n+3)
		}
		n += 3
	}
}
