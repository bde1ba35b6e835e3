package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/agent/syncclient"
	"numeribus/hub/certs"
	"numeribus/internal/change"
	"numeribus/internal/enrollcode"
	"numeribus/internal/ident"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// rawConn opens a websocket to the hub with the pinned certificate.
func rawConn(t *testing.T, h *testHub) (*websocket.Conn, []byte) {
	t.Helper()
	_, fp, err := certs.LoadOrCreate(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{TLSClientConfig: tlspin.PinnedConfig(fp), HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+h.srv.Addr+"/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	return ws, fp
}

// expectRefusal reads until the hub closes, and returns the error code
// it gave (from an Error message or the close reason).
func expectRefusal(t *testing.T, ws *websocket.Conn) (code string, closeCode int) {
	t.Helper()
	for {
		typ, b, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				if code == "" {
					code, _, _ = strings.Cut(ce.Text, ":")
				}
				return code, ce.Code
			}
			return code, 0
		}
		if typ == websocket.BinaryMessage {
			if m, err := wire.Decode(b); err == nil {
				if e, ok := m.(*wire.Error); ok {
					code = e.Code
				}
			}
		}
	}
}

func frame(t *testing.T, m wire.Message) []byte {
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Malformed, truncated, oversized and replayed frames, wrong tokens and
// revoked devices each get a clear refusal, and the hub keeps serving the
// others.
func TestBadInputIsRefusedClearly(t *testing.T) {
	h := startHub(t)
	good := newAgent(t, h, "bus-1", "cd88", nil)
	good.save(t, stops(3)...)

	hello := frame(t, &wire.Hello{Proto: wire.ProtocolVersion, Device: good.st.Device(), AgentVersion: "x", AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull})
	hello2 := frame(t, &wire.Hello{Proto: 2, Device: good.st.Device(), AgentVersion: "x", AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull})
	tests := []struct {
		name      string
		send      func(ws *websocket.Conn, fp []byte)
		wantCode  string
		wantClose int
	}{
		{"garbage", func(ws *websocket.Conn, _ []byte) { ws.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00, 0x13}) }, wire.CodeMalformed, 4400},
		{"truncated", func(ws *websocket.Conn, _ []byte) { ws.WriteMessage(websocket.BinaryMessage, hello[:len(hello)-3]) }, wire.CodeMalformed, 4400},
		{"text frame", func(ws *websocket.Conn, _ []byte) { ws.WriteMessage(websocket.TextMessage, []byte(`{"hello":1}`)) }, wire.CodeMalformed, 4400},
		{"oversized", func(ws *websocket.Conn, _ []byte) {
			ws.WriteMessage(websocket.BinaryMessage, bytes.Repeat([]byte{0}, wire.MaxFrame+10))
		}, "", websocket.CloseMessageTooBig}, // gorilla closes with 1009 itself
		{"old protocol", func(ws *websocket.Conn, _ []byte) {
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Hello{Proto: 99, Device: good.st.Device(), Mode: wire.ModeFull}))
		}, wire.CodeProtocolTooOld, 4426},
		{"unknown device", func(ws *websocket.Conn, _ []byte) {
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Hello{Proto: wire.ProtocolVersion, Device: "01900000-0000-7000-8000-000000000000", Mode: wire.ModeFull}))
			ws.ReadMessage()
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Auth{Sig: make([]byte, 64)}))
		}, wire.CodeUnauthorized, 4401}, // the same answer as a bad signature
		{"unknown device, valid signature by some key", func(ws *websocket.Conn, fp []byte) {
			dev := "01900000-0000-7000-8000-000000000000"
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Hello{Proto: wire.ProtocolVersion, Device: dev, Mode: wire.ModeFull}))
			_, b, _ := ws.ReadMessage()
			m, _ := wire.Decode(b)
			ch, _ := m.(*wire.Challenge)
			var nonce []byte
			if ch != nil {
				nonce = ch.Nonce
			}
			key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Auth{Sig: ed25519.Sign(key, wire.AuthMessage(nonce, fp, dev, wire.ModeFull))}))
		}, wire.CodeUnauthorized, 4401},
		{"replayed signature", func(ws *websocket.Conn, fp []byte) {
			// A signature made for another nonce (captured from an earlier
			// session) does not open this one.
			key, _ := good.st.DeviceKey(context.Background())
			old := ed25519.Sign(key, wire.AuthMessage(make([]byte, 32), fp, good.st.Device(), wire.ModeFull))
			ws.WriteMessage(websocket.BinaryMessage, hello)
			ws.ReadMessage()
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Auth{Sig: old}))
		}, wire.CodeUnauthorized, 4401},
		{"a record that does not decode, protocol 2", func(ws *websocket.Conn, fp []byte) {
			// A duration typed as text, with the next seq, from a device
			// whose key is good: the team must never receive it. An agent
			// of protocol 2 decodes no Ack.Rejected: its batch is refused
			// whole (protocol 3: reject_test.go).
			key, _ := good.st.DeviceKey(context.Background())
			ws.WriteMessage(websocket.BinaryMessage, hello2)
			_, b, _ := ws.ReadMessage()
			m, _ := wire.Decode(b)
			ch, _ := m.(*wire.Challenge)
			if ch == nil {
				t.Fatal("no challenge")
			}
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Auth{Sig: ed25519.Sign(key, wire.AuthMessage(ch.Nonce, fp, good.st.Device(), wire.ModeFull))}))
			_, b, _ = ws.ReadMessage()
			m, _ = wire.Decode(b)
			w, _ := m.(*wire.Welcome)
			if w == nil {
				t.Fatal("no welcome")
			}
			last := w.HWM
			duree, _ := change.Marshal("abc")
			fields, _ := wire.EncodeFields(change.Fields{4: duree})
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Push{Batch: 1, Changes: []wire.Change{
				{Kind: 1, ID: ident.New(), Op: 1, HLC: 1 << 40, Seq: last + 1, Fields: fields}}}))
		}, wire.CodeInvalid, 4400},
		{"push before auth", func(ws *websocket.Conn, _ []byte) {
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Push{Batch: 1}))
		}, wire.CodeMalformed, 4400},
		{"wrong token", func(ws *websocket.Conn, _ []byte) {
			ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Enroll{Proto: wire.ProtocolVersion, Token: bytes.Repeat([]byte{1}, 24),
				Device: "01900000-0000-7000-8000-000000000001", DeviceKey: make([]byte, 32), PushKey: make([]byte, 32)}))
		}, wire.CodeBadToken, 4401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, fp := rawConn(t, h)
			tt.send(ws, fp)
			code, cc := expectRefusal(t, ws)
			if code != tt.wantCode || cc != tt.wantClose {
				t.Fatalf("refusal %q close %d, want %q %d\n%s", code, cc, tt.wantCode, tt.wantClose, good.hubLog())
			}
			// The hub still serves a good agent.
			good.sync(t)
		})
	}

	// A used token is refused the second time.
	code := h.enrollCode(t, "bus-7", "cd88")
	a7 := newAgentWithCode(t, h, "bus-7", code)
	if a7 == nil {
		t.Fatal("first use of the token failed")
	}
	other := newStore(t, "bus-7bis")
	_, err := (&syncclient.Client{Store: other, Insecure: true}).Enroll(context.Background(), code)
	var re *syncclient.RemoteError
	if !errors.As(err, &re) || re.Code != wire.CodeTokenUsed {
		t.Fatalf("reused token: %v", err)
	}
	// An expired code is refused by the hub.
	c, out := h.cli(t, "enroll", "--device", "bus-8", "--team", "cd88", "--expires", "1ms", "--json")
	if c != 0 {
		t.Fatal(out)
	}
	ec, _ := enrollcode.Decode(strings.Split(strings.Split(out, `"code":"`)[1], `"`)[0])
	expired, _ := enrollcode.Encode(ec)
	time.Sleep(5 * time.Millisecond)
	if _, err := (&syncclient.Client{Store: other, Insecure: true}).Enroll(context.Background(), expired); !errors.As(err, &re) || re.Code != wire.CodeTokenExpired {
		t.Fatalf("expired code: %v", err)
	}
}

// revocationBound is how soon after `hub revoke` returns a live
// connection of the device must be cut: a second (the watch looks every
// syncserver.RevocationEvery).
const revocationBound = time.Second

// runLive runs a's sync loop until ctx ends and returns once the loop is
// connected (not after a guessed delay), so that what a test does next
// meets an open connection; the channel gets the loop's end.
func runLive(ctx context.Context, t *testing.T, a *testAgent) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.cl.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); !a.cl.Liveness().Connected; {
		if time.Now().After(deadline) {
			t.Fatalf("the loop of %s did not connect within 10 s", a.name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return done
}

// Revoking a device cuts its live connection within a second and refuses
// it after.
func TestRevokedDevice(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	other := newAgent(t, h, "bus-2", "cd88", nil)
	a.sync(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runLive(ctx, t, a)
	if code, out := h.cli(t, "revoke", "--device", "bus-1"); code != 0 {
		t.Fatalf("revoke: %d %s", code, out)
	}
	revoked := time.Now()
	select {
	case err := <-done:
		var re *syncclient.RemoteError
		if !errors.As(err, &re) || re.Code != wire.CodeRevoked {
			t.Fatalf("live connection ended with %v, want revoked", err)
		}
		if took := time.Since(revoked); took > revocationBound {
			t.Errorf("cut %v after the revocation, want within %v", took, revocationBound)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("revoked device still connected after 10 s")
	}
	if a.cl.Liveness().Connected {
		t.Error("the loop still reports a live connection after the cut")
	}
	_, err := a.cl.Sync(context.Background())
	var re *syncclient.RemoteError
	if !errors.As(err, &re) || re.Code != wire.CodeRevoked || !syncclient.Fatal(err) {
		t.Fatalf("sync after revocation: %v", err)
	}
	other.sync(t) // others unaffected
	if code, out := h.cli(t, "revoke", "--device", "nobody"); code != 5 || !strings.Contains(out, "poste inconnu") {
		t.Fatalf("revoking an unknown device: %d %s", code, out)
	}
}
