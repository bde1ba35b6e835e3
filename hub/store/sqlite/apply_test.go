package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// enrollAs enrolls the device id in team under name.
func enrollAs(t testing.TB, s *Store, name, team, id string) store.Device {
	t.Helper()
	var tok [32]byte
	rand.Read(tok[:])
	ctx := context.Background()
	if err := s.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Enroll(ctx, tok, store.Device{ID: id, DeviceKey: []byte("dk"), PushKey: []byte("pk")}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A batch prepared ahead of its turn (store.Preparer) and the same batch
// applied by ApplyBatch must leave the same store, whatever happened
// between the preparation and the turn. Each case applies "before" then
// "batch" to one store by ApplyBatch, and to another with "batch"
// prepared before "before" was applied.
func TestPreparedAheadAppliesAsApplyBatch(t *testing.T) {
	ctx := context.Background()
	cs := activities(t, 6)
	device := ident.New().String() // the same in both stores: states name it
	renumbered := func(c change.Change, seq uint64) change.Change {
		c.Seq = seq
		return c
	}
	later := func(c change.Change, seq uint64) change.Change {
		c.Seq, c.HLC = seq, c.HLC+1000
		c.Fields = change.Fields{}
		for n, v := range cs[5].Fields { // another activity's values, a later stamp
			if n != domain.IDField {
				c.Fields[n] = v
			}
		}
		return c
	}
	tests := []struct {
		name          string
		before, batch []change.Change
		hwm, applied  int
		wantFits      bool
	}{
		{"nothing between: used", nil, cs[:3], 3, 3, true},
		{"a record stored meanwhile: fits, inserted the general way", cs[:2], []change.Change{later(cs[0], 3), renumbered(cs[2], 4)}, 4, 2, true},
		{"a retry: some seqs applied meanwhile", cs[:2], cs[:4], 4, 2, false},
		{"the whole batch applied meanwhile", cs[:3], cs[:3], 3, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs [2][][]byte
			var states [2][][]byte
			for i, prepare := range []bool{false, true} {
				s, _ := openTemp(t)
				d := enrollAs(t, s, "bus-a", "cd88", device)
				batch := append([]change.Change(nil), tc.batch...)
				var pb store.Prepared
				if prepare {
					pb = s.PrepareBatch(d.ID, d.Team, batch)
					if pb == nil || pb.PreparedChanges() != len(batch) {
						t.Fatalf("PrepareBatch gave %v", pb)
					}
				}
				if len(tc.before) > 0 {
					if _, _, err := s.ApplyBatch(ctx, d.ID, tc.before, 1); err != nil {
						t.Fatal(err)
					}
				}
				if prepare {
					if got := pb.(*prepared).fits(batchDevice{team: d.Team, hwm: uint64(len(tc.before))}, batch); got != tc.wantFits {
						t.Errorf("preparation fits: %v, want %v", got, tc.wantFits)
					}
				}
				hwm, applied, err := s.ApplyPrepared(ctx, d.ID, batch, pb, 1)
				if err != nil || hwm != uint64(tc.hwm) || applied != tc.applied {
					t.Fatalf("prepared %v: hwm %d, applied %d, %v; want %d, %d", prepare, hwm, applied, err, tc.hwm, tc.applied)
				}
				logged, _, _, err := s.ChangesSince(ctx, "cd88", "", 0, 1<<30)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range logged {
					logs[i] = append(logs[i], l.Raw)
					_, _, st, err := s.Record(ctx, l.ID)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := st.Marshal()
					states[i] = append(states[i], b)
				}
				if dd, err := s.Device(ctx, d.ID); err != nil || dd.HWM != uint64(tc.hwm) {
					t.Errorf("device mark %d, want %d (%v)", dd.HWM, tc.hwm, err)
				}
				s.Close()
			}
			if len(logs[0]) != tc.hwm {
				t.Errorf("%d changes logged, want %d", len(logs[0]), tc.hwm)
			}
			if len(logs[0]) != len(logs[1]) {
				t.Fatalf("logged %d changes by ApplyBatch, %d prepared", len(logs[0]), len(logs[1]))
			}
			for j := range logs[0] {
				if !bytes.Equal(logs[0][j], logs[1][j]) || !bytes.Equal(states[0][j], states[1][j]) {
					t.Errorf("change %d: logged or merged otherwise when prepared ahead:\n%x / %x\n%x / %x", j, logs[0][j], states[0][j], logs[1][j], states[1][j])
				}
			}
		})
	}
}

// When it fits, the preparation is what is inserted: nothing of the
// batch is merged or encoded again in the writer's turn.
func TestPreparedIsUsedWhenItFits(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	d := enroll(t, s, "bus-a", "cd88")
	cs := activities(t, 2)
	pb := s.PrepareBatch(d.ID, d.Team, cs).(*prepared)
	// The preparation's log row for the first change, tampered: what the
	// store logs shows which one it inserted.
	mark := []byte{0xa1, 0x02, 0x61, 0x78} // {2: "x"}
	pb.sc.args[7] = mark
	if _, n, err := s.ApplyPrepared(ctx, d.ID, cs, pb, 1); err != nil || n != 2 {
		t.Fatalf("applied %d: %v", n, err)
	}
	logged, _, _, err := s.ChangesSince(ctx, "cd88", "", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != 2 || !bytes.Equal(logged[0].Raw, mark) {
		t.Fatalf("logged %d changes, the first %x: the preparation was not used", len(logged), logged[0].Raw)
	}
	// Another slice with the same changes is not what it was prepared
	// from: applied the general way.
	more := activities(t, 4)[2:]
	for i := range more {
		more[i].Seq = uint64(i + 3)
	}
	pb2 := s.PrepareBatch(d.ID, d.Team, more).(*prepared)
	pb2.sc.args[7] = mark
	other := append([]change.Change(nil), more...)
	if _, n, err := s.ApplyPrepared(ctx, d.ID, other, pb2, 1); err != nil || n != 2 {
		t.Fatalf("applied %d: %v", n, err)
	}
	logged, _, _, _ = s.ChangesSince(ctx, "cd88", "", 2, 1<<30)
	if len(logged) != 2 || bytes.Equal(logged[0].Raw, mark) {
		t.Fatalf("a preparation of another slice was used")
	}
}

// A batch that does not follow itself, or holds a malformed change, is
// not prepared: ApplyBatch says what is wrong with it.
func TestPrepareRefusesWhatApplyBatchRefuses(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	cs := activities(t, 3)
	gap := []change.Change{cs[0], cs[2]}
	bad := append([]change.Change(nil), cs...)
	bad[1].HLC = hlc.Timestamp(0)
	zero := append([]change.Change(nil), cs...)
	zero[0].Seq = 0
	for name, b := range map[string][]change.Change{"gap": gap, "zero stamp": bad, "seq 0": zero, "empty": nil} {
		if pb := s.PrepareBatch("dev", "cd88", b); pb != nil {
			t.Errorf("%s: prepared", name)
		}
	}
}
