package syncserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/hub/store"
	"numeribus/hub/store/sqlite"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// deviceReads counts the store's answers about devices: what the
// revocation watch could ask.
type deviceReads struct {
	store.Store
	revoked, device, devices atomic.Int64
}

func (s *deviceReads) RevokedDevices(ctx context.Context) ([]string, error) {
	s.revoked.Add(1)
	return s.Store.RevokedDevices(ctx)
}

func (s *deviceReads) Device(ctx context.Context, id string) (store.Device, error) {
	s.device.Add(1)
	return s.Store.Device(ctx, id)
}

func (s *deviceReads) Devices(ctx context.Context) ([]store.Device, error) {
	s.devices.Add(1)
	return s.Store.Devices(ctx)
}

// agentKey is an enrolled device and its key.
type agentKey struct {
	dev store.Device
	key ed25519.PrivateKey
}

// enrollKeyed enrolls a device named name in team with a fresh key.
func enrollKeyed(t *testing.T, st store.Store, name, team string) agentKey {
	t.Helper()
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	var tok [32]byte
	rand.Read(tok[:])
	now := time.Now()
	if err := st.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := st.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: pub, PushKey: pub}, now)
	if err != nil {
		t.Fatal(err)
	}
	return agentKey{d, key}
}

// dialAs opens an authenticated full session of a on the server at url.
func dialAs(t *testing.T, url string, a agentKey) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	send(t, ws, &wire.Hello{Proto: wire.ProtocolVersion, Device: a.dev.ID, AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull})
	ch, ok := recv(t, ws).(*wire.Challenge)
	if !ok {
		t.Fatal("no challenge")
	}
	send(t, ws, &wire.Auth{Sig: ed25519.Sign(a.key, wire.AuthMessage(ch.Nonce, nil, a.dev.ID, wire.ModeFull))})
	if _, ok := recv(t, ws).(*wire.Welcome); !ok {
		t.Fatal("no welcome")
	}
	return ws
}

// With fifty agents connected, each tick of the revocation watch asks the
// store one question, not one per connection; a revocation cuts the
// revoked devices' connections at the next tick and leaves the others
// open.
func TestRevocationWatchOneQueryPerTick(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := &deviceReads{Store: st}
	srv := New(cs, Options{})
	hs := httptest.NewServer(srv)
	const n = 50
	agents := make([]agentKey, n)
	conns := make([]*websocket.Conn, n)
	t.Cleanup(func() { // the agents leave, their connections end, then the store closes
		for _, ws := range conns {
			if ws != nil {
				ws.Close()
			}
		}
		srv.wg.Wait()
		hs.Close()
		st.Close()
	})
	for i := range agents {
		agents[i] = enrollKeyed(t, st, fmt.Sprintf("bus-%d", i), "cd88")
		conns[i] = dialAs(t, hs.URL, agents[i])
	}

	// ticks runs the watch for k ticks: their work is done when it
	// returns.
	ticks := func(k int) {
		tick := make(chan time.Time)
		done := make(chan struct{})
		go func() {
			srv.watchRevocations(ctx, tick)
			close(done)
		}()
		for range k {
			tick <- time.Now()
		}
		close(tick)
		<-done
	}
	handshakes := cs.device.Load() + cs.devices.Load()
	const k = 10
	ticks(k)
	if got := cs.revoked.Load(); got != k {
		t.Fatalf("%d queries for revoked devices in %d ticks with %d agents connected, want one a tick", got, k, n)
	}
	if got := cs.device.Load() + cs.devices.Load() - handshakes; got != 0 {
		t.Fatalf("%d device reads during the ticks, want none", got)
	}

	cut := []int{7, 31, 49}
	for _, i := range cut {
		if err := st.Revoke(ctx, agents[i].dev.Name, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	ticks(1)
	if got := cs.revoked.Load(); got != k+1 {
		t.Fatalf("%d queries after %d ticks, want one a tick", got, k+1)
	}
	for _, i := range cut {
		if code, cc := expectEnd(t, conns[i]); code != wire.CodeRevoked || cc != CloseRevoked {
			t.Fatalf("revoked bus-%d: ended with %q, close %d; want %q, %d", i, code, cc, wire.CodeRevoked, CloseRevoked)
		}
	}
	for i, ws := range conns { // the others still answer a pull
		if i == cut[0] || i == cut[1] || i == cut[2] {
			continue
		}
		send(t, ws, &wire.Pull{})
		if m, ok := recv(t, ws).(*wire.Changes); !ok {
			t.Fatalf("bus-%d after the revocations: got %T, want Changes", i, m)
		}
	}
}
