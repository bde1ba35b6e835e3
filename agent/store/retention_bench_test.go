package store

import (
	"context"
	"testing"
	"time"

	"numeribus/internal/fixture"
)

// BenchmarkPurge measures a laptop's daily purge over a store of 20,000
// activities (fixture data, 2026): the census decrypts every record, and
// when nothing is due writes only the purge's date. "all due" erases
// every identity, assessment and note of the store, once.
//
//	go test ./agent/store/ -run '^$' -bench Purge -benchtime 3x
func BenchmarkPurge(b *testing.B) {
	ctx := context.Background()
	s, _ := mustCreate(b)
	set := fixture.Generate(fixture.Options{N: 20000, Seed: 1})
	if _, err := s.Save(ctx, set.Records()...); err != nil {
		b.Fatal(err)
	}
	b.Run("nothing due", func(b *testing.B) {
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		for b.Loop() {
			p, err := s.PurgeExpired(ctx, now)
			if err != nil || p.Records != 0 {
				b.Fatalf("%+v %v", p, err)
			}
		}
	})
	b.Run("all due", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			p, err := s.PurgeExpired(ctx, time.Date(2031+i, 1, 1, 0, 0, 0, 0, time.UTC))
			if err != nil || i == 0 && p.Records == 0 {
				b.Fatalf("%+v %v", p, err)
			}
			if i == 0 {
				b.ReportMetric(float64(p.Records), "records-erased")
			}
		}
	})
}
