package syncclient

import (
	"sync/atomic"
	"testing"
	"time"

	"numeribus/internal/wire"
)

// A hub older than protocol 5 does not read the Open: the agent sees it
// from the upgrade's answer, opens with a Hello on a new connection,
// syncs, and keeps to Hello with that hub.
func TestAgentFallsBackToHelloWithAnOlderHub(t *testing.T) {
	var sessions atomic.Int32
	hub := newHub(t, wire.Welcome{Team: "cd88", Name: "bus-1"}, func(h *hubConn) {
		sessions.Add(1)
		p, ok := h.read().(*wire.Push)
		if !ok {
			t.Error("hub: a push was expected")
			return
		}
		h.send(&wire.Ack{Batch: p.Batch, HWM: p.Changes[len(p.Changes)-1].Seq, Applied: uint32(len(p.Changes))})
		h.pull()
	})
	// The scripted hub upgrades with plain gorilla/websocket, as hubs of
	// protocol 4 did: it refuses the request's early frames, or waits
	// for a Hello.
	st, c := agentOn(t, 3, hub, true)
	c.Insecure = false
	rep, err := c.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pushed != 3 || acked(t, st) != 3 {
		t.Fatalf("pushed %d, acked %d, want 3", rep.Pushed, acked(t, st))
	}
	if c.hello.Load() == 0 {
		t.Fatal("the client does not remember that this hub wants a Hello")
	}
	if c.opens("wss://hub.example/sync") {
		t.Fatal("still opening with an Open")
	}
	// A cut before the upgrade's answer looks the same: an hour later,
	// the client tries an Open again.
	later := time.Now().Add(helloFor)
	c.Now = func() time.Time { return later }
	if !c.opens("wss://hub.example/sync") {
		t.Fatal("an hour later, still on Hello")
	}
}
