package syncserver

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

// backlogFrames returns the Push frames of a laptop's backlog of n
// fixture records, as internal/e2e's backlog benchmark makes it (consents
// before persons, one upsert per record), cut in pushes of perPush.
func backlogFrames(tb testing.TB, n, perPush int) [][]byte {
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
	var frames [][]byte
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
		if len(p.Changes) == perPush || i == len(recs)-1 {
			b, err := wire.Encode(&p)
			if err != nil {
				tb.Fatal(err)
			}
			frames = append(frames, b)
			p.Changes = nil
		}
	}
	return frames
}

// BenchmarkIntake is what the hub's connection reader does with a
// backlog's Push frames before the store prepares them: decode each frame
// and convert its changes (checks, consent facts, grants). The hub's
// ingest is bounded by its one SQLite writer; this work runs on the other
// core and must fit beside it (issue #13).
//
//	go test ./hub/syncserver -run '^$' -bench Intake -benchmem -count 5
func BenchmarkIntake(b *testing.B) {
	frames := backlogFrames(b, 10_000, 1150)
	device := ident.New().String()
	now := time.Now()
	changes := 0
	b.ReportAllocs()
	for b.Loop() {
		changes = 0
		for _, fr := range frames {
			m, err := wire.Decode(fr)
			if err != nil {
				b.Fatal(err)
			}
			pb, bad := convertPush(nil, device, 5, m.(*wire.Push), now)
			if bad != nil || len(pb.rejected) > 0 {
				b.Fatalf("refused: %v %v", bad, pb.rejected)
			}
			changes += len(pb.cs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*changes), "ns/change")
}
