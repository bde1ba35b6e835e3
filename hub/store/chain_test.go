package store

import (
	"bytes"
	"context"
	"testing"

	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// A chained tag depends on every entry before it, and the marks kept
// every chainStep seqs give the same tags as a chain computed from the
// first entry, in any order of questions.
func TestLogChain(t *testing.T) {
	log := make([]LogEntry, 3*chainStep+17)
	for i := range log {
		log[i] = LogEntry{HubSeq: uint64(i + 1), Device: "d", Seq: uint64(i + 1), HLC: 1 << 40, ID: ident.New(), Op: 1}
	}
	scans := 0
	scan := func(_ context.Context, from, to uint64, fn func(LogEntry) error) error {
		scans++
		for _, e := range log {
			if e.HubSeq > from && e.HubSeq <= to {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	want := make([][]byte, len(log)+1)
	want[0] = make([]byte, wire.TagSize)
	for i, e := range log {
		want[i+1] = Chain(want[i], e)
	}
	c := NewLogChain(scan)
	ctx := context.Background()
	for _, h := range []uint64{5, 2 * chainStep, 3*chainStep + 17, 1, chainStep + 3, 3 * chainStep, 2*chainStep + 1} {
		got, err := c.Tag(ctx, h)
		if err != nil || !bytes.Equal(got, want[h]) {
			t.Fatalf("Tag(%d) = %x, %v; want %x", h, got, err, want[h])
		}
	}
	if len(c.marks) != 4 {
		t.Errorf("%d marks kept, want 4 (0 and every %d)", len(c.marks), chainStep)
	}
	if got, _ := c.Tag(ctx, uint64(len(log)+1)); got != nil {
		t.Errorf("a seq beyond the log has a tag: %x", got)
	}
	// The same entry at the same seq after another one before it: another
	// tag.
	log[0].Seq = 99
	other, _ := NewLogChain(scan).Tag(ctx, 7)
	if bytes.Equal(other, want[7]) {
		t.Error("the tag at 7 ignores the entry at 1")
	}
}
