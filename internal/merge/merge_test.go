package merge

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

func raw(t testing.TB, v any) []byte {
	b, err := change.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func upsert(t testing.TB, ts hlc.Timestamp, dev string, fields map[uint64]any) *change.Change {
	f := change.Fields{}
	for n, v := range fields {
		if v == nil {
			f[n] = change.Null
		} else {
			f[n] = raw(t, v)
		}
	}
	return &change.Change{Kind: domain.KindBeneficiary, Op: change.OpUpsert, Fields: f, HLC: ts, Device: dev}
}

// Field numbers of Beneficiary used below.
const (
	fPrenom = 2
	fNom    = 3
	fGenre  = 10
	fStatut = 12
)

func TestFieldLevelLastWriterWins(t *testing.T) {
	s := NewState()
	k := domain.KindBeneficiary
	Apply(s, k, upsert(t, 10, "a", map[uint64]any{fGenre: "feminin", fStatut: "retraite"}))
	// Two devices edit different fields concurrently: both edits stay.
	Apply(s, k, upsert(t, 20, "a", map[uint64]any{fGenre: "non_communique"}))
	Apply(s, k, upsert(t, 15, "b", map[uint64]any{fStatut: "en_emploi"}))
	if !bytes.Equal(s.Fields[fGenre], raw(t, "non_communique")) || !bytes.Equal(s.Fields[fStatut], raw(t, "en_emploi")) {
		t.Fatalf("fields %v", s.Fields)
	}
	// An older write to a field loses.
	if Apply(s, k, upsert(t, 12, "z", map[uint64]any{fGenre: "masculin"})) {
		t.Fatal("an older write changed the state")
	}
	// Same timestamp: the device id breaks the tie, the same everywhere.
	Apply(s, k, upsert(t, 20, "b", map[uint64]any{fGenre: "masculin"}))
	if !bytes.Equal(s.Fields[fGenre], raw(t, "masculin")) {
		t.Fatal("tie not broken by device id")
	}
}

func TestDeleteAndEraseAreFinal(t *testing.T) {
	k := domain.KindBeneficiary
	s := NewState()
	Apply(s, k, upsert(t, 10, "a", map[uint64]any{fPrenom: "Léa", fNom: "Roux", fGenre: "feminin"}))
	Apply(s, k, &change.Change{Op: change.OpErase, HLC: 5, Device: "b"}) // an erase stamped earlier still wins
	if _, ok := s.Fields[fPrenom]; ok || !s.IsErased() {
		t.Fatal("erase did not strip the identity")
	}
	Apply(s, k, upsert(t, 30, "a", map[uint64]any{fPrenom: "Léa", fGenre: "masculin"}))
	if _, ok := s.Fields[fPrenom]; ok {
		t.Fatal("identity written after erasure")
	}
	if !bytes.Equal(s.Fields[fGenre], raw(t, "masculin")) {
		t.Fatal("statistics frozen by erasure")
	}
	Apply(s, k, &change.Change{Op: change.OpDelete, HLC: 40, Device: "a"})
	Apply(s, k, upsert(t, 50, "a", map[uint64]any{fGenre: "feminin"}))
	if !s.IsDeleted() {
		t.Fatal("a later write revived a tombstone")
	}
}

// Any order and any repetition of the same changes give the same state:
// what makes sync retries and out-of-order arrival harmless.
func TestMergeIsOrderIndependentAndIdempotent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	k := domain.KindBeneficiary
	fields := []uint64{fPrenom, fNom, fGenre, fStatut}
	values := []any{"a", "b", "c", nil, "feminin", "masculin"}
	devices := []string{"dev-a", "dev-b", "dev-c"}
	for trial := 0; trial < 300; trial++ {
		var cs []*change.Change
		for i := 0; i < 2+rng.IntN(12); i++ {
			ts := hlc.Timestamp(1 + rng.IntN(8)) // many equal stamps on purpose; 0 is never issued
			dev := devices[rng.IntN(len(devices))]
			switch r := rng.IntN(10); {
			case r == 0:
				cs = append(cs, &change.Change{Op: change.OpErase, HLC: ts, Device: dev})
			case r == 1:
				cs = append(cs, &change.Change{Op: change.OpDelete, HLC: ts, Device: dev})
			default:
				m := map[uint64]any{}
				for _, f := range fields {
					if rng.IntN(2) == 0 {
						m[f] = values[rng.IntN(len(values))]
					}
				}
				cs = append(cs, upsert(t, ts, dev, m))
			}
		}
		// Equal (stamp) pairs must carry equal content, as in reality
		// (one device never reuses a stamp): drop later duplicates.
		seen := map[hlc.Stamp]bool{}
		uniq := cs[:0]
		for _, c := range cs {
			if !seen[c.Stamp()] {
				seen[c.Stamp()] = true
				uniq = append(uniq, c)
			}
		}
		cs = uniq
		ref := NewState()
		for _, c := range cs {
			Apply(ref, k, c)
		}
		for p := 0; p < 5; p++ {
			s := NewState()
			order := rng.Perm(len(cs))
			for _, i := range order {
				Apply(s, k, cs[i])
				if rng.IntN(3) == 0 { // a retry delivers it again
					Apply(s, k, cs[i])
				}
			}
			if !reflect.DeepEqual(s, ref) {
				t.Fatalf("trial %d: order %v gave\n%+v\nwant\n%+v", trial, order, s, ref)
			}
		}
		// The stored form round-trips, and the hand-written encoder gives
		// the bytes of the reflection-based one.
		b, err := ref.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := ref.marshalReflect(); !bytes.Equal(b, want) {
			t.Fatalf("trial %d: Marshal\n%x\nwant\n%x", trial, b, want)
		}
		back, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ref) {
			t.Fatalf("state round trip:\n%+v\n%+v", back, ref)
		}
	}
}

func TestStoredStateIsCompact(t *testing.T) {
	a := &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30, TypeLieu: "lieu_activite",
		Commune: "88413", Thematiques: []string{"email", "navigation_sur_internet"}, Materiel: []string{"ordinateur"}}
	f, err := change.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	s := NewState()
	Apply(s, domain.KindActivity, &change.Change{Op: change.OpUpsert, Fields: f, HLC: hlc.FromTime(a.ID.Time()), Device: ident.New().String()})
	b, _ := s.Marshal()
	fb, _ := change.Marshal(f)
	// One stamp and one device for all fields: the clocks cost little.
	if over := len(b) - len(fb); over > 80 {
		t.Fatalf("state of %d bytes for %d bytes of fields (+%d)", len(b), len(fb), over)
	}
	if _, err := Unmarshal([]byte{0xa2, 0x03, 0x81, 0x82, 0x01, 0x05, 0x04, 0xa1, 0x02, 0x00}); err == nil {
		t.Fatal("stamp with an out-of-range device accepted")
	}
}

// For every personal field of every kind: an erase strips it, and no write
// of it, before or after the erase, in any order, brings it back; the
// anonymous fields keep following the last writer.
func TestEraseStripsEveryPersonalFieldForGood(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := 0
	for _, k := range domain.Kinds {
		personal := map[uint64]bool{}
		for _, f := range domain.PersonalFields(k) {
			personal[f] = true
		}
		for _, f := range domain.PersonalFields(k) {
			n++
			var anon uint64
			for _, fd := range domain.Fields(k) {
				if !personal[fd.Num] && fd.Num != domain.IDField {
					anon = fd.Num
					break
				}
			}
			cs := []*change.Change{{Kind: k, Op: change.OpErase, HLC: 50, Device: "b"}}
			for i := range 6 {
				c := upsert(t, hlc.Timestamp(10+20*i), "a", map[uint64]any{f: "Léa Roux"})
				c.Kind = k
				if anon != 0 {
					c.Fields[anon] = raw(t, i)
				}
				cs = append(cs, c)
			}
			for trial := range 10 {
				s := NewState()
				for _, i := range rng.Perm(len(cs)) {
					Apply(s, k, cs[i])
				}
				if _, ok := s.Fields[f]; ok {
					t.Fatalf("%s field %d: present after an erase (order %d)", k, f, trial)
				}
				if anon != 0 && !bytes.Equal(s.Fields[anon], raw(t, 5)) {
					t.Fatalf("%s: anonymous field %d frozen by the erase", k, anon)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d personal fields checked", n)
	}
}

// PeekFields reads of a stored state what Unmarshal then Live give.
func TestPeekFieldsAgreesWithUnmarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	k := domain.KindBeneficiary
	nums := []uint64{fPrenom, fNom, fGenre, fStatut, 99}
	values := []any{"Hélène", "Lefèvre-Garnier", "", nil, "feminin"}
	for trial := range 300 {
		s := NewState()
		for i := range 1 + rng.IntN(8) {
			ts := hlc.Timestamp(1 + i)
			switch r := rng.IntN(12); {
			case r == 0:
				Apply(s, k, &change.Change{Op: change.OpDelete, HLC: ts, Device: "a"})
			case r == 1:
				Apply(s, k, &change.Change{Op: change.OpErase, HLC: ts, Device: "b"})
			default:
				f := map[uint64]any{}
				for range 1 + rng.IntN(3) {
					f[nums[rng.IntN(4)]] = values[rng.IntN(len(values))]
				}
				Apply(s, k, upsert(t, ts, "a", f))
			}
		}
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		live := back.Live()
		out := make([][]byte, len(nums))
		deleted, err := PeekFields(b, nums, out)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if deleted != back.IsDeleted() {
			t.Fatalf("trial %d: deleted %v, Unmarshal says %v", trial, deleted, back.IsDeleted())
		}
		for i, n := range nums {
			if !bytes.Equal(out[i], live[n]) || (out[i] == nil) != (live[n] == nil) {
				t.Fatalf("trial %d: field %d = %x, Live gives %x", trial, n, out[i], live[n])
			}
		}
	}
	for i := 1; i < 12; i++ {
		s := NewState()
		Apply(s, k, upsert(t, 1, "a", map[uint64]any{fPrenom: "Léa", fNom: "Roux"}))
		b, _ := s.Marshal()
		if i < len(b) {
			if _, err := PeekFields(b[:i], nums, make([][]byte, len(nums))); err == nil {
				t.Errorf("state truncated at %d accepted", i)
			}
		}
	}
}
