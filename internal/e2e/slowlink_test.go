package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"numeribus/agent/syncclient"
	"numeribus/internal/retention"
)

// slowLink forwards loopback TCP connections to a target through a
// simulated link: each direction carries at most rate bytes per second
// (0: unlimited) and delivers every byte delay after it has gone on the
// wire (the one-way propagation delay; the round trip is 2×delay).
//
// The model is a store-and-forward link per direction, shared by every
// connection through the proxy: data read from one side is cut into
// segments of at most segSize bytes (a TCP segment); a segment goes on the
// wire when it has arrived and the link is free, occupies the link for
// len/rate, and is written to the other side delay later. Order is kept
// (delivery times only grow). The TCP handshake's round trip, which the
// kernel completes on loopback before the proxy sees the connection, is
// modelled by not letting a connection's first bytes on the wire before
// one round trip after it was accepted.
//
// With rate 0 and delay 0 the proxy is a plain counting relay (io.Copy),
// cheap enough to sit in a throughput benchmark.
type slowLink struct {
	ln     net.Listener
	target string
	rate   int64         // bytes per second each way; 0: unlimited
	delay  time.Duration // one way

	up, down linkDir // up: client → target; down: target → client

	mu    sync.Mutex
	live  map[net.Conn]struct{}
	conns atomic.Int64
	wg    sync.WaitGroup

	// trace, when NUMERIBUS_LINK_TRACE is set, logs each read carried
	// (when, which way, how many bytes, when it is delivered) and the TLS
	// records it holds: where the bytes of a sync's critical path go.
	trace func(format string, args ...any)
}

// segSize is the most bytes scheduled as one unit (an Ethernet MSS).
const segSize = 1460

// linkDir is one direction of the link.
type linkDir struct {
	mu    sync.Mutex
	free  time.Time // when the link is next free to send
	bytes atomic.Int64
}

// schedule puts n bytes arrived at t on the wire and returns when they
// reach the other side.
func (d *linkDir) schedule(t time.Time, n int, rate int64, delay time.Duration) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := t
	if d.free.After(start) {
		start = d.free
	}
	d.free = start
	if rate > 0 {
		d.free = start.Add(time.Duration(int64(n) * int64(time.Second) / rate))
	}
	return d.free.Add(delay)
}

func startSlowLink(t testing.TB, target string, rate int64, delay time.Duration) *slowLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowLink{ln: ln, target: target, rate: rate, delay: delay, live: map[net.Conn]struct{}{}}
	if os.Getenv("NUMERIBUS_LINK_TRACE") != "" {
		// To stderr: a benchmark's log is cut short.
		p.trace = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *slowLink) addr() string { return p.ln.Addr().String() }

// bytesUp and bytesDown are the TCP payload bytes carried each way.
func (p *slowLink) bytesUp() int64   { return p.up.bytes.Load() }
func (p *slowLink) bytesDown() int64 { return p.down.bytes.Load() }

// close stops accepting, cuts the live connections and waits for the
// proxy's goroutines.
func (p *slowLink) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.live {
		c.Close()
	}
	p.live = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *slowLink) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.live[c] = struct{}{}
	}
	return true
}

func (p *slowLink) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.live, c)
		c.Close()
	}
}

func (p *slowLink) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go p.serve(c, time.Now(), time.Now().Add(2*p.delay))
	}
}

// serve relays one connection; nothing goes on the wire before ready.
func (p *slowLink) serve(c net.Conn, accepted, ready time.Time) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	defer p.untrack(c, up)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(up, c, &p.up, accepted, ready) }()
	go func() { defer wg.Done(); p.pipe(c, up, &p.down, accepted, ready) }()
	wg.Wait()
}

// countingReader counts the bytes read, before they are passed on.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// segment is a piece of data and when it reaches the other side.
type segment struct {
	b  []byte
	at time.Time
}

// pipe carries src to dst through d, then half-closes dst. A failure
// cuts both ends.
func (p *slowLink) pipe(dst, src net.Conn, d *linkDir, accepted, ready time.Time) {
	fail := func() { src.Close(); dst.Close() }
	halfClose := func() {
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}
	if p.rate == 0 && p.delay == 0 {
		_, err := io.Copy(dst, countingReader{src, &d.bytes})
		if err != nil {
			fail()
			return
		}
		halfClose()
		return
	}
	segs := make(chan segment, 1024)
	done := make(chan bool, 1)
	go func() { // writer: delivers each segment at its time
		ok := true
		for s := range segs {
			if !ok {
				continue // drain
			}
			time.Sleep(time.Until(s.at))
			if s.b == nil {
				continue // the end of the stream (FIN): its time has come
			}
			if _, err := dst.Write(s.b); err != nil {
				ok = false
				fail()
			}
		}
		done <- ok
	}()
	buf := make([]byte, 32<<10)
	var recs tlsRecords
	var rerr error
	for {
		n, err := src.Read(buf)
		now := time.Now()
		if now.Before(ready) {
			now = ready
		}
		var last time.Time
		for off := 0; off < n; off += segSize {
			b := append([]byte(nil), buf[off:min(off+segSize, n)]...)
			d.bytes.Add(int64(len(b)))
			last = d.schedule(now, len(b), p.rate, p.delay)
			segs <- segment{b, last}
		}
		if p.trace != nil && n > 0 {
			way := "up  "
			if d == &p.down {
				way = "down"
			}
			p.trace("link %s read at %4d ms: %5d B, delivered at %4d ms; TLS records %s", way,
				time.Since(accepted).Milliseconds(), n, last.Sub(accepted).Milliseconds(), recs.feed(buf[:n]))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			} else {
				segs <- segment{nil, d.schedule(now, 0, p.rate, p.delay)}
			}
			break
		}
	}
	close(segs)
	if ok := <-done; ok {
		if rerr != nil {
			fail()
		} else {
			halfClose()
		}
	}
}

// A sync through the link opens one connection, and only one: the hub's
// retention policy comes with the Welcome (a second TCP and TLS handshake
// to /retention, certificate included, would compete with the sync for a
// slow link's bytes). The agent starts as `agent sync` does, a process
// with nothing in memory, on a store that never read the policy.
func TestSlowLinkSyncOpensOneConnection(t *testing.T) {
	ctx := context.Background()
	h := startHub(t)
	if code, out := h.sub(t, "retention", "set", "--kind", "notes", "--months", "18"); code != 0 {
		t.Fatalf("retention set: %d %s", code, out)
	}
	a := newAgent(t, h, "bus-1", "cd88", nil) // enrolled directly, not through the link
	a.save(t, backlogRecords(t, 10, 5)...)
	link := startSlowLink(t, h.srv.Addr, 0, 60*time.Millisecond) // 120 ms round trip: a slow link
	cl := &syncclient.Client{Store: a.st, Version: "test", URL: "wss://" + link.addr() + "/sync", AnswerTimeout: 10 * time.Second}
	rep, err := cl.Sync(ctx)
	if err != nil {
		t.Fatalf("%v\nhub log:\n%s", err, a.hubLog())
	}
	if !rep.Opened || !rep.Deflated || rep.Pushed != 10 {
		t.Fatalf("%+v: want 10 changes pushed with an Open, compressed", rep)
	}
	if n := link.conns.Load(); n != 1 {
		t.Errorf("the sync opened %d connections through the link, want 1", n)
	}
	p, err := a.st.Retention(ctx)
	if err != nil || p.Months(retention.Notes) != 18 {
		t.Errorf("the agent keeps notes %d months (%v), want the hub's 18", p.Months(retention.Notes), err)
	}
	if at, err := a.st.RetentionReadAt(ctx); err != nil || at.IsZero() {
		t.Errorf("the policy's reading not recorded: %v %v", at, err)
	}
}

// tlsRecords follows the TLS records of one direction of a stream, for
// the link's trace: each as type/length (22 handshake, 20 change cipher
// spec, 23 application data).
type tlsRecords struct {
	hdr  []byte // a record header cut between reads
	left int    // bytes of the current record still to come
}

func (r *tlsRecords) feed(b []byte) string {
	var out []string
	for len(b) > 0 {
		if r.left > 0 {
			k := min(r.left, len(b))
			r.left, b = r.left-k, b[k:]
			continue
		}
		need := 5 - len(r.hdr)
		k := min(need, len(b))
		r.hdr, b = append(r.hdr, b[:k]...), b[k:]
		if len(r.hdr) < 5 {
			break
		}
		r.left = int(r.hdr[3])<<8 | int(r.hdr[4])
		out = append(out, fmt.Sprintf("%d/%d", r.hdr[0], r.left))
		r.hdr = r.hdr[:0]
	}
	return strings.Join(out, " ")
}

// The retention policy comes once: an agent that holds the hub's policy
// says so in its Open (a tag), and the Welcome leaves it out; the agent
// keeps it. When the hub's policy changes, the next
// Welcome carries it again. Every sync opens one connection.
func TestSlowLinkPolicySentOnlyWhenChanged(t *testing.T) {
	ctx := context.Background()
	h := startHub(t)
	if code, out := h.sub(t, "retention", "set", "--kind", "notes", "--months", "18"); code != 0 {
		t.Fatalf("retention set: %d %s", code, out)
	}
	a := newAgent(t, h, "bus-1", "cd88", nil)
	link := startSlowLink(t, h.srv.Addr, 0, 60*time.Millisecond)
	sync := func(what string) syncclient.Report {
		t.Helper()
		conns := link.conns.Load()
		cl := &syncclient.Client{Store: a.st, Version: "test", URL: "wss://" + link.addr() + "/sync", AnswerTimeout: 10 * time.Second}
		rep, err := cl.Sync(ctx)
		if err != nil {
			t.Fatalf("%s: %v\nhub log:\n%s", what, err, a.hubLog())
		}
		if !rep.Opened || link.conns.Load()-conns != 1 {
			t.Fatalf("%s: %+v, %d connections, want one with an Open", what, rep, link.conns.Load()-conns)
		}
		return rep
	}
	months := func() int {
		t.Helper()
		p, err := a.st.Retention(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p.Months(retention.Notes)
	}
	if rep := sync("first sync"); rep.RetentionSame || months() != 18 {
		t.Fatalf("first sync: %+v, notes %d months, want the hub's 18 from the Welcome", rep, months())
	}
	if rep := sync("second sync"); !rep.RetentionSame || months() != 18 {
		t.Fatalf("second sync: %+v, notes %d months, want the policy held, left out of the Welcome", rep, months())
	}
	if code, out := h.sub(t, "retention", "set", "--kind", "notes", "--months", "6"); code != 0 {
		t.Fatalf("retention set: %d %s", code, out)
	}
	if rep := sync("after the change"); rep.RetentionSame || months() != 6 {
		t.Fatalf("after the hub's change: %+v, notes %d months, want the new 6", rep, months())
	}
}
