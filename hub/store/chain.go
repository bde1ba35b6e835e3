package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// The tag of a pull cursor covers the hub's log up to it, not only the
// entry at it. A hub restored from a backup and fed again in another
// order can hold, at an agent's cursor, the very change it held before
// (its device sent it again first, and it landed at the same hub seq)
// while an earlier seq now holds a change the agent never saw: a tag of
// the one entry matched, and the agent stepped over that change for good
// (TestRestoredHubRefilledInAnotherOrder). A chain does not match unless
// every entry before it does too.
//
// The chain is not stored: every hub process computes it from its log,
// which only grows while it runs (an erasure rewrites fields, which the
// chain leaves out), keeping the chain at every chainStep-th hub seq, so
// that a cursor's tag costs at most chainStep rows read. A restored
// database is read by a restarted hub, which computes its own.

// LogEntry is what the chain covers of one entry of the hub's log.
type LogEntry struct {
	HubSeq uint64
	Device string
	Seq    uint64
	HLC    uint64
	ID     ident.ID
	Op     uint8
}

// LogScanner calls fn for each entry of the log with from < hub seq <= to,
// in hub order.
type LogScanner func(ctx context.Context, from, to uint64, fn func(LogEntry) error) error

// chainStep is how many hub seqs apart the chain is kept: a cursor's tag
// reads at most that many rows. At 64, ten million log entries keep
// about 6 MB of marks; at 1,024, a thousand agents pulling at once spent
// their time reading and hashing the same rows.
const chainStep = 64

// LogChain computes the chained tags of a log. Safe for concurrent use.
type LogChain struct {
	scan  LogScanner
	mu    sync.Mutex
	marks [][]byte // marks[k]: the chain after every entry with hub seq <= k*chainStep
}

// NewLogChain returns the chain of the log scan reads.
func NewLogChain(scan LogScanner) *LogChain {
	return &LogChain{scan: scan, marks: [][]byte{make([]byte, wire.TagSize)}}
}

// Tag returns the chained tag of the entry with hub seq h, or nil when
// the log holds no entry h. h must be visible to the caller: every entry
// before it is then final (hub seqs are given in commit order).
func (c *LogChain) Tag(ctx context.Context, h uint64) ([]byte, error) {
	if h == 0 || h > 1<<63-1 {
		return nil, nil
	}
	// The scan runs without the lock: pulls of many connections read
	// their tags at the same time; only the marks are shared.
	c.mu.Lock()
	k := min(uint64(len(c.marks)-1), (h-1)/chainStep) // the scan always reads entry h
	chain := c.marks[k]
	c.mu.Unlock()
	found := false
	err := c.scan(ctx, k*chainStep, h, func(e LogEntry) error {
		chain = Chain(chain, e)
		if e.HubSeq%chainStep == 0 {
			c.mark(e.HubSeq, chain)
		}
		found = e.HubSeq == h
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the log up to %d: %w", h, err)
	}
	if !found {
		return nil, nil
	}
	return chain, nil
}

// mark keeps chain as the chain at hub seq h, a multiple of chainStep,
// when it is the next mark.
func (c *LogChain) mark(h uint64, chain []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h/chainStep == uint64(len(c.marks)) {
		c.marks = append(c.marks, chain)
	}
}

// Chain returns the chain after entry e, prev being the chain before it.
func Chain(prev []byte, e LogEntry) []byte {
	t := wire.LogTag(e.HubSeq, e.Device, e.Seq, e.HLC, e.ID, e.Op)
	h := sha256.New()
	h.Write([]byte("numeribus-log-chain-v1\x00"))
	h.Write(prev)
	h.Write(t)
	return h.Sum(nil)[:wire.TagSize]
}

// ScanLog calls fn for each row of (hub seq, device id, seq, HLC, record
// id, op), the columns every backend's LogScanner selects, in order.
func ScanLog(rows Rows, fn func(LogEntry) error) error {
	for rows.Next() {
		var (
			e             LogEntry
			hs, ds, h, op int64
			id            []byte
		)
		if err := rows.Scan(&hs, &e.Device, &ds, &h, &id, &op); err != nil {
			return err
		}
		copy(e.ID[:], id)
		e.HubSeq, e.Seq, e.HLC, e.Op = uint64(hs), uint64(ds), uint64(h), uint8(op)
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
