package syncclient

import (
	"math/rand/v2"
	"strings"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// Whatever the agent's batcher cuts, the hub's decoder takes: outboxes of
// random changes — only one-field edits (the most changes per byte), or
// a mix from tiny edits to the largest record the domain
// allows, in clear or sealed to the hub — are cut by the real batcher
// with the options a client really runs with (defaults, and options past
// the wire's limits, which the client clamps), and every batch encodes
// within wire.MaxFrame and decodes under the hub's limits, whole.
func TestBatchesDecodeUnderTheHubsLimits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	largest := largestChange(t)
	keys := map[uint64][]byte{7: make([]byte, 32), 9: make([]byte, 32)}
	gen := func(i int, smallOnly bool) wire.Change {
		n := r.IntN(10)
		if smallOnly {
			n = 9
		}
		switch n {
		case 0:
			c := largest
			c.ID, c.Seq = ident.New(), uint64(i+1)
			return c
		case 1: // sealed to the hub: the body is opaque, up to a large record's
			return wire.Change{Kind: 1, ID: ident.New(), Op: 1, HLC: 1 << 40, Seq: uint64(i + 1),
				Sealed: make([]byte, 40+r.IntN(domain.MaxRecordText+domain.MaxItems*20)), KeyID: uint64(7 + 2*r.IntN(2))}
		default: // a one-field edit, the most changes per byte
			f := change.Fields{4: []byte{0x18, byte(r.IntN(200))}}
			c, err := wire.FromChange(&change.Change{Kind: domain.KindActivity, ID: ident.New(), Op: change.OpUpsert, HLC: 1 << 40, Seq: uint64(i + 1), Fields: f})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	configs := []*Client{{}, {BatchCount: 1 << 20, BatchBytes: 1 << 30}, {BatchCount: 1}, {BatchBytes: 1}}
	for ci, c := range configs {
		for _, smallOnly := range []bool{false, true} {
			c.defaults()
			if c.BatchCount > wire.MaxChanges || c.BatchBytes > wire.MaxFrame {
				t.Fatalf("config %d: a client runs with %d changes, %d bytes a batch: over the wire's limits", ci, c.BatchCount, c.BatchBytes)
			}
			buf := make([]wire.Change, 3*wire.MaxChanges)
			for i := range buf {
				buf[i] = gen(i, smallOnly)
			}
			sent := 0
			for no := uint64(1); len(buf) > 0; no++ {
				bt := newBatch(no, c.BatchCount, c.BatchBytes)
				for len(buf) > 0 && bt.add(buf[0], keys) {
					buf = buf[1:]
				}
				p := bt.p
				b, err := wire.Encode(p)
				if err != nil {
					t.Fatalf("config %d, batch %d of %d changes: the agent cannot encode what it cut: %v", ci, no, len(p.Changes), err)
				}
				m, err := wire.Decode(b)
				if err != nil {
					t.Fatalf("config %d, batch %d of %d changes (%d bytes): the hub refuses it: %v", ci, no, len(p.Changes), len(b), err)
				}
				got := m.(*wire.Push)
				if len(got.Changes) != len(p.Changes) || len(p.Changes) == 0 {
					t.Fatalf("config %d: batch %d decoded %d changes of %d", ci, no, len(got.Changes), len(p.Changes))
				}
				for _, ch := range got.Changes {
					if ch.Sealed != nil && got.Keys[ch.KeyID] == nil {
						t.Fatalf("config %d: batch %d lacks the key of a sealed change", ci, no)
					}
				}
				sent += len(p.Changes)
			}
			if sent != 3*wire.MaxChanges {
				t.Fatalf("config %d: %d changes sent of %d", ci, sent, 3*wire.MaxChanges)
			}
		}
	}
}

// largestChange is the change that creates the largest activity the
// domain lets a mediator save: every text and list at its bound.
func largestChange(t *testing.T) wire.Change {
	t.Helper()
	a := &domain.Activity{ID: ident.New(), Type: "collectif", Date: "2026-03-02", Duree: 90, TypeLieu: "lieu_activite",
		Commune: "88413", Thematiques: []string{"email"}, Niveau: "debutant",
		Notes:        strings.Repeat("é", domain.MaxText/2),
		TitreAtelier: strings.Repeat("t", domain.MaxText),
		Mediateur:    strings.Repeat("m", domain.MaxText),
		Vehicule:     strings.Repeat("v", domain.MaxText-2000),
		Participants: &domain.Participants{Total: domain.MaxItems, Beneficiaires: make([]ident.ID, domain.MaxItems)}}
	for i := range a.Participants.Beneficiaires {
		a.Participants.Beneficiaires[i] = ident.New()
	}
	if err := a.Validate(nil); err != nil {
		t.Fatalf("the largest record is not valid: %v", err)
	}
	f, err := change.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.FromChange(&change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, HLC: 1 << 40, Seq: 1, Fields: f})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
