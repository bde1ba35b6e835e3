package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/wire"
)

// noConsent records the hub's refusal of change seq for want of a consent.
func noConsent(t *testing.T, s *Store, seq uint64) {
	t.Helper()
	if err := s.Reject(context.Background(), []wire.Rejection{{Seq: seq, Code: wire.CodeNoConsent, Reason: "test"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func refusedSeqs(t *testing.T, s *Store) []uint64 {
	t.Helper()
	rs, err := s.RejectedChanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

// A person refused by the hub before their consent reached it goes out
// again, after the consent, with every field; refused again (the consent
// never reached the hub), it stays refused: nothing loops. Without an
// active consent of the person here, the refusal stays too.
func TestResendConsented(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, _ := followed(domain.FinaliteSuivi)
	// The person first, their consent next: seq 1 and 2, as the UI saves them.
	mustSave(t, s, b, c)
	other, otherC, _ := followed(domain.FinaliteSuivi)
	mustSave(t, s, other, otherC) // seq 3, 4
	noConsent(t, s, 1)
	noConsent(t, s, 4) // a refused consent is not sent again
	if err := s.Reject(ctx, []wire.Rejection{{Seq: 3, Code: wire.CodeInvalid, Reason: "test"}}, time.Now()); err != nil {
		t.Fatal(err)
	}

	resent, err := s.ResendConsented(ctx)
	if err != nil || !slices.Equal(resent, []uint64{1}) {
		t.Fatalf("ResendConsented = %v, %v; want [1]", resent, err)
	}
	if got := refusedSeqs(t, s); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("still refused: %v, want [3 4]", got)
	}
	cs, err := s.Pending(ctx, 4, 10)
	if err != nil || len(cs) != 1 || cs[0].Seq != 5 || cs[0].ID != b.ID {
		t.Fatalf("outbox after 4: %+v, %v; want the person again at seq 5", cs, err)
	}
	it, err := s.Get(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The person's identifying fields, which the hub refused; it took the
	// others, which a new stamp must not send again.
	all, _ := encodeRecord(it.Record)
	want := personalOnly(domain.KindBeneficiary, all)
	if len(want) == 0 || len(cs[0].Fields) != len(want) {
		t.Fatalf("resent fields %v, want the record's personal ones %v", cs[0].Fields, want)
	}
	for n := range cs[0].Fields {
		if _, ok := want[n]; !ok {
			t.Fatalf("field %d resent: it is not personal", n)
		}
	}

	// The hub refuses the new change too: the consent came before it, so
	// it stays refused.
	noConsent(t, s, 5)
	if resent, err := s.ResendConsented(ctx); err != nil || len(resent) != 0 {
		t.Fatalf("second ResendConsented = %v, %v; want nothing", resent, err)
	}
	if got := refusedSeqs(t, s); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("still refused: %v, want [3 4 5]", got)
	}

	// A person whose consent is withdrawn after the refusal: kept refused.
	w, wc, _ := followed(domain.FinaliteSuivi, domain.FinaliteDiagnostic)
	r := mustSave(t, s, w, wc)
	noConsent(t, s, r.FirstSeq)
	if _, err := s.WithdrawConsent(ctx, wc.ID, []string{domain.FinaliteSuivi}, "2026-03-03"); err != nil {
		t.Fatal(err)
	}
	if resent, err := s.ResendConsented(ctx); err != nil || len(resent) != 0 {
		t.Fatalf("ResendConsented without an active consent = %v, %v; want nothing", resent, err)
	}
	if got := refusedSeqs(t, s); !slices.Contains(got, r.FirstSeq) {
		t.Fatalf("refusal of the person whose consent was withdrawn forgotten: %v", got)
	}
}
