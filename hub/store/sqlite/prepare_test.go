package sqlite

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// prepareGeneral is prepareNew the general way — every record an empty
// merge.State, merged and encoded by Marshal — the reference of the
// rows prepareNew gives.
func (s *Store) prepareGeneral(deviceID, team string, todo []change.Change) (logRows, stateRows, subjects []any, applied int, erased bool, scrubbed []ident.ID) {
	sc := new(scratch)
	recs, order := emptyRecords(todo, team)
	applied, erased = s.merge(sc, batchDevice{id: deviceID, team: team}, todo, recs)
	for _, p := range order {
		if p.scrub {
			scrubbed = append(scrubbed, p.id)
		}
	}
	return sc.args, encodeStates(nil, order, nil), consentSubjectArgs(order), applied, erased, scrubbed
}

// editsOf returns a batch that touches records of backlog again, after
// it: a second upsert, a delete, an erase, changes alone of each op, a
// cleared field, an id among the fields, a kind that does not match, an
// encoding hint that no longer matches the fields.
func editsOf(backlog []change.Change) []change.Change {
	var out []change.Change
	add := func(c change.Change) {
		c.Seq, c.HLC = backlog[len(backlog)-1].Seq+uint64(len(out))+1, backlog[len(backlog)-1].HLC+hlc.Timestamp(len(out))+1
		out = append(out, c)
	}
	for i, c := range backlog[:min(len(backlog), 60)] {
		switch i % 6 {
		case 0: // edited again: one field cleared, one set
			e := change.Change{Kind: c.Kind, ID: c.ID, Op: change.OpUpsert, Fields: change.Fields{}}
			for n, v := range c.Fields {
				e.Fields[n] = v
				break
			}
			for n := range c.Fields {
				e.Fields[n] = change.Null
			}
			add(e)
		case 1:
			add(change.Change{Kind: c.Kind, ID: c.ID, Op: change.OpDelete})
		case 2:
			add(change.Change{Kind: c.Kind, ID: c.ID, Op: change.OpErase})
		case 3: // another kind named: skipped
			k := domain.KindTourStop
			if c.Kind == k {
				k = domain.KindActivity
			}
			add(change.Change{Kind: k, ID: c.ID, Op: change.OpUpsert, Fields: change.Fields{2: change.Null}})
		}
	}
	id := ident.New()
	add(change.Change{Kind: domain.KindActivity, ID: ident.New(), Op: change.OpDelete})
	add(change.Change{Kind: domain.KindBeneficiary, ID: ident.New(), Op: change.OpErase, Fields: change.Fields{2: {0x61, 'x'}, 9: {0x61, 'y'}}})
	add(change.Change{Kind: domain.KindActivity, ID: ident.New(), Op: change.OpUpsert})
	add(change.Change{Kind: domain.KindActivity, ID: ident.New(), Op: change.OpUpsert, Fields: change.Fields{2: change.Null, 13: change.Null}})
	add(change.Change{Kind: domain.KindActivity, ID: id, Op: change.OpUpsert, Fields: change.Fields{domain.IDField: {0x50}, 2: {0x61, 'x'}}})
	stale := change.Change{Kind: domain.KindActivity, ID: ident.New(), Op: change.OpUpsert, Fields: change.Fields{2: {0x61, 'x'}}}
	stale.SetEncoded(change.Fields{2: {0x61, 'y'}}.Encode()) // fields changed since they came
	add(stale)
	return out
}

// prepareNew, which encodes a record created by one upsert alone without
// a merge.State, prepares the rows the general merge gives, byte for
// byte: over a fixture backlog of every kind alone, and with the
// records edited, deleted, erased, cleared again in the same batch.
func TestPrepareNewIsTheGeneralMerge(t *testing.T) {
	s, _ := openTemp(t)
	device := ident.New().String()
	without, records := 0, 0
	for _, cs := range backlogPushes(t, 3000, 700) {
		_, order := newRecords(cs, "cd88")
		for _, p := range order {
			if p.st == nil {
				without++
			}
		}
		records += len(order)
		for name, todo := range map[string][]change.Change{"alone": cs, "edited": append(slices.Clone(cs), editsOf(cs)...)} {
			t.Run(fmt.Sprintf("%s from %d", name, cs[0].Seq), func(t *testing.T) {
				logs, states, subjects, applied, erased, scrubbed := s.prepareGeneral(device, "cd88", slices.Clone(todo))
				pb, err := s.prepareNew(device, "cd88", todo, slices.Clone(todo))
				if err != nil {
					t.Fatal(err)
				}
				defer pb.release()
				var pbScrubbed []ident.ID
				for _, p := range pb.scrub {
					pbScrubbed = append(pbScrubbed, p.id)
				}
				if pb.applied != applied || pb.erased != erased || !slices.Equal(pbScrubbed, scrubbed) {
					t.Errorf("applied %d, erased %v, scrubbed %v; the general way %d, %v, %v", pb.applied, pb.erased, pbScrubbed, applied, erased, scrubbed)
				}
				sameRows(t, "log", pb.sc.args, logs)
				sameRows(t, "records", pb.sc.states, states)
				sameRows(t, "consent subjects", pb.subjects, subjects)
			})
		}
	}
	if without < records/2 {
		t.Errorf("%d of %d new records without a state: the test tries little of the way without", without, records)
	}
}

// sameRows compares statement arguments, byte slices by their bytes.
func sameRows(t *testing.T, what string, got, want []any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d arguments, the general way %d", what, len(got), len(want))
	}
	for i := range got {
		gb, gok := got[i].([]byte)
		wb, wok := want[i].([]byte)
		if gok != wok || (gok && !bytes.Equal(gb, wb)) || (!gok && got[i] != want[i]) {
			t.Fatalf("%s: argument %d is %v (%T), the general way %v (%T)", what, i, got[i], got[i], want[i], want[i])
		}
	}
}
