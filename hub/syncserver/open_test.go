package syncserver

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
	"numeribus/internal/wire"
	"numeribus/internal/wsearly"
)

// openDial opens a TLS session to h, signs o over its exporter, and
// sends the upgrade request with o and the frames of early behind it, in
// one write. signed, when not nil, is sent instead of the signed o.
func (h *testHub) openDial(t *testing.T, o wire.Open, early []wire.Message, signed []byte) *websocket.Conn {
	t.Helper()
	addr := strings.TrimPrefix(h.http.URL, "https://")
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	if signed == nil {
		signed = h.sign(t, tc, o)
	}
	frames := [][]byte{signed}
	for _, m := range early {
		b, err := wire.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b)
	}
	d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) {
		return &wsearly.Conn{Conn: tc, Early: frames}, nil
	}}
	ws, resp, err := d.Dial("ws://"+addr+"/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get(wire.OpenHeader) == "" {
		t.Fatalf("the upgrade's answer does not say the hub reads an Open")
	}
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	return ws
}

// sign returns the frame of o signed for the TLS session of tc.
func (h *testHub) sign(t *testing.T, tc *tls.Conn, o wire.Open) []byte {
	t.Helper()
	cs := tc.ConnectionState()
	exp, err := cs.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterSize)
	if err != nil {
		t.Fatal(err)
	}
	o.Sig = nil
	msg, err := wire.OpenMessage(exp, &o)
	if err != nil {
		t.Fatal(err)
	}
	o.Sig = ed25519.Sign(h.key, msg)
	b, err := wire.Encode(&o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *testHub) open(early int) wire.Open {
	return wire.Open{Proto: wire.ProtocolVersion, Device: wire.DeviceBytes(h.device), Mode: wire.ModeFull,
		AgentTime: time.Now().UnixMilli(), Early: uint32(early)}
}

// An Open with batches and a pull behind it is answered in one flight:
// the Welcome, each ack, the page — without the agent waiting for
// anything in between.
func TestOpenTakesTheFramesBehindIt(t *testing.T) {
	h := newTestHubTLS(t, Options{})
	ps := pushes(t, 2, 5)
	ws := h.openDial(t, h.open(3), []wire.Message{ps[0], ps[1], &wire.Pull{Budget: 1 << 20}}, nil)
	w, ok := recv(t, ws).(*wire.Welcome)
	if !ok || !w.Early || w.HWM != 0 {
		t.Fatalf("welcome %+v, want the early frames taken", w)
	}
	for want := uint64(5); want <= 10; want += 5 {
		if a, ok := recv(t, ws).(*wire.Ack); !ok || a.HWM != want {
			t.Fatalf("got %+v, want the ack up to %d", a, want)
		}
	}
	if _, ok := recv(t, ws).(*wire.Changes); !ok {
		t.Fatal("no page for the early pull")
	}
	if hwm := h.hwm(t); hwm != 10 {
		t.Fatalf("hwm %d, want 10", hwm)
	}
}

// Frames cut on a wrong view of the hub — a mark it does not hold, a
// change there it holds otherwise, a clock it would correct — are read
// and dropped: the Welcome says so, nothing of them is applied or
// answered, and what the agent sends after it is served.
func TestOpenDropsFramesCutOnAWrongView(t *testing.T) {
	h := newTestHubTLS(t, Options{})
	ps := pushes(t, 2, 5)
	ws := h.openDial(t, h.open(1), []wire.Message{ps[0]}, nil)
	if w, ok := recv(t, ws).(*wire.Welcome); !ok || !w.Early {
		t.Fatalf("welcome %+v, want the first batch taken", w)
	}
	recv(t, ws)
	ws.Close()
	var err error

	stale := h.open(2) // believes the hub holds nothing
	late := h.open(2)  // the right mark, with a tag of another change
	late.Acked, late.AckedTag = 5, make([]byte, wire.TagSize)
	skewed := h.open(2) // the right mark, a clock an hour off
	skewed.Acked = 5
	if skewed.AckedTag, err = h.st.DeviceChangeTag(context.Background(), h.device, 5); err != nil {
		t.Fatal(err)
	}
	skewed.AgentTime -= time.Hour.Milliseconds()
	for name, o := range map[string]wire.Open{"stale mark": stale, "other change": late, "clock off": skewed} {
		t.Run(name, func(t *testing.T) {
			// Behind the Open: a batch the hub would refuse as a gap
			// (6..10 after 0) or take again (1..5), and a pull.
			ws := h.openDial(t, o, []wire.Message{ps[1], &wire.Pull{Budget: 1 << 20}}, nil)
			if w, ok := recv(t, ws).(*wire.Welcome); !ok || w.Early || w.HWM != 5 {
				t.Fatalf("welcome %+v, want early frames dropped and the hub's mark 5", w)
			}
			// The agent reconciles, then sends again: the first answer
			// is to that, not to a dropped frame.
			send(t, ws, &wire.Pull{Budget: 1 << 20})
			if m := recv(t, ws); m.Type() != wire.TypeChanges {
				t.Fatalf("got %s, want the page of the pull sent after the welcome", m.Type())
			}
			if hwm := h.hwm(t); hwm != 5 {
				t.Fatalf("hwm %d: a dropped batch was applied", hwm)
			}
		})
	}
}

// An Open is bound to its TLS session: replayed in another session, or
// sent without TLS, it opens nothing.
func TestOpenCannotBeReplayedOrSentInClear(t *testing.T) {
	h := newTestHubTLS(t, Options{})
	addr := strings.TrimPrefix(h.http.URL, "https://")
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	captured := h.sign(t, tc, h.open(0)) // signed for tc's session
	tc.Close()
	ws := h.openDial(t, h.open(0), nil, captured)
	if code, cl := expectEnd(t, ws); code != wire.CodeUnauthorized || cl != CloseUnauthorized {
		t.Fatalf("replayed open: %s/%d, want unauthorized", code, cl)
	}

	clear := newTestHub(t, Options{})
	d := websocket.Dialer{}
	ws, _, err = d.Dial("ws"+strings.TrimPrefix(clear.http.URL, "http")+"/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.BinaryMessage, captured); err != nil {
		t.Fatal(err)
	}
	if code, cl := expectEnd(t, ws); code != wire.CodeMalformed || cl != CloseMalformed {
		t.Fatalf("open without TLS: %s/%d, want malformed", code, cl)
	}
}

// The version policy, hub side: agents of protocols 1 to 4 (Hello) are
// served as before; any other version is told to update, in French.
func TestVersionPolicy(t *testing.T) {
	h := newTestHubTLS(t, Options{Retention: notesFor18Months})
	// The Hello signature binds httptest's certificate, as pinned.
	fp := sha256.Sum256(h.http.Certificate().Raw)
	h.srv.opt.Fingerprint = fp[:]
	addr := strings.TrimPrefix(h.http.URL, "https://")
	dial := func() *websocket.Conn {
		d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		ws, _, err := d.Dial("wss://"+addr+"/sync", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		return ws
	}
	for proto := uint32(wire.MinProtocol); proto < wire.OpenProtocol; proto++ {
		ws := dial()
		send(t, ws, &wire.Hello{Proto: proto, Device: h.device, AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull})
		ch, ok := recv(t, ws).(*wire.Challenge)
		if !ok {
			t.Fatalf("protocol %d: no challenge", proto)
		}
		send(t, ws, &wire.Auth{Sig: ed25519.Sign(h.key, wire.AuthMessage(ch.Nonce, fp[:], h.device, wire.ModeFull))})
		// Nothing of protocol 5 in it: an older agent refuses unknown keys.
		if w, ok := recv(t, ws).(*wire.Welcome); !ok || w.Early || w.Retention != nil {
			t.Fatalf("protocol %d: %+v, want a welcome without protocol 5's fields", proto, w)
		}
	}
	for _, proto := range []uint32{0, wire.ProtocolVersion + 1} {
		ws := dial()
		send(t, ws, &wire.Hello{Proto: proto, Device: h.device, Mode: wire.ModeFull})
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		m, _ := wire.Decode(b)
		if e, ok := m.(*wire.Error); !ok || e.Code != wire.CodeProtocolTooOld || !strings.Contains(e.Message, "mettez à jour l'agent") {
			t.Fatalf("protocol %d: %+v, want protocol_too_old « mettez à jour l'agent »", proto, m)
		}
	}
}

// notesFor18Months is a hub's retention policy: notes kept 18 months.
func notesFor18Months(context.Context) (retention.Policy, error) {
	return retention.Default().With(retention.Notes, 18)
}

// The Welcome of a protocol 5 session carries the hub's retention policy,
// every kind given: the agent needs no second connection to read it.
func TestWelcomeCarriesTheRetentionPolicy(t *testing.T) {
	h := newTestHubTLS(t, Options{Retention: notesFor18Months})
	ws := h.openDial(t, h.open(0), nil, nil)
	w, ok := recv(t, ws).(*wire.Welcome)
	if !ok {
		t.Fatal("no welcome")
	}
	want := map[string]uint32{"identite": 24, "diagnostics": 24, "notes": 18, "journal": 12}
	if !maps.Equal(w.Retention, want) {
		t.Fatalf("the welcome's policy %v, want %v", w.Retention, want)
	}
	if w.RetentionSame {
		t.Fatal("the policy said to be the agent's, which sent none")
	}
	// An agent that holds this policy gets it no more; one that holds
	// another gets it.
	o := h.open(0)
	o.Retention = wire.RetentionTag(want)
	ws = h.openDial(t, o, nil, nil)
	if w, ok := recv(t, ws).(*wire.Welcome); !ok || w.Retention != nil || !w.RetentionSame {
		t.Fatalf("%+v, want the policy left out as the agent's", w)
	}
	o.Retention = wire.RetentionTag(map[string]uint32{"identite": 24, "diagnostics": 24, "notes": 12, "journal": 12})
	ws = h.openDial(t, o, nil, nil)
	if w, ok := recv(t, ws).(*wire.Welcome); !ok || !maps.Equal(w.Retention, want) || w.RetentionSame {
		t.Fatalf("%+v, want the hub's policy for an agent holding another", w)
	}
	// A policy the hub cannot read is left out; the session goes on.
	h2 := newTestHubTLS(t, Options{Retention: func(context.Context) (retention.Policy, error) {
		return retention.Policy{}, errors.New("disque illisible")
	}})
	ws = h2.openDial(t, h2.open(0), nil, nil)
	if w, ok := recv(t, ws).(*wire.Welcome); !ok || w.Retention != nil || w.RetentionSame {
		t.Fatalf("%+v, want a welcome without a policy", w)
	}
}

// A batch whose ack is lost in a cut after the hub committed it: at the
// next Open, whose acknowledged mark is below the hub's, the Welcome
// tells the refusals of the changes in between — whole (Reject) and in
// part (a person without their identifying fields, NoteRefused) —, the
// latest MaxWelcomeRejected of them, and nothing when the marks agree.
func TestWelcomeTellsTheRefusalsAfterTheAgentsMark(t *testing.T) {
	h := newTestHubTLS(t, Options{})
	cs := refusedChanges(t)
	p := pushOf(t, cs)
	ws := h.openDial(t, h.open(1), []wire.Message{p}, nil)
	if w, ok := recv(t, ws).(*wire.Welcome); !ok || !w.Early || len(w.Rejected) != 0 {
		t.Fatalf("first welcome %+v", w)
	}
	if a, ok := recv(t, ws).(*wire.Ack); !ok || a.HWM != 4 || len(a.Rejected) != 2 {
		t.Fatalf("ack %+v, want 4 with two refusals", a)
	}
	ws.Close() // the agent never read that ack

	for _, tc := range []struct {
		proto uint32
		acked uint64
		want  []string
	}{
		{wire.ProtocolVersion, 0, []string{"2 " + wire.CodeNoConsent, "3 " + wire.CodeClockAhead}},
		{wire.ProtocolVersion, 2, []string{"3 " + wire.CodeClockAhead}},
		{wire.ProtocolVersion, 4, nil},
		{wire.RefusalsProtocol - 1, 0, nil}, // today's agents refuse the key
	} {
		o := h.open(0)
		o.Proto, o.Acked = tc.proto, tc.acked
		if tc.acked > 0 {
			o.AckedTag = wire.ChangeTag(cs[tc.acked-1].Seq, uint64(cs[tc.acked-1].HLC), cs[tc.acked-1].ID, uint8(cs[tc.acked-1].Op))
		}
		ws := h.openDial(t, o, nil, nil)
		w, ok := recv(t, ws).(*wire.Welcome)
		if !ok || w.HWM != 4 {
			t.Fatalf("agent at %d: welcome %+v", tc.acked, w)
		}
		var got []string
		for _, r := range w.Rejected {
			got = append(got, fmt.Sprintf("%d %s", r.Seq, r.Code))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("protocol %d agent at %d: the welcome tells %q, want %q", tc.proto, tc.acked, got, tc.want)
		}
		ws.Close()
	}
}

// refusedChanges are four changes, the second refused in part (a person
// without consent), the third whole (stamped two days ahead).
func refusedChanges(t *testing.T) []change.Change {
	now := time.Now()
	old := hlc.FromTime(now.Add(-time.Hour))
	activity := func() domain.Record {
		return &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30}
	}
	return []change.Change{
		upsertOf(t, 1, old+1, activity()),
		upsertOf(t, 2, old+2, &domain.Beneficiary{ID: ident.New(), Nom: "Martin", Genre: "feminin"}), // no consent
		upsertOf(t, 3, hlc.FromTime(now.Add(48*time.Hour)), activity()),                              // ahead
		upsertOf(t, 4, old+4, activity()),
	}
}

// pushOf is batch 1 carrying cs.
func pushOf(t *testing.T, cs []change.Change) *wire.Push {
	p := &wire.Push{Batch: 1}
	for i := range cs {
		w, err := wire.FromChange(&cs[i])
		if err != nil {
			t.Fatal(err)
		}
		p.Changes = append(p.Changes, w)
	}
	return p
}

// A Hello does not say the agent's mark (an agent falls back to it after
// a cut that looked like an older hub): its Welcome tells the refusals of
// the last WelcomeRejectedSpan changes, the agent keeps those after its
// own. An agent older than protocol 6 gets none: it refuses the key.
func TestHelloWelcomeTellsTheLatestRefusals(t *testing.T) {
	h := newTestHub(t, Options{})
	ws := h.dial(t)
	send(t, ws, pushOf(t, refusedChanges(t)))
	if a, ok := recv(t, ws).(*wire.Ack); !ok || a.HWM != 4 || len(a.Rejected) != 2 {
		t.Fatalf("ack %+v, want 4 with two refusals", a)
	}
	ws.Close()
	for _, tc := range []struct {
		proto uint32
		want  int
	}{
		{wire.ProtocolVersion, 2},
		{wire.RefusalsProtocol - 1, 0},
		{wire.OpenProtocol - 1, 0},
	} {
		ws := h.dialAs(t, &wire.Hello{Proto: tc.proto, Device: h.device, AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull})
		w, ok := recv(t, ws).(*wire.Welcome)
		if !ok || w.HWM != 4 || len(w.Rejected) != tc.want {
			t.Errorf("protocol %d agent: welcome %+v, want %d refusals", tc.proto, w, tc.want)
		}
		ws.Close()
	}
}

func TestRefusalsAfter(t *testing.T) {
	for _, tc := range []struct {
		ss        session
		hwm, want uint64
	}{
		{session{proto: wire.ProtocolVersion, knowsAcked: true, acked: 7}, 30, 7},
		{session{proto: wire.ProtocolVersion}, 30, 0},
		{session{proto: wire.ProtocolVersion}, wire.WelcomeRejectedSpan + 30, 30},
		{session{proto: wire.RefusalsProtocol - 1, knowsAcked: true, acked: 7}, 30, 30},
	} {
		if got := refusalsAfter(tc.ss, tc.hwm); got != tc.want {
			t.Errorf("refusalsAfter(%+v, %d) = %d, want %d", tc.ss, tc.hwm, got, tc.want)
		}
	}
}
