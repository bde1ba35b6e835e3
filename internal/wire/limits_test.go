package wire

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"numeribus/internal/ident"
)

// Whatever one side encodes, the other side's decoder takes: random pushes
// cut as the agent cuts them (bytes by EncodedSize, count) and random pull
// pages up to the hub's cap (MaxChanges) encode, and every frame that
// encodes decodes to a message that encodes to the same bytes. A message
// over a limit is refused by Encode, naming it, never sent to be refused
// by the peer.
func TestWhatEncodesDecodes(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	device := ident.New().String()
	change := func(i int, pulled bool) Change {
		fields := map[uint64]any{}
		for f := range 1 + r.IntN(6) {
			fields[uint64(2+f)] = strings.Repeat("é", r.IntN(40))
		}
		c := Change{Kind: uint8(1 + r.IntN(5)), ID: ident.New(), Op: 1, HLC: 1<<40 + uint64(i), Seq: uint64(i + 1), Fields: fieldsOf(t, fields)}
		if r.IntN(10) == 0 {
			c.Op, c.Fields = 2, nil // a delete carries no fields
		}
		if pulled {
			c.Device, c.HubSeq = device, uint64(i+1)
		}
		return c
	}
	roundTrip := func(m Message) {
		t.Helper()
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%T): %v", m, err)
		}
		if len(b) > MaxFrame {
			t.Fatalf("%T encoded to %d bytes, over MaxFrame", m, len(b))
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("the peer refuses what %T encoded (%d bytes): %v", m, len(b), err)
		}
		b2, err := Encode(got)
		if err != nil || string(b2) != string(b) {
			t.Fatalf("%T does not round-trip (%v)", m, err)
		}
	}
	for round := range 6 {
		// A push as the agent cuts it: at most 2,000 changes or 256 KiB.
		p := &Push{Batch: uint64(round + 1)}
		size := 0
		for i := 0; len(p.Changes) < 2000; i++ {
			c := change(i, false)
			if size += EncodedSize(&c); size > 256<<10 {
				break
			}
			p.Changes = append(p.Changes, c)
		}
		roundTrip(p)
		// A pull page at the hub's count cap.
		n := MaxChanges
		if round%2 == 1 {
			n = 1 + r.IntN(MaxChanges)
		}
		page := &Changes{Next: uint64(n), More: true, Tag: ChangeTag(1, 2, ident.New(), 1)}
		for i := range n {
			page.Changes = append(page.Changes, change(i, true))
		}
		roundTrip(page)
	}
	over := &Changes{Changes: make([]Change, MaxChanges+1)}
	for i := range over.Changes {
		over.Changes[i] = change(i, true)
	}
	if _, err := Encode(over); err == nil || !strings.Contains(err.Error(), fmt.Sprint(MaxChanges)) {
		t.Fatalf("a page over MaxChanges: %v, want a refusal naming the limit", err)
	}
}
