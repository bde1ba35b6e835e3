package postgres

import (
	"context"
	"testing"
)

// A page's query is limited to the rows of the size lately seen that fill
// it (pageRows), not to the most that could: a page cut by that limit
// before it is full says more remain, and paging on takes every change
// once, in order, whatever the guess — too small (many pages cut by the
// limit) or too large.
func TestPagesCutByTheirLimitGoOn(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	writer := enroll(t, s, "bus-1", "cd88")
	reader := enroll(t, s, "bus-2", "cd88")
	const n = 300
	cs := tourStops(t, 0, n)
	for i := 0; i < n; i += 50 {
		if _, _, err := s.ApplyBatch(ctx, writer, cs[i:i+50], 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, guess := range []int64{1 << 20, 64, 0} {
		s.rowBytes.Store(guess)
		limit := s.pageRows(64 << 10)
		var cursor uint64
		got, pages, cut := 0, 0, 0
		for more := true; more; pages++ {
			if pages > n+2 {
				t.Fatalf("guess %d: no end after %d pages", guess, pages)
			}
			page, next, m, err := s.ChangesSince(ctx, "cd88", reader, cursor, 64<<10)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range page {
				if l.Seq != uint64(got)+1 || l.Device != writer {
					t.Fatalf("guess %d: change %d of %s after %d", guess, l.Seq, l.Device, got)
				}
				got++
			}
			if len(page) == limit {
				cut++
			}
			cursor, more = next, m
			s.rowBytes.Store(guess) // keep the guess under test
			limit = s.pageRows(64 << 10)
		}
		if got != n {
			t.Fatalf("guess %d: pulled %d of %d changes in %d pages", guess, got, n, pages)
		}
		if guess == 1<<20 && cut == 0 {
			t.Errorf("a guess of 1 MiB a row should cut pages by the limit (%d rows)", limit)
		}
	}
}
