// Package importer streams a JSON Lines file (docs/IMPORT.md) into the
// agent's store: lines are decoded on every core and merged, sealed and
// written while the rest of the file is still being read, in a single
// transaction — all or nothing, every bad line reported at once.
package importer

import (
	"context"
	"errors"
	"io"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/jsonl"
)

// Report is what an import did.
type Report struct {
	Read int // records read
	store.Result
}

// errStoreEnded stops the reading when the store has given up.
var errStoreEnded = errors.New("store write ended")

// Import reads r and writes its records to s, which must be unlocked.
// A bad line, or a record refused by the store, writes nothing and is
// returned in a jsonl.Errors naming the lines.
func Import(ctx context.Context, s *store.Store, r io.Reader) (Report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := make(chan []domain.Record, 2)
	var lines []int // line number of each record, in order
	type saved struct {
		res store.Result
		err error
	}
	done := make(chan saved, 1)
	go func() {
		res, err := s.SaveStream(ctx, in)
		done <- saved{res, err}
	}()
	var out saved
	finished := false
	readErr := jsonl.ReadChunks(r, jsonl.DefaultChunk, func(run []jsonl.Line) error {
		recs := make([]domain.Record, len(run))
		for i, l := range run {
			recs[i] = l.Record
			lines = append(lines, l.N)
		}
		select {
		case in <- recs:
			return nil
		case out = <-done: // the store failed (disk full…): stop reading
			finished = true
			return errStoreEnded
		}
	})
	if readErr != nil && !errors.Is(readErr, errStoreEnded) {
		cancel() // before close: the store writes nothing
	}
	close(in)
	if !finished {
		out = <-done
	}
	if readErr != nil && !errors.Is(readErr, errStoreEnded) {
		return Report{}, readErr
	}
	var be *store.BatchError
	if errors.As(out.err, &be) {
		var le jsonl.Errors
		for _, it := range be.Items {
			le = append(le, &jsonl.LineError{Line: lines[it.Index], Err: it.Err})
		}
		return Report{}, le
	}
	if out.err != nil {
		return Report{}, out.err
	}
	return Report{Read: len(lines), Result: out.res}, nil
}
