package syncclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/agent/store"
	"numeribus/internal/seal"
	"numeribus/internal/wire"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The hub's keepalive pings count as contact, and are still answered.
func TestPingsCountAsContact(t *testing.T) {
	pings := make(chan struct{})
	pongs := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer ws.Close()
		ws.SetPongHandler(func(d string) error { pongs <- d; return nil })
		go func() {
			for { // read, for the pong handler to run
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for range pings {
			if err := ws.WriteControl(websocket.PingMessage, []byte("ka"), time.Now().Add(time.Second)); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	defer close(pings)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	clk := &fakeClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	c := &Client{Now: clk.Now}
	c.alive.connected(clk.Now())
	c.watchPings(&session{c: c, ws: ws})
	go func() { // the session's reader
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for i := range 3 {
		clk.Add(20 * time.Second)
		pings <- struct{}{}
		select {
		case d := <-pongs:
			if d != "ka" {
				t.Fatalf("pong %q", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("ping not answered")
		}
		if l := c.Liveness(); !l.Connected || !l.LastContact.Equal(clk.Now()) {
			t.Fatalf("after ping %d at %v: %+v", i+1, clk.Now(), l)
		}
	}
	c.alive.disconnected()
	if l := c.Liveness(); l.Connected || !l.LastContact.Equal(clk.Now()) {
		t.Fatalf("after the connection ends: %+v", l)
	}
}

// Each round's contact is kept in memory, and written to the store at
// most every ContactSaveEvery: first by the connection's first round (the
// handshake writes nothing), then a minute later, and so on.
func TestRoundContactSavedAtMostEveryMinute(t *testing.T) {
	ctx := context.Background()
	st, _, err := store.Create(ctx, t.TempDir(), []byte("phrase de passe de test"),
		store.Options{KDF: seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := &fakeClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	c := &Client{Store: st, Now: clk.Now}
	s := &session{c: c, welcome: &wire.Welcome{ClockOffset: 1500}}
	start := clk.Now()
	c.alive.connected(start)
	saved := func() string {
		ss, err := st.SyncState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ss.LastContact
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	want := ""
	for i := 1; i <= 8; i++ { // a round every 30 s
		clk.Add(30 * time.Second)
		if err := c.heardRound(ctx, s); err != nil {
			t.Fatal(err)
		}
		if l := c.Liveness(); !l.LastContact.Equal(clk.Now()) {
			t.Fatalf("round %d: in memory %v, want %v", i, l.LastContact, clk.Now())
		}
		if i%2 == 1 {
			want = rfc(clk.Now())
		}
		if got := saved(); got != want {
			t.Fatalf("round %d (%v after the handshake): stored contact %s, want %s", i, clk.Now().Sub(start), got, want)
		}
	}
}
