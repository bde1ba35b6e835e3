package e2e

import (
	"context"
	hubcli "numeribus/hub/cli"
	"numeribus/internal/wire"
	"path/filepath"
	"testing"
	"time"
)

// A sync waits for three round trips — TCP, TLS, one exchange — whether
// there is a day of work to send or nothing at all (protocol 5: the Open
// in the upgrade request, the batches and the pull right behind it). The
// link delays each byte by a fixed one-way time and nothing else, so the
// time a sync takes counts the round trips it waits for; the margin
// covers the work on both sides, far from the next round trip.
func TestSyncInThreeRoundTrips(t *testing.T) {
	ctx := context.Background()
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil) // enrolled directly, not through the link
	const oneWay = 700 * time.Millisecond
	rtt := 2 * oneWay
	link := startSlowLink(t, h.srv.Addr, 0, oneWay)
	a.cl.URL = "wss://" + link.addr() + "/sync"
	for _, c := range []struct {
		name    string
		records int
	}{{"a day of work", 50}, {"nothing new", 0}} {
		if c.records > 0 {
			a.save(t, backlogRecords(t, c.records, 7)...)
		}
		t0 := time.Now()
		rep, err := a.cl.Sync(ctx)
		d := time.Since(t0)
		if err != nil {
			t.Fatalf("%s: %v\nhub log:\n%s", c.name, err, a.hubLog())
		}
		if rep.Pushed != uint64(c.records) || !rep.Opened || !rep.EarlyTaken {
			t.Fatalf("%s: %+v, want %d pushed in an Open's early frames", c.name, rep, c.records)
		}
		if n, _, hwm := hubCount(t, h, a.st.Device()); n != 50 || hwm != 50 {
			t.Fatalf("%s: the hub holds %d changes, mark %d; want 50", c.name, n, hwm)
		}
		rts := d.Seconds() / rtt.Seconds()
		t.Logf("%s: %v, %.2f round trips", c.name, d, rts)
		if rts < 3 || rts > 3.7 {
			t.Errorf("%s: the sync took %v, %.2f round trips of %v; want 3", c.name, d, rts, rtt)
		}
		if !rep.Deflated {
			t.Errorf("%s: frames not compressed over a link of %v round trips", c.name, rtt)
		}
		if c.records == 0 && !rep.Resumed {
			t.Errorf("%s: the second sync did not resume its TLS session", c.name)
		}
	}
}

// On loopback the agent deflates its pushes at the fastest level (the
// bytes it saves cost the hub less to inflate than to read), but asks
// for no compressed pages: a burst's pulls would cost the hub more CPU
// than they save.
func TestFastLinkCompressesPushesNotPages(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	a.save(t, backlogRecords(t, 200, 3)...)
	rep, err := a.cl.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deflated || !rep.Opened {
		t.Fatalf("%+v: want an Open, and no compressed pages on loopback", rep)
	}
	hr := loadHubRows(t, filepath.Join(h.dir, hubcli.DBFile), a.st.Device())
	push := &wire.Push{Batch: 1}
	for i := range hr.changes {
		wc, err := wire.FromChange(&hr.changes[i])
		if err != nil {
			t.Fatal(err)
		}
		push.Changes = append(push.Changes, wc)
	}
	frame, err := wire.Encode(push)
	if err != nil {
		t.Fatal(err)
	}
	if len(hr.changes) != 200 || float64(hr.bytesReceived) > 0.6*float64(len(frame)) {
		t.Fatalf("the hub received %d bytes for %d changes whose Push frame is %d bytes: pushes not compressed",
			hr.bytesReceived, len(hr.changes), len(frame))
	}
}
