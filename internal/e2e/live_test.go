package e2e

import (
	"context"
	"testing"
	"time"
)

// While online, `agent serve` keeps the connection open: a record saved
// reaches the hub within seconds, and a record of a team mate arrives by
// the periodic pull or the next round.
func TestLiveLoopPushesWithinSeconds(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.cl.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	time.Sleep(200 * time.Millisecond) // first round done, connection idle
	for i, s := range stops(3) {
		start := time.Now()
		a.save(t, s)
		for {
			if _, _, hwm := hubCount(t, h, a.st.Device()); hwm == i+1 {
				t.Logf("record %d at the hub after %v", i+1, time.Since(start).Round(time.Millisecond))
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("record %d not at the hub after 5 s", i+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ss, _ := a.st.SyncState(context.Background())
	if ss.LastSync == "" || ss.LastError != "" {
		t.Fatalf("sync state after live rounds: %+v", ss)
	}
}
