package sqlite

import (
	"testing"

	"numeribus/internal/change"
	"numeribus/internal/fixture/backlog"
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
	recs, err := backlog.Records(n, 1)
	if err != nil {
		tb.Fatal(err)
	}
	frames, err := backlog.Frames(recs, perPush)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]change.Change
	for _, frame := range frames {
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
