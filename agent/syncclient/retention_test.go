package syncclient

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
	"numeribus/internal/seal"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

func TestPolicyURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://hub.example.fr:8443/sync": "https://hub.example.fr:8443/retention",
		"ws://127.0.0.1:9000/sync?x=1#y": "http://127.0.0.1:9000/retention",
		"wss://hub.example.fr/a/b/sync":  "https://hub.example.fr/retention",
	} {
		if got, err := policyURL(in); err != nil || got != want {
			t.Errorf("policyURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := policyURL("https://hub.example.fr/sync"); err == nil {
		t.Error("an https sync address accepted")
	}
}

// The policy is read over TLS pinned to the enrolled certificate: a hub
// with another certificate is not believed.
func TestFetchPolicyPinned(t *testing.T) {
	p, _ := retention.Default().With(retention.Notes, 6)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != retention.Path {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"version":1,"mois":{"notes":6}}`))
	}))
	defer srv.Close()
	target := "wss" + strings.TrimPrefix(srv.URL, "https") + "/sync"
	for _, tc := range []struct {
		name string
		fp   []byte
		ok   bool
	}{{"pinned", tlspin.Fingerprint(srv.Certificate().Raw), true}, {"another certificate", make([]byte, 32), false}} {
		st, _, err := store.Create(context.Background(), t.TempDir(), []byte("phrase"), store.Options{KDF: seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Enroll(context.Background(), store.Hub{URL: target, HubKey: make([]byte, 32), DeviceName: "bus-1", Team: "cd88",
			PushKey: make([]byte, 64), CertFingerprint: tc.fp}, make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
		c := &Client{Store: st}
		c.defaults()
		got, err := c.fetchPolicy(context.Background())
		if tc.ok != (err == nil) || tc.ok && !got.Equal(p) {
			t.Errorf("%s: %+v %v", tc.name, got, err)
		}
	}
}

// Out of coverage, a laptop purges only on a clock it can trust: not
// before it ever reached its hub, not a year past its last contact.
func TestPurgeOfflineTrustsTheClockOnlyNearTheLastContact(t *testing.T) {
	ctx := context.Background()
	old := time.Date(2023, 5, 2, 10, 0, 0, 0, time.UTC)
	wall := old
	st, _, err := store.Create(ctx, t.TempDir(), []byte("phrase"), store.Options{KDF: seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1},
		Wall: func() time.Time { return wall }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := &domain.Beneficiary{ID: ident.FromRand(old, rand.Uint64), Nom: "Oubliée", Genre: "feminin"}
	c := &domain.Consent{ID: ident.FromRand(old, rand.Uint64), Beneficiaire: b.ID, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2023-05-02"}
	if _, err := st.Save(ctx, b, c); err != nil {
		t.Fatal(err)
	}
	identified := func() bool {
		it, err := st.Get(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		return it.Record.(*domain.Beneficiary).Identified()
	}
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	cl := &Client{Store: st, Now: func() time.Time { return now }}
	cl.defaults()
	cl.purgeOffline(ctx)
	if !identified() {
		t.Fatal("purged before the laptop ever reached its hub")
	}
	// Last contact two years before "now": the clock may have jumped.
	if err := st.RecordContact(ctx, now.AddDate(-2, 0, 0), 0); err != nil {
		t.Fatal(err)
	}
	cl.purgeOffline(ctx)
	if !identified() {
		t.Fatal("purged a year past the last contact")
	}
	if err := st.RecordContact(ctx, now.Add(-time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	cl.purgeOffline(ctx)
	if identified() {
		t.Fatal("not purged near the last contact")
	}
}

// The policy comes with the Welcome of a protocol 5 hub, or from
// /retention when the Welcome has none (an older hub): either way the
// agent records it after the round, and asks /retention only in the
// second case — a second connection a slow link cannot afford.
func TestPolicyFromTheWelcomeOrRead(t *testing.T) {
	for _, tc := range []struct {
		name      string
		welcome   map[string]uint32
		wantMonth int // the notes' period recorded
		wantReads int32
	}{
		{"in the welcome", map[string]uint32{"identite": 24, "diagnostics": 24, "notes": 6, "journal": 12}, 6, 0},
		{"a hub that does not give it", nil, 9, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reads atomic.Int32
			hub := newHub(t, wire.Welcome{Team: "cd88", Name: "bus-1", Retention: tc.welcome}, func(h *hubConn) {
				if p, ok := h.read().(*wire.Push); ok {
					h.send(&wire.Ack{Batch: p.Batch, HWM: p.Changes[len(p.Changes)-1].Seq, Applied: uint32(len(p.Changes))})
				}
				h.pull()
			})
			mux := http.NewServeMux()
			mux.Handle("/", hub)
			mux.HandleFunc(retention.Path, func(w http.ResponseWriter, r *http.Request) {
				reads.Add(1)
				w.Write([]byte(`{"version":1,"mois":{"notes":9}}`))
			})
			st, c := agentWith(t, 1, mux)
			if _, err := c.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			p, err := st.Retention(t.Context())
			if err != nil || p.Months(retention.Notes) != tc.wantMonth {
				t.Errorf("notes kept %d months (%v), want %d", p.Months(retention.Notes), err, tc.wantMonth)
			}
			if got := reads.Load(); got != tc.wantReads {
				t.Errorf("/retention read %d times, want %d", got, tc.wantReads)
			}
		})
	}
}

// A period out of its bounds (notes: 1 to 60 months) in the Welcome is never applied: the policy
// held stays.
func TestPolicyFromTheWelcomeOutOfBounds(t *testing.T) {
	hub := newHub(t, wire.Welcome{Team: "cd88", Retention: map[string]uint32{"notes": 61}}, func(h *hubConn) {
		if p, ok := h.read().(*wire.Push); ok {
			h.send(&wire.Ack{Batch: p.Batch, HWM: p.Changes[len(p.Changes)-1].Seq, Applied: uint32(len(p.Changes))})
		}
		h.pull()
	})
	st, c := agentWith(t, 1, hub)
	if _, err := c.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p, _ := st.Retention(t.Context()); !p.Equal(retention.Default()) {
		t.Errorf("a period of 61 months applied: notes %d", p.Months(retention.Notes))
	}
}
