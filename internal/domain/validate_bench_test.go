package domain_test

import (
	"testing"

	"numeribus/internal/fixture"
)

// BenchmarkValidate validates fixture records of every kind, as the hub
// does for each pushed change (change.Check) in the connection's reader,
// beside its one SQLite writer (issue #13).
//
//	go test ./internal/domain -run '^$' -bench Validate -benchmem -count 5
func BenchmarkValidate(b *testing.B) {
	recs := fixture.Generate(fixture.Options{N: 200, Seed: 3}).Records()
	for _, r := range recs {
		r.Normalize()
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range recs {
			_ = r.Validate(nil)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
