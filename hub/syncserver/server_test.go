package syncserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/hub/store"
	"numeribus/hub/store/sqlite"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// testHub is a server on a fresh store with one enrolled device, over
// plain ws (the TLS binding is the e2e tests' business).
type testHub struct {
	st     *sqlite.Store
	srv    *Server
	http   *httptest.Server
	device string
	key    ed25519.PrivateKey
}

func newTestHub(t *testing.T, opt Options) *testHub { return newHubOn(t, opt, false, nil) }

// newTestHubTLS is newTestHub over TLS (httptest's certificate), which
// an Open needs.
func newTestHubTLS(t *testing.T, opt Options) *testHub { return newHubOn(t, opt, true, nil) }

// newHubOn starts a test hub, over TLS or not; wrap, when set, wraps its
// listener.
func newHubOn(t *testing.T, opt Options, overTLS bool, wrap func(net.Listener) net.Listener) *testHub {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	var tok [32]byte
	rand.Read(tok[:])
	now := time.Now()
	if err := st.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: "bus-1", Team: "cd88", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := st.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: pub, PushKey: pub}, now)
	if err != nil {
		t.Fatal(err)
	}
	h := &testHub{st: st, srv: New(st, opt), device: d.ID, key: key}
	h.http = httptest.NewUnstartedServer(h.srv)
	if wrap != nil {
		h.http.Listener = wrap(h.http.Listener)
	}
	if overTLS {
		h.http.StartTLS()
	} else {
		h.http.Start()
	}
	t.Cleanup(func() {
		h.http.Close()
		h.srv.Shutdown(context.Background())
		st.Close()
	})
	return h
}

// dial opens a session and authenticates the device.
func (h *testHub) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	ws := h.dialAs(t, &wire.Hello{Proto: wire.ProtocolVersion, Device: h.device, AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull})
	if _, ok := recv(t, ws).(*wire.Welcome); !ok {
		t.Fatal("no welcome")
	}
	return ws
}

// dialAs connects and authenticates with hello; the Welcome is next.
func (h *testHub) dialAs(t *testing.T, hello *wire.Hello) *websocket.Conn {
	t.Helper()
	// A write buffer for the largest frame: each message goes as one
	// frame, its length in its first bytes.
	d := websocket.Dialer{WriteBufferSize: wire.MaxFrame + 64}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(h.http.URL, "http")+"/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	send(t, ws, hello)
	ch, ok := recv(t, ws).(*wire.Challenge)
	if !ok {
		t.Fatal("no challenge")
	}
	send(t, ws, &wire.Auth{Sig: ed25519.Sign(h.key, wire.AuthMessage(ch.Nonce, nil, h.device, wire.ModeFull))})
	return ws
}

func send(t *testing.T, ws *websocket.Conn, m wire.Message) {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, ws *websocket.Conn) wire.Message {
	t.Helper()
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expectEnd reads what is left: the Error the hub sends, then its close.
func expectEnd(t *testing.T, ws *websocket.Conn) (code string, closeCode int) {
	t.Helper()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return code, ce.Code
			}
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		m, err := wire.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := m.(*wire.Error)
		if !ok {
			t.Fatalf("got %T, want an Error", m)
		}
		code = e.Code
	}
}

// pushes returns n pushes of per new activities each, seqs from 1.
func pushes(t *testing.T, n, per int) []*wire.Push {
	t.Helper()
	set := fixture.Generate(fixture.Options{N: n * per, Seed: 1})
	var out []*wire.Push
	for b := range n {
		p := &wire.Push{Batch: uint64(b + 1)}
		for i := b * per; i < (b+1)*per; i++ {
			a := set.Activities[i]
			f, err := change.Encode(a)
			if err != nil {
				t.Fatal(err)
			}
			c := change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f,
				HLC: hlc.FromTime(a.ID.Time()) + hlc.Timestamp(i), Seq: uint64(i + 1)}
			wc, err := wire.FromChange(&c)
			if err != nil {
				t.Fatal(err)
			}
			p.Changes = append(p.Changes, wc)
		}
		out = append(out, p)
	}
	return out
}

func (h *testHub) hwm(t *testing.T) uint64 {
	t.Helper()
	d, err := h.st.Device(context.Background(), h.device)
	if err != nil {
		t.Fatal(err)
	}
	return d.HWM
}

// Batches sent back to back are applied and acked in order, and a bad
// frame behind them is reported after their acks: nothing read ahead is
// lost or reordered, nothing after the bad frame is applied.
func TestPipelinedPushes(t *testing.T) {
	sealed := func(ws *websocket.Conn, next *wire.Push) {
		next.Changes[2].Fields, next.Changes[2].Sealed, next.Changes[2].KeyID = nil, []byte("sealed"), 7
		next.Keys = map[uint64][]byte{7: make([]byte, wire.KeySize)}
		b, _ := wire.Encode(next)
		ws.WriteMessage(websocket.BinaryMessage, b)
	}
	// An opener that opens to bytes that are no field map.
	badOpen := Options{Open: func(string, map[uint64][]byte, *wire.Change) ([]byte, error) { return []byte{0x01}, nil }}
	bad := map[string]struct {
		opt       Options
		send      func(ws *websocket.Conn, next *wire.Push)
		wantCode  string
		wantClose int
	}{
		"garbage frame": {Options{}, func(ws *websocket.Conn, _ *wire.Push) {
			ws.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00, 0x13})
		}, wire.CodeMalformed, CloseMalformed},
		"text frame": {Options{}, func(ws *websocket.Conn, _ *wire.Push) {
			ws.WriteMessage(websocket.TextMessage, []byte(`{}`))
		}, wire.CodeMalformed, CloseMalformed},
		"sealed without opener":     {Options{}, sealed, wire.CodeMalformed, CloseMalformed},
		"sealed opening to garbage": {badOpen, sealed, wire.CodeMalformed, CloseMalformed},
		"gap": {Options{}, func(ws *websocket.Conn, next *wire.Push) {
			next.Changes = next.Changes[1:]
			b, _ := wire.Encode(next)
			ws.WriteMessage(websocket.BinaryMessage, b)
		}, wire.CodeOutOfOrder, CloseMalformed},
		"oversized frame": {Options{}, func(ws *websocket.Conn, _ *wire.Push) {
			ws.WriteMessage(websocket.BinaryMessage, make([]byte, wire.MaxFrame+1))
		}, "", websocket.CloseMessageTooBig}, // gorilla's close, the Error cannot follow
		"unexpected message": {Options{}, func(ws *websocket.Conn, _ *wire.Push) {
			b, _ := wire.Encode(&wire.Ack{Batch: 1})
			ws.WriteMessage(websocket.BinaryMessage, b)
		}, wire.CodeMalformed, CloseMalformed},
	}
	const n, per = 5, 40
	for name, tt := range bad {
		t.Run(name, func(t *testing.T) {
			h := newTestHub(t, tt.opt)
			ws := h.dial(t)
			ps := pushes(t, n+2, per)
			for _, p := range ps[:n] {
				send(t, ws, p)
			}
			tt.send(ws, ps[n])
			ws.WriteMessage(websocket.BinaryMessage, encoded(t, ps[n+1])) // after the bad frame: never applied
			for i := range n {
				ack, ok := recv(t, ws).(*wire.Ack)
				if !ok || ack.Batch != uint64(i+1) || ack.HWM != uint64((i+1)*per) || ack.Applied != per {
					t.Fatalf("reply %d: %+v, want the ack of batch %d", i, ack, i+1)
				}
			}
			code, cc := expectEnd(t, ws)
			if code != tt.wantCode || cc != tt.wantClose {
				t.Fatalf("ended with %q, close %d; want %q, %d", code, cc, tt.wantCode, tt.wantClose)
			}
			if hwm := h.hwm(t); hwm != n*per {
				t.Fatalf("hwm %d after the bad frame, want %d", hwm, n*per)
			}
		})
	}
}

// A peer closing with batches in flight: those read are applied, in
// order, then the connection ends quietly.
func TestPeerClosesWithBatchesInFlight(t *testing.T) {
	h := newTestHub(t, Options{})
	ws := h.dial(t)
	ps := pushes(t, 4, 30)
	for _, p := range ps {
		send(t, ws, p)
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
	for i := range ps {
		ack, ok := recv(t, ws).(*wire.Ack)
		if !ok || ack.Batch != uint64(i+1) {
			t.Fatalf("reply %d: %+v", i, ack)
		}
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after the acks: %v, want the close echoed", err)
	}
	if hwm := h.hwm(t); hwm != 120 {
		t.Fatalf("hwm %d, want 120", hwm)
	}
}

// Shutdown ends connections, busy or idle, with their readers: no
// goroutine is left behind.
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	h := newTestHub(t, Options{})
	idle := h.dial(t)
	busy := h.dial(t)
	for _, p := range pushes(t, 3, 50) {
		send(t, busy, p)
	}
	done := make(chan struct{})
	go func() {
		h.srv.Shutdown(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	for _, ws := range []*websocket.Conn{idle, busy} {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
					t.Fatalf("connection ended with %v, want going away", err)
				}
				break
			}
		}
		ws.Close()
	}
	h.http.Close()
	h.st.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The reader reuses its frame buffer: what it decoded and converted must
// not share the buffer's memory (wire.Decode copies byte strings and raw
// values).
func TestDecodedFrameOwnsItsBytes(t *testing.T) {
	p := pushes(t, 1, 3)[0]
	b, err := wire.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{s: New(nil, Options{}), device: store.Device{ID: "d"}}
	conv, bad := c.convert(context.Background(), m.(*wire.Push))
	if bad != nil {
		t.Fatal(bad.msg)
	}
	cs := conv.cs
	for i := range b {
		b[i] = 0xee
	}
	if again, err := wire.Encode(m); err != nil || string(again) != string(encoded(t, p)) {
		t.Fatalf("the decoded push changed with the frame's bytes: %v", err)
	}
	for i := range cs {
		want, err := wire.DecodeFields(p.Changes[i].Fields)
		if err != nil {
			t.Fatal(err)
		}
		if cs[i].Seq != p.Changes[i].Seq || cs[i].Device != "d" || string(cs[i].Fields.Encode()) != string(want.Encode()) {
			t.Fatalf("change %d changed with the frame's bytes: %+v", i, cs[i])
		}
	}
}

func encoded(t *testing.T, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
