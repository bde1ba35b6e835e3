package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/hub/syncserver"
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
	waitLive(t, a, true)
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

// "Synchroniser maintenant" while the loop is live syncs on the loop's
// open connection — the team's news arrive at once, not at the next
// 30-second pull — and opens no second session with the hub. With the hub
// out of reach it answers at once instead of waiting out the backoff.
func TestSyncNowGoesThroughTheLoop(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.cl.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	connected := func() int { return strings.Count(h.logs.String(), "device connected") }
	deadline := time.Now().Add(5 * time.Second)
	for connected() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if connected() != 1 {
		t.Fatalf("loop not connected: hub log:\n%s", h.logs.String())
	}
	waitLive(t, a, true)

	b.save(t, stops(2)...)
	b.sync(t)
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs { // a mediator clicking three times
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = a.cl.SyncNow(wctx) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("SyncNow: %v", err)
		}
	}
	sameLines(t, "after SyncNow", a.lines(t), b.lines(t))
	if n := connected(); n != 2 { // bus-1's loop and bus-2's one sync
		t.Fatalf("%d sessions opened, want 2 (no second session for bus-1):\n%s", n, h.logs.String())
	}

	// Hub gone: the loop is in backoff; SyncNow answers at once.
	h.stop()
	waitLive(t, a, false)
	start := time.Now()
	if err := a.cl.SyncNow(wctx); err == nil {
		t.Fatal("SyncNow with the hub stopped: no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("SyncNow took %v with the hub stopped", d)
	}
}

// While the loop holds its connection open, the agent is online and its
// last contact follows every round — in memory for the UI's header, in
// the store at most once a minute for `agent status` — not the handshake
// alone; when the loop stops, it is offline.
func TestLiveLoopKeepsContact(t *testing.T) {
	h := startHub(t)
	var mu sync.Mutex
	skip := time.Duration(0)
	wall := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skip) }
	later := func(d time.Duration) { mu.Lock(); skip += d; mu.Unlock() }
	a := newAgent(t, h, "bus-1", "cd88", wall)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.cl.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !a.cl.Liveness().Connected {
		if time.Now().After(deadline) {
			t.Fatalf("loop not connected: hub log:\n%s", h.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Three minutes on the open connection: each round is a contact.
	later(3 * time.Minute)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := a.cl.SyncNow(sctx); err != nil {
		t.Fatal(err)
	}
	l := a.cl.Liveness()
	if now := wall(); !l.Connected || now.Sub(l.LastContact) > 5*time.Second || l.LastContact.After(now) {
		t.Fatalf("3 min into the connection: %+v, now %v", l, now)
	}
	ss, err := a.st.SyncState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ss.LastContact, l.LastContact.UTC().Format(time.RFC3339); got != want {
		t.Fatalf("stored last contact %s, want the round's %s", got, want)
	}
	cancel()
	<-done
	done <- nil // for the deferred wait
	if l := a.cl.Liveness(); l.Connected {
		t.Fatalf("loop stopped, still connected: %+v", l)
	}
}

// waitLive waits, at most 10 s, until the agent's loop reports its
// connection open and its first round done (up), or closed (!up): events,
// not guessed delays.
func waitLive(t *testing.T, a *testAgent, up bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		l := a.cl.Liveness()
		if l.Connected == up && (!up || !l.LastContact.IsZero()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the loop did not get to connected=%v within 10 s: %+v", up, l)
		}
	}
}

// An agent's loop holds one connection open for hours. The hub's last
// seen follows the connection's keepalive pongs and its rounds, and its
// last sync the rounds, instead of staying at the handshake: the devices
// page and `hub devices` show a live device as such. The hub's clock
// jumps three minutes ahead; the periods are shortened to milliseconds.
func TestHubSeesALiveConnection(t *testing.T) {
	t.Run("pongs", func(t *testing.T) {
		// Keepalive every 250 ms (dropped after 750 ms without a pong), no
		// round: only pongs can move last seen.
		h, a, clk := liveOnTunedHub(t, 250*time.Millisecond)
		t0 := hubDevice(t, h, a.name).LastSeen
		clk.later(3 * time.Minute)
		waitHubDevice(t, h, a.name, func(d hubDeviceRow) bool { return !d.LastSeen.Before(t0.Add(3 * time.Minute)) })
		sameConnection(t, h, a)
	})
	t.Run("rounds", func(t *testing.T) {
		// No keepalive within the test: a round moves last seen and sync.
		h, a, clk := liveOnTunedHub(t, time.Hour)
		t0 := hubDevice(t, h, a.name)
		clk.later(3 * time.Minute)
		a.save(t, stops(1)...) // the loop pushes and pulls on its open connection
		waitHubDevice(t, h, a.name, func(d hubDeviceRow) bool {
			return !d.LastSeen.Before(t0.LastSeen.Add(3*time.Minute)) && !d.LastSync.Before(t0.LastSync.Add(3*time.Minute))
		})
		sameConnection(t, h, a)
	})
}

// hubClock is a hub clock the test moves ahead.
type hubClock struct {
	mu   sync.Mutex
	skip time.Duration
}

func (c *hubClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.skip) }

func (c *hubClock) later(d time.Duration) { c.mu.Lock(); c.skip += d; c.mu.Unlock() }

// liveOnTunedHub starts a hub on clk with keepalive pings every ping and
// contacts written every 20 ms, and an agent's loop connected to it,
// its first round done.
func liveOnTunedHub(t *testing.T, ping time.Duration) (*testHub, *testAgent, *hubClock) {
	t.Helper()
	clk := &hubClock{}
	h := startHubTuned(t, t.TempDir(), func(o *syncserver.Options) {
		o.Now, o.PingEvery, o.ContactEvery = clk.now, ping, 20*time.Millisecond
	})
	a := newAgent(t, h, "bus-1", "cd88", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.cl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitLive(t, a, true)
	return h, a, clk
}

// hubDeviceRow is a line of `hub devices --json`.
type hubDeviceRow struct {
	Name               string
	LastSeen, LastSync time.Time
}

// hubDevice returns what `hub devices --json` says of the device name.
func hubDevice(t *testing.T, h *testHub, name string) hubDeviceRow {
	t.Helper()
	code, out := h.cli(t, "devices", "--json")
	if code != 0 {
		t.Fatalf("hub devices: exit %d: %s", code, out)
	}
	var rows []hubDeviceRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("hub devices --json: %v: %s", err, out)
	}
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("hub devices lists no %s: %s", name, out)
	return hubDeviceRow{}
}

// waitHubDevice waits, at most 10 s, until `hub devices` shows the device
// as ok wants it.
func waitHubDevice(t *testing.T, h *testHub, name string, ok func(hubDeviceRow) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d := hubDevice(t, h, name)
		if ok(d) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, hub devices shows %+v\nhub log:\n%s", d, h.logs.String())
		}
	}
}

// sameConnection checks that the agent's loop is still on its first
// connection: what moved the hub's bookkeeping was that connection.
func sameConnection(t *testing.T, h *testHub, a *testAgent) {
	t.Helper()
	if n := strings.Count(h.logs.String(), "device connected"); n != 1 || !a.cl.Liveness().Connected {
		t.Fatalf("%d connections, loop %+v: want the first one still open\nhub log:\n%s", n, a.cl.Liveness(), h.logs.String())
	}
}
