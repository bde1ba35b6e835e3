package sqlite

import (
	"context"
	"testing"
)

// BenchmarkFactsCatchUp is the facts follower's work for a laptop's
// backlog pushed to the hub: every step over the change log, from the
// records' stored states to the fact rows (issue #13). Each round
// rewinds the facts' cursor and writes them all again.
//
//	go test ./hub/store/sqlite -run '^$' -bench FactsCatchUp -benchmem -count 5
func BenchmarkFactsCatchUp(b *testing.B) {
	ctx := context.Background()
	s, _ := openTemp(b)
	defer s.Close()
	d := enroll(b, s, "bus-a", "cd88")
	changes := 0
	for _, cs := range backlogPushes(b, 10_000, 1150) {
		if _, n, err := s.ApplyBatch(ctx, d.ID, cs, 0); err != nil || n != len(cs) {
			b.Fatalf("applied %d of %d: %v", n, len(cs), err)
		}
		changes += len(cs)
	}
	if err := s.catchUpFacts(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s.factsMu.Lock()
		if _, err := s.w.ExecContext(ctx, `UPDATE facts_meta SET value = 0 WHERE key = 'hseq'`); err != nil {
			b.Fatal(err)
		}
		s.factsAt.Store(0)
		s.factsMu.Unlock()
		b.StartTimer()
		if err := s.catchUpFacts(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*changes), "ns/change")
}
