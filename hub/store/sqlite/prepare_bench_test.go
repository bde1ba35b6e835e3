package sqlite

import (
	"testing"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// backlogPushes returns a laptop's backlog of n fixture records (consents
// before persons, one upsert each, as internal/e2e's backlog benchmark
// makes it) as the hub's reader hands them to PrepareBatch: through a
// Push frame and wire.(*Change).ToChange, with their encoding as they
// came, cut in batches of perPush.
func backlogPushes(tb testing.TB, n, perPush int) [][]change.Change {
	tb.Helper()
	set := fixture.Generate(fixture.Options{N: n / 2, Seed: 1})
	var recs []domain.Record
	for _, r := range set.TourStops {
		recs = append(recs, r)
	}
	for _, r := range set.Consents {
		recs = append(recs, r)
	}
	for _, r := range set.Beneficiaries {
		recs = append(recs, r)
	}
	for _, r := range set.Assessments {
		recs = append(recs, r)
	}
	for _, r := range set.Activities {
		recs = append(recs, r)
	}
	recs = recs[:min(n, len(recs))]
	stamp := hlc.FromTime(time.Now().Add(-24 * time.Hour))
	var out [][]change.Change
	var p wire.Push
	for i, r := range recs {
		r.Normalize()
		f, err := change.Encode(r)
		if err != nil {
			tb.Fatal(err)
		}
		c := change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f, HLC: stamp + hlc.Timestamp(i), Seq: uint64(i + 1)}
		wc, err := wire.FromChange(&c)
		if err != nil {
			tb.Fatal(err)
		}
		p.Changes = append(p.Changes, wc)
		if len(p.Changes) < perPush && i < len(recs)-1 {
			continue
		}
		frame, err := wire.Encode(&p)
		if err != nil {
			tb.Fatal(err)
		}
		m, err := wire.Decode(frame)
		if err != nil {
			tb.Fatal(err)
		}
		var cs []change.Change
		for _, wc := range m.(*wire.Push).Changes {
			c, err := wc.ToChange()
			if err != nil {
				tb.Fatal(err)
			}
			c.SetEncoded(wc.Fields) // as syncserver's convertPush does
			cs = append(cs, c)
		}
		out = append(out, cs)
		p.Changes = nil
	}
	return out
}

// BenchmarkPrepareBatch is the store's part of a backlog's push done in
// the hub's connection reader, beside the SQLite writer (issue #13):
// merging each change into an empty state and encoding the rows.
//
//	go test ./hub/store/sqlite -run '^$' -bench PrepareBatch -benchmem -count 5
func BenchmarkPrepareBatch(b *testing.B) {
	s, _ := openTemp(b)
	batches := backlogPushes(b, 10_000, 1150)
	device := ident.New().String()
	changes := 0
	b.ReportAllocs()
	for b.Loop() {
		changes = 0
		for _, cs := range batches {
			p := s.PrepareBatch(device, "cd88", cs)
			if p == nil {
				b.Fatal("nothing prepared")
			}
			changes += p.PreparedChanges()
			p.(*prepared).release()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*changes), "ns/change")
}
