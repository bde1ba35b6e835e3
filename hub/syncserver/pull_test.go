package syncserver

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/wire"
)

// A pull serves the fields as the store holds them: the bytes on the wire
// are the stored bytes, the reply is byte for byte the one that decoding
// and encoding every change again gave, and each change pulled decodes to
// the fields the hub logged.
func TestPullServesStoredBytes(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t, Options{})
	other := enrollIn(t, h.st, "bus-2", "cd88")
	cs := fillLog(t, h.st, other.ID, 64<<10)
	del := change.Change{Kind: cs[0].Kind, ID: cs[0].ID, Op: change.OpDelete, HLC: cs[len(cs)-1].HLC + 1, Seq: uint64(len(cs) + 1)}
	if _, _, err := h.st.ApplyBatch(ctx, other.ID, []change.Change{del}, 0); err != nil {
		t.Fatal(err)
	}

	ws := h.dial(t)
	send(t, ws, &wire.Pull{})
	typ, frame, err := ws.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage {
		t.Fatalf("reading the reply: %d, %v", typ, err)
	}
	m, err := wire.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := m.(*wire.Changes)
	if !ok {
		t.Fatalf("got %T, want Changes", m)
	}
	stored, next, more, err := h.st.ChangesSince(ctx, "cd88", h.device, 0, h.srv.opt.MaxPull)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Changes) != len(cs)+1 || len(stored) != len(got.Changes) || got.Next != next || got.More != more {
		t.Fatalf("pulled %d changes (next %d), stored page %d (next %d), %d applied", len(got.Changes), got.Next, len(stored), next, len(cs)+1)
	}
	for i, w := range got.Changes {
		want := stored[i].Raw
		if stored[i].Op == change.OpDelete {
			want = nil // an empty map is left out, as FromChange leaves it
		}
		if !bytes.Equal(w.Fields, want) {
			t.Fatalf("change %d: served %x, stored %x", w.HubSeq, w.Fields, stored[i].Raw)
		}
	}

	if err := store.DecodeLogged(stored); err != nil {
		t.Fatal(err)
	}
	old := &wire.Changes{Next: next, More: more, Tag: got.Tag}
	for i := range stored {
		wc, err := wire.FromChange(&stored[i].Change)
		if err != nil {
			t.Fatal(err)
		}
		wc.HubSeq, wc.Device = stored[i].HubSeq, stored[i].Device
		old.Changes = append(old.Changes, wc)
	}
	if b, err := wire.Encode(old); err != nil || !bytes.Equal(b, frame) {
		t.Fatalf("the reply differs from the decoded and encoded again one (%d and %d bytes): %v", len(frame), len(b), err)
	}
	for i := range got.Changes {
		c, err := got.Changes[i].ToChange()
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Fields) != len(stored[i].Fields) || !bytes.Equal(c.Fields.Encode(), stored[i].Fields.Encode()) {
			t.Fatalf("change %d decodes to %v, stored %v", got.Changes[i].HubSeq, c.Fields, stored[i].Fields)
		}
		if len(c.Fields) == 0 && stored[i].Op != change.OpDelete {
			t.Fatalf("change %d pulled without fields", got.Changes[i].HubSeq)
		}
	}
}

// heldSynced holds MarkSynced until released.
type heldSynced struct {
	store.Store
	called  chan struct{}
	release chan struct{}
}

func (s *heldSynced) MarkSynced(ctx context.Context, id string, at time.Time) error {
	close(s.called)
	<-s.release
	return s.Store.MarkSynced(ctx, id, at)
}

// The last page of a round leaves before the hub records the sync: the
// agent's last answer waits for no store write. The sync is still
// recorded, at the page's time.
func TestLastPageWaitsForNoStoreWrite(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t, Options{})
	held := &heldSynced{Store: h.st, called: make(chan struct{}), release: make(chan struct{})}
	hh := *h
	hh.srv = New(held, Options{})
	hh.http = httptest.NewServer(hh.srv)
	defer func() {
		hh.http.Close()
		hh.srv.Shutdown(ctx)
	}()
	released := false
	defer func() {
		if !released {
			close(held.release)
		}
	}()

	ws := hh.dial(t)
	t0 := time.Now()
	send(t, ws, &wire.Pull{})
	ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	if c, ok := recv(t, ws).(*wire.Changes); !ok || c.More {
		t.Fatalf("got %+v, want the last page", c)
	}
	select {
	case <-held.called:
	case <-time.After(5 * time.Second):
		t.Fatal("the sync was never recorded")
	}
	close(held.release)
	released = true
	waitFor(t, func() bool {
		d, err := h.st.Device(ctx, h.device)
		return err == nil && !d.LastSync.Before(t0.Truncate(time.Second))
	})
}
