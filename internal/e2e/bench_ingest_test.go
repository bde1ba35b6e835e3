package e2e

import (
	"compress/flate"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	hubcli "numeribus/hub/cli"
	hubsqlite "numeribus/hub/store/sqlite"
	"numeribus/internal/change"
	"numeribus/internal/enrollcode"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// The hub alone, as a process: `hub serve` in a child process fed the
// backlog's Push frames, encoded before the clock starts, by a sender in
// this process that does nothing else (no store to read, no records to
// encode). The end-to-end figure has the agent process's CPU competing
// with the hub's for the machine's cores; this one leaves them to the
// hub, so that it says what the hub's own path — TLS, websocket, frame
// decoding, the checks, the store — can take.

// measuredHub is the child role of the benchmark's hubs: `hub serve`
// that stops cleanly on SIGTERM (so that a CPU profile is complete) and,
// with NUMERIBUS_BENCH_HUB_CPUPROFILE set by the parent, writes its CPU
// profile there.
const measuredHub = "hub-measured"

// hubProfileEnv names, in the benchmark's environment, the prefix of the
// hubs' CPU profiles: PREFIX-agent.prof for the hub the agent pushes to,
// PREFIX-alone.prof for the hub fed by the light sender. Read them with
// go tool pprof (the test binary is the hub's binary).
const hubProfileEnv = "NUMERIBUS_BENCH_HUB_CPUPROFILE"

func init() {
	if os.Getenv("E2E_CHILD") != measuredHub {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var prof *os.File
	if p := os.Getenv(hubProfileEnv); p != "" {
		var err error
		if prof, err = os.Create(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	args := strings.Split(os.Getenv("E2E_ARGS"), "\x1f")
	code := hubcli.Main(ctx, args, hubcli.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}
	os.Exit(code)
}

// agentProfileEnv names, in the benchmark's environment, where the
// agent process of runAgentSync writes its CPU profile (the test binary
// is the agent's binary): its CPU per change competes with the hub's for
// the two cores, so where it goes is where the hub can win time.
const agentProfileEnv = "NUMERIBUS_BENCH_AGENT_CPUPROFILE"

// startAgentProfile starts the agent child's CPU profile when the
// benchmark asked for one, and returns what stops it (a no-op otherwise).
func startAgentProfile() (stop func()) {
	p := os.Getenv(agentProfileEnv)
	if p == "" {
		return func() {}
	}
	f, err := os.Create(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// hubProfilePath returns where the hub named name writes its CPU
// profile, or "" when the benchmark was not asked for one.
func hubProfilePath(name string) string {
	p := os.Getenv(hubProfileEnv)
	if p == "" {
		return ""
	}
	return p + "-" + name + ".prof"
}

// hubAlone is what feeding a hub child the backlog's frames measured.
type hubAlone struct {
	wall time.Duration // from the first frame written to the last ack read
	cpu  time.Duration // the hub process's user + system time over wall
}

// benchHubAlone starts a fresh hub child, enrolls device in team
// through the protocol with a key of its own, and pushes it frames (the
// changes of hr cut as batches says, encoded beforehand) with the
// agent's window of batches in flight. It checks every change was
// applied, exactly once.
func benchHubAlone(b *testing.B, hr *hubRows, batches []int, device, team string, window int) hubAlone {
	ctx := context.Background()
	dir := b.TempDir()
	hp := startHubChild(b, dir, "alone")
	defer hp.kill()
	h := &testHub{t: b, dir: dir}
	code, out := h.cli(b, "enroll", "--device", "bus-alone", "--team", team, "--url", "wss://"+hp.addr+"/sync", "--json")
	if code != 0 {
		b.Fatalf("hub enroll: %d %s", code, out)
	}
	var v struct{ Code string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		b.Fatalf("enroll output %q: %v", out, err)
	}
	ec, err := enrollcode.Decode(v.Code)
	if err != nil {
		b.Fatal(err)
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pushPub, _, _ := ed25519.GenerateKey(rand.Reader)
	s := dialBench(b, ctx, hp.addr)
	s.send(b, &wire.Enroll{Proto: wire.ProtocolVersion, Token: ec.Token, Device: device, DeviceKey: pub, PushKey: pushPub, AgentVersion: "bench"})
	if _, ok := s.read(b).(*wire.Enrolled); !ok {
		b.Fatal("enrollment: no Enrolled answer")
	}
	s.ws.Close()

	frames := pushFrames(b, hr, batches) // before the clock starts

	s = dialBench(b, ctx, hp.addr)
	defer s.ws.Close()
	s.send(b, &wire.Hello{Proto: wire.ProtocolVersion, AgentVersion: "bench", Device: device, AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull})
	ch, ok := s.read(b).(*wire.Challenge)
	if !ok {
		b.Fatal("no challenge")
	}
	s.send(b, &wire.Auth{Sig: ed25519.Sign(key, wire.AuthMessage(ch.Nonce, s.fp, device, wire.ModeFull))})
	if w, ok := s.read(b).(*wire.Welcome); !ok || w.HWM != 0 {
		b.Fatalf("no welcome from a fresh hub: %+v", w)
	}

	// The acks, read as they come; each frees a place in the window.
	acks := make(chan *wire.Ack, len(frames))
	errc := make(chan error, 1)
	go func() {
		for range frames {
			_, msg, err := s.ws.ReadMessage()
			if err == nil {
				var m wire.Message
				if m, err = wire.Decode(msg); err == nil {
					a, ok := m.(*wire.Ack)
					if !ok {
						err = fmt.Errorf("hub sent %v instead of an ack", m.Type())
					} else {
						acks <- a
						continue
					}
				}
			}
			errc <- err
			return
		}
	}()
	cpu0, err := procCPU(hp.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	var last *wire.Ack
	sent, acked := 0, 0
	for acked < len(frames) {
		for sent < len(frames) && sent-acked < window {
			if err := s.ws.WriteMessage(websocket.BinaryMessage, frames[sent]); err != nil {
				b.Fatalf("sending batch %d: %v", sent+1, err)
			}
			sent++
		}
		select {
		case last = <-acks:
			acked++
			if last.Batch != uint64(acked) || len(last.Rejected) != 0 {
				b.Fatalf("ack %d: %+v", acked, last)
			}
		case err := <-errc:
			b.Fatalf("reading acks: %v\nhub log:\n%s", err, hp.logs.String())
		}
	}
	res := hubAlone{wall: time.Since(t0)}
	cpu, err := procCPU(hp.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	res.cpu = cpu - cpu0
	s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	n := len(hr.changes)
	if last.HWM != uint64(n) {
		b.Fatalf("last ack's mark %d, want %d", last.HWM, n)
	}
	hp.stop(b)
	if c, d, hwm := hubCount(b, h, device); c != n || d != n || hwm != n {
		b.Fatalf("hub fed alone holds %d changes (%d distinct), hwm %d; want exactly %d", c, d, hwm, n)
	}
	return res
}

// pushFrames returns the Push frames of hr's changes cut as batches says,
// encoded and deflated as the agent deflates its pushes on a fast link
// (agent/syncclient: flate.BestSpeed), so that the hub inflates what it
// inflates in the field.
func pushFrames(b *testing.B, hr *hubRows, batches []int) [][]byte {
	frames := make([][]byte, 0, len(batches))
	i := 0
	for no, k := range batches {
		p := &wire.Push{Batch: uint64(no + 1)}
		for j := range hr.changes[i : i+k] {
			wc, err := wire.FromChange(&hr.changes[i+j])
			if err != nil {
				b.Fatal(err)
			}
			p.Changes = append(p.Changes, wc)
		}
		f, err := wire.Encode(p)
		if err != nil {
			b.Fatal(err)
		}
		if f, err = wire.DeflateAt(f, flate.BestSpeed); err != nil {
			b.Fatal(err)
		}
		frames = append(frames, f)
		i += k
	}
	return frames
}

// readLike does with frame what a hub connection's reader does with a
// Push beside the writer (hub/syncserver: nextFrame, convertPush,
// Preparer): inflate and decode it, decode and check every change's
// record, prepare the batch. The consent look-up and TLS are left out:
// it is a floor of the reader's work, to see what that work alone, on
// the other core, costs the writer (benchApplyBatch).
func readLike(st *hubsqlite.Store, device, team string, frame []byte) error {
	m, err := wire.Decode(frame)
	if err != nil {
		return err
	}
	p, ok := m.(*wire.Push)
	if !ok {
		return fmt.Errorf("frame holds a %v", m.Type())
	}
	cs := make([]change.Change, 0, len(p.Changes))
	for i := range p.Changes {
		c, err := p.Changes[i].ToChange()
		if err != nil {
			return err
		}
		c.Device = device
		c.SetEncoded(p.Changes[i].Fields)
		if _, err := c.Check(); err != nil {
			return err
		}
		cs = append(cs, c)
	}
	if st.PrepareBatch(device, team, cs) == nil {
		return errors.New("batch not prepared")
	}
	return nil
}

// benchConn is the light sender's websocket, with the fingerprint of the
// certificate its TLS handshake showed (what an Auth signs over).
type benchConn struct {
	ws *websocket.Conn
	fp []byte
}

func dialBench(b *testing.B, ctx context.Context, addr string) *benchConn {
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // loopback; the hub checks the fingerprint signed
	ws, resp, err := d.DialContext(ctx, "wss://"+addr+"/sync", http.Header{})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		b.Fatalf("dialing the hub: %v", err)
	}
	tc, ok := ws.UnderlyingConn().(*tls.Conn)
	if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
		b.Fatal("no TLS certificate from the hub")
	}
	return &benchConn{ws: ws, fp: tlspin.Fingerprint(tc.ConnectionState().PeerCertificates[0].Raw)}
}

func (c *benchConn) send(b *testing.B, m wire.Message) {
	f, err := wire.Encode(m)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, f); err != nil {
		b.Fatalf("sending %v: %v", m.Type(), err)
	}
}

func (c *benchConn) read(b *testing.B) wire.Message {
	c.ws.SetReadDeadline(time.Now().Add(time.Minute))
	defer c.ws.SetReadDeadline(time.Time{})
	_, f, err := c.ws.ReadMessage()
	if err != nil {
		b.Fatalf("reading from the hub: %v", err)
	}
	m, err := wire.Decode(f)
	if err != nil {
		b.Fatal(err)
	}
	if e, ok := m.(*wire.Error); ok {
		b.Fatalf("hub: %s: %s", e.Code, e.Message)
	}
	return m
}

// stop ends the hub child with SIGTERM, as systemd does, so that it
// finishes its profile; it is killed if it has not ended within a minute.
func (p *benchHub) stop(tb testing.TB) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Logf("hub child stopped: %v", err)
		}
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}
