package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/retention"
)

// censusStore is a store of fixture records that also holds every shape
// a state takes: deleted, erased (cleared fields), withdrawn, cleared by
// an edit, and written by two devices.
func censusStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s, _ := mustCreate(t)
	set := fixture.Generate(fixture.Options{N: 1500, Seed: 7})
	if _, err := s.Save(ctx, set.Records()...); err != nil {
		t.Fatal(err)
	}
	for _, a := range set.Activities[:20] {
		if _, err := s.Delete(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	erased, wasErased := 0, map[ident.ID]bool{}
	for _, b := range set.Beneficiaries {
		if b.Identified() && erased < 10 {
			if _, err := s.EraseBeneficiary(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			wasErased[b.ID] = true
			erased++
		}
	}
	if erased == 0 {
		t.Fatal("no identified person in the fixture to erase")
	}
	if _, err := s.WithdrawConsent(ctx, set.Consents[len(set.Consents)-1].ID, nil, "2030-06-01"); err != nil {
		t.Fatal(err)
	}
	// An edit that clears a field, and a teammate's edit of a person.
	for _, b := range set.Beneficiaries[len(set.Beneficiaries)-5:] {
		if b.Identified() && b.Telephone != "" {
			c := *b
			c.Telephone = ""
			mustSave(t, s, &c)
			break
		}
	}
	// Contacts that only a consent, or a deleted activity, would make
	// late: the census must read consents, and take deletions as no
	// contact.
	identified := map[ident.ID]bool{}
	for _, b := range set.Beneficiaries[:len(set.Beneficiaries)-5] {
		identified[b.ID] = b.Identified() && !wasErased[b.ID]
	}
	var late *domain.Consent
	for _, c := range set.Consents {
		if identified[c.Beneficiaire] && c.RetireLe == "" {
			late = c
			break
		}
	}
	renewed := *late
	renewed.ID, renewed.Date = ident.New(), "2027-09-01"
	mustSave(t, s, &renewed)
	var withActivity *domain.Activity
	for _, a := range set.Activities[20:] {
		if a.Beneficiaire != nil && *a.Beneficiaire != late.Beneficiaire && identified[*a.Beneficiaire] {
			withActivity = a
			break
		}
	}
	gone := *withActivity
	gone.ID, gone.Date = ident.New(), "2027-09-01"
	mustSave(t, s, &gone)
	if _, err := s.Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	b := *set.Beneficiaries[len(set.Beneficiaries)-1]
	b.Commune = "88160"
	fields, err := change.Encode(&b)
	if err != nil {
		t.Fatal(err)
	}
	delete(fields, domain.IDField)
	cs := []change.Change{{Kind: domain.KindBeneficiary, ID: b.ID, Op: change.OpUpsert, Fields: change.Fields{fieldNum(t, domain.KindBeneficiary, "commune"): fields[fieldNum(t, domain.KindBeneficiary, "commune")]},
		HLC: s.clock.Now() + 1000, Device: "other", Seq: 1}}
	if skipped, err := s.ApplyRemote(ctx, cs, 1, nil); err != nil || skipped != 0 {
		t.Fatalf("applying a teammate's edit: %d skipped, %v", skipped, err)
	}
	return s
}

// storedStates calls fn with every record's decrypted state.
func storedStates(t *testing.T, s *Store, fn func(k domain.Kind, id ident.ID, raw []byte)) {
	t.Helper()
	rows, err := s.r.Query(`SELECT kind, id, body FROM records ORDER BY kind, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k domain.Kind
		var idb, body []byte
		if err := rows.Scan(&k, &idb, &body); err != nil {
			t.Fatal(err)
		}
		var id ident.ID
		copy(id[:], idb)
		raw, err := s.key.Open(nil, body, recordAD(k, id))
		if err != nil {
			t.Fatal(err)
		}
		fn(k, id, raw)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// The census's fast path gives, for every record of a store of fixture
// data in every shape, what the general path (merge.Unmarshal, then
// change.Decode) gives: the same record, deleted, erased and last stamp.
func TestCensusFastPathAgreesWithTheGeneralPath(t *testing.T) {
	s := censusStore(t)
	var total, fast, slow int
	kinds := map[domain.Kind]int{}
	storedStates(t, s, func(k domain.Kind, id ident.ID, raw []byte) {
		total++
		want, werr := censusOfState(k, id, raw)
		got, gerr := censusOf(k, id, raw)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("%s %s: error %v, the general path's %v", k, id, gerr, werr)
		}
		if fmt.Sprint(got.err) != fmt.Sprint(want.err) || !reflect.DeepEqual(got.record, want.record) ||
			got.deleted != want.deleted || got.erased != want.erased || !got.touched.Equal(want.touched) {
			t.Fatalf("%s %s:\n fast    %+v\n general %+v", k, id, got, want)
		}
		if _, ok := plainView(raw); ok {
			fast++
			kinds[k]++
		} else {
			slow++
		}
	})
	// Not a vacuous agreement: most records take the fast path, in every
	// kind, and the erased ones (cleared fields) the general one.
	if fast < total*9/10 || slow == 0 {
		t.Fatalf("%d records: %d by the fast path, %d by the general one", total, fast, slow)
	}
	for _, k := range []domain.Kind{domain.KindBeneficiary, domain.KindConsent, domain.KindAssessment, domain.KindActivity} {
		if kinds[k] == 0 {
			t.Errorf("no %s read by the fast path", k)
		}
	}
}

// A state the fast path does not read as the general path would is left
// to the general path: plainView refuses it, and censusOf answers what
// merge.Unmarshal answers.
func TestCensusFastPathRefusesOtherShapes(t *testing.T) {
	s := censusStore(t)
	var plain []byte
	storedStates(t, s, func(k domain.Kind, id ident.ID, raw []byte) {
		if plain == nil && k == domain.KindActivity {
			if v, ok := plainView(raw); ok && v.Deleted == 0 && v.Last != 0 {
				plain = raw
			}
		}
	})
	if plain == nil {
		t.Fatal("no plain activity state")
	}
	st, err := merge.Unmarshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*merge.State)) []byte {
		c, err := merge.Unmarshal(plain)
		if err != nil {
			t.Fatal(err)
		}
		f(c)
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	anyField := st.Fields.Nums()[0]
	cases := []struct {
		name string
		raw  []byte
	}{
		{"truncated", plain[:len(plain)-1]},
		{"trailing byte", append(append([]byte{}, plain...), 0)},
		{"empty", nil},
		{"not a map", []byte{0x80}},
		{"a cleared field", edit(func(c *merge.State) { c.Fields[anyField] = change.Null })},
		{"the id among the fields", edit(func(c *merge.State) {
			c.Fields[domain.IDField] = []byte{0x50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		})},
		{"keys out of order", reorderTop(t, plain)},
		{"last stamp out of range", setTop(t, plain, 7, 9)},
		{"deleted stamp out of range", setTop(t, plain, 5, 9)},
		// Shapes merge.Unmarshal refuses that the census's own reader
		// once took for plain.
		{"a clock twice", setTopValue(t, plain, 4, []byte{0xa2, 0x02, 0x00, 0x02, 0x00})},
		{"a device of bad UTF-8", setTopValue(t, plain, 2, []byte{0x81, 0x62, 0xc3, 0x28})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := plainView(tc.raw); ok {
				t.Fatal("read by the fast path")
			}
			id := ident.New()
			got, gerr := censusOf(domain.KindActivity, id, tc.raw)
			want, werr := censusOfState(domain.KindActivity, id, tc.raw)
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || fmt.Sprint(got.err) != fmt.Sprint(want.err) ||
				!reflect.DeepEqual(got.record, want.record) || got.deleted != want.deleted || got.erased != want.erased {
				t.Fatalf("censusOf: %+v %v; the general path: %+v %v", got, gerr, want, werr)
			}
		})
	}
}

// setTop returns the state raw with key (5, 6 or 7: a stamp index + 1)
// set to x, added at the end of the map (the last keys).
func setTop(t *testing.T, raw []byte, key, x byte) []byte {
	t.Helper()
	var vals [7][]byte
	keys := []uint64{1, 2, 3, 4, 5, 6, 7}
	if err := change.MapValues(raw, keys, vals[:]); err != nil {
		t.Fatal(err)
	}
	vals[key-1] = []byte{x}
	return encodeTop(keys, vals[:])
}

// setTopValue returns the state raw with the value of key (1 to 7) set
// to the encoded item v.
func setTopValue(t *testing.T, raw []byte, key int, v []byte) []byte {
	t.Helper()
	var vals [7][]byte
	keys := []uint64{1, 2, 3, 4, 5, 6, 7}
	if err := change.MapValues(raw, keys, vals[:]); err != nil {
		t.Fatal(err)
	}
	vals[key-1] = v
	return encodeTop(keys, vals[:])
}

// reorderTop returns the state raw with its first two keys swapped.
func reorderTop(t *testing.T, raw []byte) []byte {
	t.Helper()
	var vals [7][]byte
	keys := []uint64{1, 2, 3, 4, 5, 6, 7}
	if err := change.MapValues(raw, keys, vals[:]); err != nil {
		t.Fatal(err)
	}
	return encodeTop([]uint64{2, 1, 3, 4, 5, 6, 7}, [][]byte{vals[1], vals[0], vals[2], vals[3], vals[4], vals[5], vals[6]})
}

func encodeTop(keys []uint64, vals [][]byte) []byte {
	n := 0
	for _, v := range vals {
		if v != nil {
			n++
		}
	}
	b := []byte{0xa0 | byte(n)}
	for i, v := range vals {
		if v != nil {
			b = append(b, byte(keys[i]))
			b = append(b, v...)
		}
	}
	return b
}

// The census in one pass over the records plans the same purge as the
// census the store made before, kind by kind through the general path,
// whatever is due.
func TestCensusPlansAsTheGeneralScan(t *testing.T) {
	ctx := context.Background()
	s := censusStore(t)
	p, err := s.Retention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	due := 0
	// Every month over the years where the fixture's people fall due one
	// after the other: a contact missed or a deletion ignored moves
	// someone's date across one of them.
	for now := at("2026-01-01"); now.Before(at("2033-01-01")); now = now.AddDate(0, 2, 0) {
		var got, want retention.Plan
		_, err := s.write(ctx, func(w *writeTx) error {
			c := retention.NewCensus(p, now)
			if err := w.censusAll(c); err != nil {
				return err
			}
			got = c.Plan()
			c = retention.NewCensus(p, now)
			for _, k := range []domain.Kind{domain.KindBeneficiary, domain.KindConsent, domain.KindAssessment, domain.KindActivity} {
				err := w.s.scanKind(w.ctx, w.tx, k, func(id ident.ID, st *merge.State) error {
					if r, err := change.Decode(k, id, st.Live()); err == nil {
						c.Record(r, st.IsDeleted(), st.IsErased(), st.Last.TS.Time())
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			want = c.Plan()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("at %v: plan\n %+v\nthe general scan's\n %+v", now, got, want)
		}
		due += got.Records()
	}
	if due == 0 {
		t.Fatal("nothing due at any date: the comparison says nothing")
	}
}
