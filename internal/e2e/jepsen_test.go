package e2e

import (
	"context"
	"path/filepath"
	"testing"
)

// Found by a Jepsen-style convergence test (seed 10539162563525611011): an
// agent restored from a copy renumbers its changes after the hub's mark,
// which leaves its log without the numbers below; when the hub then went
// back too, renumbering "after 0" moved each change by the hub's mark
// instead of packing them after it, and the hub refused every later round
// with out_of_order (a gap after its mark): the agent's work never reached
// anyone again.
func TestBothSidesBackAfterARenumber(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	st := stops(5)
	a.save(t, st[0])
	copyA := filepath.Join(t.TempDir(), "a-copy")
	a.st.Close()
	copyDir(t, a.dir, copyA) // change 1, never sent
	a.reopen(t)
	a.sync(t)
	a.save(t, st[1], st[2])
	a.sync(t) // the hub holds a's changes 1 to 3

	h.stop()
	copyHub := filepath.Join(t.TempDir(), "hub-copy")
	copyDir(t, dir, copyHub)
	h = restartHub(t, dir, a, b)

	a.st.Close()
	copyDir(t, copyA, a.dir)
	a.reopen(t)
	a.save(t, st[3])                           // new work as change 2
	if rep := a.sync(t); rep.Renumbered == 0 { // changes 1, 2 become 4, 5
		t.Fatalf("the restored agent did not renumber: %+v", rep)
	}

	h.stop()
	copyDir(t, copyHub, dir) // the hub goes back to a's mark 3
	h = restartHub(t, dir, a, b)
	a.save(t, st[4])
	for _, ag := range []*testAgent{a, b, a} {
		ag.sync(t)
	}
	sameLines(t, "hub and agent", hubLines(t, h, "cd88"), a.lines(t))
	sameLines(t, "agents", b.lines(t), a.lines(t))
	if n := len(a.lines(t)); n != len(st) {
		t.Fatalf("agent holds %d records, want %d", n, len(st))
	}
	changes, distinct, hwm := hubCount(t, h, a.st.Device())
	last, acked, _ := a.st.Seqs(context.Background())
	if changes != distinct || changes != hwm || uint64(hwm) != last || last != acked {
		t.Fatalf("hub: %d changes (%d distinct), hwm %d; agent last %d acked %d", changes, distinct, hwm, last, acked)
	}
}
