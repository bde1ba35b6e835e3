package syncserver

import (
	"testing"
	"time"

	"numeribus/internal/fixture/backlog"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// backlogFrames returns the Push frames of a laptop's backlog of n
// fixture records, as internal/e2e's backlog benchmark makes it (consents
// before persons, one upsert per record), cut in pushes of perPush.
func backlogFrames(tb testing.TB, n, perPush int) [][]byte {
	tb.Helper()
	recs, err := backlog.Records(n, 1)
	if err != nil {
		tb.Fatal(err)
	}
	frames, err := backlog.Frames(recs, perPush)
	if err != nil {
		tb.Fatal(err)
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
