package e2e

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"numeribus/agent/syncclient"
	hubcli "numeribus/hub/cli"
	"numeribus/internal/benchreport"
	"numeribus/internal/domain"
	"numeribus/internal/wire"
)

// The slow-link phase of BenchmarkSync (issue #13's targets): a vehicle
// at the edge of coverage, 64 kbit/s each way and 600 ms of round trip,
// the TCP handshake's round trip charged (startSlowLink). Three syncs,
// each by a fresh syncclient.Client on the same store, as `agent sync`
// runs one process per sync (nothing of the previous one kept in memory):
//
//   - a day of work (50 records), target ≤ 3.5 s;
//   - a no-op sync, nothing new either way, target ≤ 2.0 s;
//   - a week away (1,000 records), target ≤ 1.1 × (payload ÷ rate + 3
//     round trips).
//
// The payload of a sync is the fewest bytes known to carry its changes:
// the changes as one Push frame, deflated at the best level when that is
// smaller. Nothing of ours is in it (no TLS, websocket or handshake bytes,
// no acks), so the ratios say how far we are from what the link allows.
// Before them, one sync that carries nothing stands for yesterday's: the
// laptop has synced before (its hub's policy, its TLS session ticket).
//
// NUMERIBUS_BENCH_ONLY=slowlink runs this phase alone (about 30 s),
// NUMERIBUS_BENCH_ONLY=backlog the backlog alone:
//
//	NUMERIBUS_BENCH_ONLY=slowlink go test ./internal/e2e -run '^$' -bench '^BenchmarkSync$' -benchtime 1x
//
// With NUMERIBUS_LINK_TRACE=1 the link logs each read it carries (when,
// which way, when delivered, the TLS records in it) and each sync's
// duration, to stderr: where a sync's critical path goes.

// Slow link parameters: 64 kbit/s each way, 600 ms round trip.
const (
	slowRate    = 8000 // bytes per second, each direction
	slowOneWay  = 300 * time.Millisecond
	slowRTT     = 2 * slowOneWay
	slowRecords = 50   // a day of work
	weekRecords = 1000 // a week away
)

// benchOnly reports whether BenchmarkSync runs phase: every phase unless
// NUMERIBUS_BENCH_ONLY names one.
func benchOnly(phase string) bool {
	only := os.Getenv("NUMERIBUS_BENCH_ONLY")
	return only == "" || only == phase
}

// slowSync is what one sync through the link did.
type slowSync struct {
	d         time.Duration
	up, down  int64 // TCP payload bytes each way
	conns     int64 // connections opened through the link
	rep       syncclient.Report
	payload   int // the fewest bytes known to carry its changes
	frame     int // its changes as one Push frame
	jsonBytes int // the same changes as JSON
}

// benchSlowLink measures the three syncs over the slow link.
func benchSlowLink(b *testing.B, res *benchreport.Results) {
	ctx := context.Background()
	h := startHub(b)
	a := newAgent(b, h, "bus-2", "cd88", nil) // enrolled directly, not through the link
	link := startSlowLink(b, h.srv.Addr, slowRate, slowOneWay)
	url := "wss://" + link.addr() + "/sync"
	// One sync, as `agent sync` does: a new client on the store.
	sync := func(what string, records int) slowSync {
		b.Helper()
		_, before, err := a.st.Seqs(ctx)
		if err != nil {
			b.Fatal(err)
		}
		up, down, conns := link.bytesUp(), link.bytesDown(), link.conns.Load()
		cl := &syncclient.Client{Store: a.st, Version: "bench", URL: url, Insecure: true,
			AnswerTimeout: time.Minute, HandshakeTimeout: time.Minute}
		t0 := time.Now()
		rep, err := cl.Sync(ctx)
		if os.Getenv("NUMERIBUS_LINK_TRACE") != "" {
			fmt.Fprintf(os.Stderr, "%s: %v\n", what, time.Since(t0))
		}
		s := slowSync{d: time.Since(t0), up: link.bytesUp() - up, down: link.bytesDown() - down, conns: link.conns.Load() - conns, rep: rep}
		if err != nil {
			b.Fatalf("%s over the slow link: %v\nhub log:\n%s", what, err, a.hubLog())
		}
		if rep.Pushed != uint64(records) || rep.Pulled != 0 || rep.PendingAfter != 0 || !rep.Opened {
			b.Fatalf("%s over the slow link: %+v, want %d pushed with an Open", what, rep, records)
		}
		if s.conns != 1 {
			b.Fatalf("%s: the sync opened %d connections through the link, want 1", what, s.conns)
		}
		// (count(*) of a LEFT JOIN: 1 with no change at all.)
		if c, dd, hwm := hubCount(b, h, a.st.Device()); dd != int(before)+records || hwm != dd || c != max(dd, 1) {
			b.Fatalf("%s: the hub holds %d changes (%d distinct), hwm %d; want %d", what, c, dd, hwm, int(before)+records)
		}
		s.frame, s.payload, s.jsonBytes = slowPayload(b, h, a.st.Device(), before)
		return s
	}
	sync("yesterday's sync", 0)

	recs := backlogRecords(b, slowRecords, benchSeed+1)
	a.save(b, recs...)
	day := sync("a day of work", slowRecords)
	noop := sync("a no-op sync", 0)
	a.save(b, backlogRecords(b, weekRecords, benchSeed+2)...)
	week := sync("a week away", weekRecords)

	rtt := slowRTT.Seconds()
	carry := func(s slowSync) float64 { return float64(s.payload) / slowRate }
	res.Add("slowlink_sync_s", fmt.Sprintf("a day of work (%d records) synced over 64 kbit/s each way, 600 ms RTT", slowRecords), day.d.Seconds(), "s")
	res.AddTarget("slowlink_day_s", "a day of work synced (issue #13: ≤ 3.5 s)", day.d.Seconds(), "s", "<=", 3.5)
	res.Add("slowlink_changes_bytes", "the day's changes as one Push frame", float64(day.frame), "B")
	res.Add("slowlink_payload_bytes", "payload: that frame deflated at the best level, if smaller (the fewest bytes known to carry the changes)", float64(day.payload), "B")
	res.Add("slowlink_bytes_up", "a day of work: bytes carried agent → hub (TCP payload: TLS, websocket, handshake, changes)", float64(day.up), "B")
	res.Add("slowlink_bytes_down", "a day of work: bytes carried hub → agent (TCP payload)", float64(day.down), "B")
	floor, floor3 := carry(day)+rtt, carry(day)+3*rtt
	res.Add("slowlink_floor_s", "physical floor = payload / 8000 B/s + 1 round trip (0.6 s)", floor, "s")
	res.Add("slowlink_floor3_s", "floor of a new connection = payload / 8000 B/s + 3 round trips (TCP, TLS, one exchange)", floor3, "s")
	// No target: three round trips alone are 2.2 × this floor at a day's
	// payload, so no new connection can be within 2 × it.
	res.Add("slowlink_vs_floor", "a day of work / physical floor", day.d.Seconds()/floor, "x")
	res.AddTarget("slowlink_vs_floor3", "a day of work / floor of a new connection (3 round trips)", day.d.Seconds()/floor3, "x", "<=", 1.2)

	res.AddTarget("slowlink_noop_s", "a no-op sync, nothing new either way (issue #13: ≤ 2.0 s)", noop.d.Seconds(), "s", "<=", 2)
	res.Add("slowlink_noop_bytes_up", "a no-op sync: bytes carried agent → hub", float64(noop.up), "B")
	res.Add("slowlink_noop_bytes_down", "a no-op sync: bytes carried hub → agent", float64(noop.down), "B")
	res.Add("slowlink_noop_rtts", "a no-op sync in round trips of 600 ms (3: TCP, TLS, one exchange)", noop.d.Seconds()/rtt, "RTT")

	wfloor, wfloor3 := carry(week)+rtt, carry(week)+3*rtt
	res.Add("slowlink_week_s", fmt.Sprintf("a week away (%d records) synced", weekRecords), week.d.Seconds(), "s")
	res.Add("slowlink_week_payload_bytes", "the week's payload (its changes as one Push frame, deflated at the best level)", float64(week.payload), "B")
	res.Add("slowlink_week_bytes_up", "a week away: bytes carried agent → hub", float64(week.up), "B")
	res.Add("slowlink_week_bytes_down", "a week away: bytes carried hub → agent", float64(week.down), "B")
	res.Add("slowlink_week_floor3_s", "a week's floor of a new connection = payload / 8000 B/s + 3 round trips", wfloor3, "s")
	res.AddTarget("slowlink_week_vs_floor3", "a week away / (payload ÷ rate + 3 round trips) (issue #13: ≤ 1.1)", week.d.Seconds()/wfloor3, "x", "<=", 1.1)
	res.Add("slowlink_week_vs_floor", "a week away / physical floor (payload ÷ rate + 1 round trip)", week.d.Seconds()/wfloor, "x")
	res.AddTarget("slowlink_week_wire_vs_json", "a week away: bytes up / the same changes as JSON (compression included)",
		float64(week.up)/float64(week.jsonBytes), "x", "<=", 0.45)

	kinds := map[domain.Kind]int{}
	for _, r := range recs {
		kinds[r.Kind()]++
	}
	var ks []string
	for _, k := range domain.Kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	over := func(s slowSync) float64 { return (s.d.Seconds() - carry(s)) / rtt }
	res.Note("slow link, a day of work (%s): the payload's carrying time plus %.2f round trips of %v; %d B up (payload %d B), %d B down; TLS resumed %v, compressed %v",
		strings.Join(ks, ", "), over(day), slowRTT, day.up, day.payload, day.down, day.rep.Resumed, day.rep.Deflated)
	res.Note("slow link, a no-op sync: %.2f round trips; %d B up, %d B down", noop.d.Seconds()/rtt, noop.up, noop.down)
	res.Note("slow link, a week away: the payload's carrying time plus %.2f round trips; %d B up (payload %d B), %d B down",
		over(week), week.up, week.payload, week.down)
}

// slowPayload returns, for the changes of device the hub holds after its
// seq after: their size as one Push frame, the fewest bytes known to
// carry them (that frame deflated at the best level in one stream, when
// smaller) and their size as JSON (the same changes: no device).
func slowPayload(tb testing.TB, h *testHub, device string, after uint64) (frame, payload, jsonBytes int) {
	tb.Helper()
	hr := loadHubRows(tb, filepath.Join(h.dir, hubcli.DBFile), device)
	push := &wire.Push{Batch: 1}
	for i := range hr.changes {
		c := &hr.changes[i]
		if c.Seq <= after {
			continue
		}
		wc, err := wire.FromChange(c)
		if err != nil {
			tb.Fatal(err)
		}
		push.Changes = append(push.Changes, wc)
		j, err := changeJSON(c)
		if err != nil {
			tb.Fatal(err)
		}
		jsonBytes += len(j)
	}
	if len(push.Changes) == 0 {
		return 0, 0, 0
	}
	b, err := wire.Encode(push)
	if err != nil {
		tb.Fatal(err)
	}
	return len(b), min(len(b), bestDeflate(tb, b)), jsonBytes
}

// bestDeflate returns the size of b deflated at the best level.
func bestDeflate(tb testing.TB, b []byte) int {
	tb.Helper()
	var z bytes.Buffer
	zw, err := flate.NewWriter(&z, flate.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return z.Len()
}

// The slow-link proxy delays every byte by its one-way delay and carries
// no more than its rate; the counting relay counts exactly.
func TestSlowLinkProxyThrottles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	echo := func(c net.Conn, msg []byte) time.Duration {
		t.Helper()
		got := make([]byte, len(msg))
		t0 := time.Now()
		errc := make(chan error, 1)
		go func() { _, err := c.Write(msg); errc <- err }()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		d := time.Since(t0)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("the echo came back altered or out of order")
		}
		return d
	}

	// Counting relay: no delay, exact counts.
	relay := startSlowLink(t, ln.Addr().String(), 0, 0)
	c, err := net.Dial("tcp", relay.addr())
	if err != nil {
		t.Fatal(err)
	}
	echo(c, bytes.Repeat([]byte("x"), 5000))
	c.Close()
	if relay.bytesUp() != 5000 || relay.bytesDown() != 5000 {
		t.Fatalf("relay counted %d up, %d down; want 5000 each", relay.bytesUp(), relay.bytesDown())
	}

	link := startSlowLink(t, ln.Addr().String(), slowRate, slowOneWay)
	c, err = net.Dial("tcp", link.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first message also waits for the simulated TCP handshake.
	if d := echo(c, []byte("bonjour")); d < slowRTT {
		t.Fatalf("a one-message echo took %v through a link of %v round trip", d, slowRTT)
	}
	// 16,000 bytes take 2 s each way at 8,000 B/s; the echo overlaps the
	// two directions, so it takes 2 s plus a round trip.
	big := make([]byte, 16000)
	rand.Read(big)
	if d := echo(c, big); d < 1900*time.Millisecond+slowRTT {
		t.Fatalf("16,000 bytes echoed in %v through a %d B/s link with %v round trip", d, slowRate, slowRTT)
	}
	if want := int64(16000 + len("bonjour")); link.bytesUp() != want || link.bytesDown() != want {
		t.Fatalf("link counted %d up, %d down; want %d each", link.bytesUp(), link.bytesDown(), want)
	}
}
