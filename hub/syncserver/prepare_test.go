package syncserver

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/store/sqlite"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// preparingStore counts the batches its Preparer prepared and those
// applied with their preparation.
type preparingStore struct {
	*sqlite.Store
	prepared, used atomic.Int32
}

func (s *preparingStore) PrepareBatch(device, team string, cs []change.Change) store.Prepared {
	s.prepared.Add(1)
	return s.Store.PrepareBatch(device, team, cs)
}

func (s *preparingStore) ApplyPrepared(ctx context.Context, device string, cs []change.Change, p store.Prepared, bytes int) (uint64, int, error) {
	if p != nil {
		s.used.Add(1)
	}
	return s.Store.ApplyPrepared(ctx, device, cs, p, bytes)
}

func (s *preparingStore) ApplyAt(ctx context.Context, version *int64, device string, cs []change.Change, p store.Prepared, bytes int) (uint64, int, error) {
	if p != nil {
		s.used.Add(1)
	}
	return s.Store.ApplyAt(ctx, version, device, cs, p, bytes)
}

// A batch is prepared in the connection's reader and applied as
// prepared only when nothing of it is refused: a person taken without
// their identifying fields (no consent) or a refused change must go the
// general way, and what the hub keeps must say so.
func TestPreparedOnlyWithoutRefusals(t *testing.T) {
	h := newTestHub(t, Options{})
	cs := &preparingStore{Store: h.st}
	srv := New(cs, Options{})
	h.http = httptest.NewServer(srv)
	t.Cleanup(func() {
		h.http.Close()
		srv.Shutdown(context.Background())
	})
	ws := h.dial(t)
	stamp := hlc.FromTime(time.Now().Add(-time.Hour))
	seq := uint64(0)
	wc := func(r domain.Record) wire.Change {
		seq++
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		c := change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f, HLC: stamp + hlc.Timestamp(seq), Seq: seq}
		w, err := wire.FromChange(&c)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	p, q := ident.New(), ident.New()
	batches := []struct {
		name           string
		changes        []wire.Change
		refused        string // the code of its one refusal, if any
		prepared, used int32  // the counts after it
	}{
		{"a person and their consent", []wire.Change{
			wc(&domain.Consent{ID: ident.New(), Beneficiaire: p, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}),
			wc(&domain.Beneficiary{ID: p, Nom: "Martin", Genre: "feminin"}),
		}, "", 1, 1},
		{"a person without consent", []wire.Change{
			wc(&domain.Beneficiary{ID: q, Nom: "Durand", Genre: "feminin"}),
		}, wire.CodeNoConsent, 2, 1},
		{"an invalid record", []wire.Change{
			wc(&domain.Beneficiary{ID: ident.New(), Nom: "Bernard", Email: "pas-une-adresse"}),
		}, wire.CodeInvalid, 2, 1},
		{"an anonymous person", []wire.Change{
			wc(&domain.Beneficiary{ID: ident.New(), Genre: "masculin"}),
		}, "", 3, 2},
	}
	hwm := uint64(0)
	for i, b := range batches {
		send(t, ws, &wire.Push{Batch: uint64(i + 1), Changes: b.changes})
		hwm += uint64(len(b.changes))
		ack, ok := recv(t, ws).(*wire.Ack)
		if !ok || ack.HWM != hwm {
			t.Fatalf("%s: reply %+v, want an ack up to %d", b.name, ack, hwm)
		}
		var codes []string
		for _, r := range ack.Rejected {
			codes = append(codes, r.Code)
		}
		if (b.refused == "") != (len(codes) == 0) || (b.refused != "" && (len(codes) != 1 || codes[0] != b.refused)) {
			t.Errorf("%s: refused %q, want %q", b.name, codes, b.refused)
		}
		if got, used := cs.prepared.Load(), cs.used.Load(); got != b.prepared || used != b.used {
			t.Errorf("%s: %d batches prepared, %d applied as prepared; want %d, %d", b.name, got, used, b.prepared, b.used)
		}
	}
	// The person without consent: kept without their name.
	_, _, st, err := h.st.Record(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range domain.PersonalFields(domain.KindBeneficiary) {
		if _, ok := st.Fields[n]; ok {
			t.Errorf("the hub keeps personal field %d of a person without consent", n)
		}
	}
	if len(st.Fields) == 0 {
		t.Error("the hub did not take the other fields of the person without consent")
	}
}
