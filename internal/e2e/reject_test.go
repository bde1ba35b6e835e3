package e2e

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/agent/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/sqlitex"
	"numeribus/internal/wire"
)

// session opens an authenticated protocol-3 session as agent a, from raw
// frames (a hostile device holding a's key), and returns it with the hub's
// welcome.
func session(t *testing.T, h *testHub, a *testAgent) (*websocket.Conn, *wire.Welcome) {
	t.Helper()
	ws, fp := rawConn(t, h)
	key, err := a.st.DeviceKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Hello{Proto: wire.ProtocolVersion, Device: a.st.Device(),
		AgentVersion: "x", AgentTime: time.Now().UnixMilli(), Mode: wire.ModeFull}))
	ch, _ := readMsg(t, ws).(*wire.Challenge)
	if ch == nil {
		t.Fatal("no challenge")
	}
	ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Auth{Sig: ed25519.Sign(key, wire.AuthMessage(ch.Nonce, fp, a.st.Device(), wire.ModeFull))}))
	w, _ := readMsg(t, ws).(*wire.Welcome)
	if w == nil {
		t.Fatal("no welcome")
	}
	return ws, w
}

func readMsg(t *testing.T, ws *websocket.Conn) wire.Message {
	t.Helper()
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading from the hub: %v", err)
	}
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatalf("decoding the hub's frame: %v", err)
	}
	return m
}

// wireStop is a valid tour stop as a pushed change.
func wireStop(t *testing.T, r domain.Record, seq uint64, ts hlc.Timestamp) wire.Change {
	t.Helper()
	fs, err := change.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := wire.EncodeFields(fs)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Change{Kind: wire.KindCode(r.Kind()), ID: r.RecordID(), Op: uint8(change.OpUpsert), HLC: uint64(ts), Seq: seq, Fields: enc}
}

// A device pushing, among good changes, one whose content does not decode
// and one stamped 50 years ahead (the push key of a stolen laptop is
// enough): the hub refuses those two one by one, with their reasons in
// the ack, applies the others, goes on with the next batch, and the team
// never receives the refused ones.
func TestHubRefusesBadChangesOneByOne(t *testing.T) {
	h := startHub(t)
	bad := newAgent(t, h, "bus-1", "cd88", nil)
	mate := newAgent(t, h, "bus-2", "cd88", nil)
	ws, w := session(t, h, bad)
	now := time.Now()
	ts := hlc.FromTime(now)
	recs := stops(5)
	duree, _ := change.Marshal("abc")
	badFields, _ := wire.EncodeFields(change.Fields{4: duree})
	seq := w.HWM
	cs := []wire.Change{
		wireStop(t, recs[0], seq+1, ts),
		{Kind: 1, ID: recs[1].RecordID(), Op: 1, HLC: uint64(ts + 1), Seq: seq + 2, Fields: badFields},
		wireStop(t, recs[2], seq+3, ts+2),
		wireStop(t, recs[3], seq+4, hlc.FromTime(now.AddDate(50, 0, 0))),
		wireStop(t, recs[4], seq+5, hlc.Max),
	}
	ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Push{Batch: 1, Changes: cs}))
	ack, _ := readMsg(t, ws).(*wire.Ack)
	if ack == nil {
		t.Fatal("no ack")
	}
	if ack.HWM != seq+5 || ack.Applied != 2 {
		t.Fatalf("ack: hwm %d, applied %d; want %d, 2", ack.HWM, ack.Applied, seq+5)
	}
	var got []string
	for _, r := range ack.Rejected {
		got = append(got, r.Code)
		if r.Code == wire.CodeClockAhead && r.Ahead < uint64(49*365*24*time.Hour/time.Millisecond) {
			t.Errorf("change %d refused %v ahead, want about 50 years", r.Seq, time.Duration(r.Ahead)*time.Millisecond)
		}
		if r.Reason == "" || strings.Contains(r.Reason, "abc") {
			t.Errorf("change %d: reason %q: empty, or quoting the record's value", r.Seq, r.Reason)
		}
	}
	if want := []string{wire.CodeInvalid, wire.CodeClockAhead, wire.CodeClockAhead}; !slices.Equal(got, want) {
		t.Fatalf("rejected %v (%+v), want %v", got, ack.Rejected, want)
	}
	// The same batch again (a retry): nothing applied twice, the same
	// refusals told again.
	ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Push{Batch: 2, Changes: cs}))
	if again, _ := readMsg(t, ws).(*wire.Ack); again == nil || again.HWM != seq+5 || again.Applied != 0 || len(again.Rejected) != 3 {
		t.Fatalf("retry ack: %+v", again)
	}
	// The outbox behind the refused changes goes on.
	more := stops(7)[5:]
	ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Push{Batch: 3, Changes: []wire.Change{
		wireStop(t, more[0], seq+6, ts+3), wireStop(t, more[1], seq+7, ts+4)}}))
	if next, _ := readMsg(t, ws).(*wire.Ack); next == nil || next.HWM != seq+7 || next.Applied != 2 || len(next.Rejected) != 0 {
		t.Fatalf("next ack: %+v", next)
	}
	// A value the domain's rules refuse (an e-mail that is none), checked
	// by the same code as the agent's forms; the reason names the field,
	// never the value.
	email, _ := change.Marshal("pas-une-adresse")
	emailFields, _ := wire.EncodeFields(change.Fields{5: email})
	ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Push{Batch: 4, Changes: []wire.Change{
		{Kind: wire.KindCode(domain.KindBeneficiary), ID: recs[0].RecordID(), Op: 1, HLC: uint64(ts + 5), Seq: seq + 8, Fields: emailFields}}}))
	if a, _ := readMsg(t, ws).(*wire.Ack); a == nil || a.HWM != seq+8 || len(a.Rejected) != 1 || a.Rejected[0].Code != wire.CodeInvalid ||
		!strings.Contains(a.Rejected[0].Reason, "email") || strings.Contains(a.Rejected[0].Reason, "pas-une-adresse") {
		t.Fatalf("ack of an invalid value: %+v", a)
	}
	ws.Close()

	mate.sync(t)
	want := []string{recs[0].RecordID().String(), recs[2].RecordID().String(), more[0].RecordID().String(), more[1].RecordID().String()}
	lines := mate.lines(t)
	if len(lines) != len(want) {
		t.Fatalf("the teammate holds %d records, want the %d accepted: %v", len(lines), len(want), lines)
	}
	for _, id := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, id) }) {
			t.Errorf("accepted record %s missing on the teammate", id)
		}
	}
	sameLines(t, "hub and teammate", hubLines(t, h, "cd88"), lines)
	// The teammate's clock was not dragged to the future.
	if st, err := mate.st.Status(context.Background()); err != nil || strings.HasPrefix(st.HLC, "2076") {
		t.Fatalf("teammate clock %q (%v)", st.HLC, err)
	}
}

// A real agent whose outbox holds a change the hub refuses (stamped far
// ahead, as a bug or a tampered file would leave it) sends the rest, keeps
// the refused one out of its outbox, and says which and why in its status.
func TestAgentKeepsWhatTheHubRefuses(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	mate := newAgent(t, h, "bus-2", "cd88", nil)
	recs := stops(5)
	a.save(t, recs...)
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(a.dir, store.FileName), false))
	if err != nil {
		t.Fatal(err)
	}
	ahead := hlc.FromTime(time.Now().AddDate(0, 0, 3))
	if _, err := db.Exec(`UPDATE changes SET hlc = ? WHERE seq = 3`, int64(ahead)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rep := a.sync(t)
	if rep.Rejected != 1 || rep.PendingAfter != 0 {
		t.Fatalf("sync: rejected %d, pending after %d; want 1 and 0", rep.Rejected, rep.PendingAfter)
	}
	ctx := context.Background()
	rs, err := a.st.RejectedChanges(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("RejectedChanges: %+v, %v", rs, err)
	}
	r := rs[0]
	if r.Seq != 3 || r.Code != wire.CodeClockAhead || r.ID != recs[2].RecordID() || !strings.Contains(r.Explain(), "en avance de 2 j 23 h") {
		t.Fatalf("refused: %+v, %q", r, r.Explain())
	}
	if st, err := a.st.Status(ctx); err != nil || st.Rejected != 1 {
		t.Fatalf("status: %d refused (%v)", st.Rejected, err)
	}
	// New work goes out as usual; nothing is sent twice.
	a.save(t, stops(6)[5])
	if rep := a.sync(t); rep.Rejected != 0 || rep.PendingAfter != 0 || rep.Pushed != 1 {
		t.Fatalf("next sync: %+v", rep)
	}
	mate.sync(t)
	if n := len(mate.lines(t)); n != 5 {
		t.Fatalf("teammate holds %d records, want 5 (6 saved, 1 refused)", n)
	}
	changes, distinct, hwm := hubCount(t, h, a.st.Device())
	if changes != 5 || distinct != 5 || hwm != 6 {
		t.Fatalf("hub: %d changes, %d distinct, hwm %d; want 5, 5, 6", changes, distinct, hwm)
	}
}

// Refusals survive cuts: a proxy cuts the connection at random byte
// offsets while an agent pushes 3,000 changes of which every 50th is
// refused (stamped days ahead). Acks are lost after the hub committed
// their batches; the agent must still end with exactly the refused
// changes listed, each once, and the rest at the hub once. Before the
// Welcome told them, a lost ack's refusals were taken for acceptances.
func TestRefusalsSurviveCuts(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	const n, every = 3000, 50
	a.save(t, stops(n)...)
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(a.dir, store.FileName), false))
	if err != nil {
		t.Fatal(err)
	}
	ahead := hlc.FromTime(time.Now().AddDate(0, 0, 3))
	if _, err := db.Exec(`UPDATE changes SET hlc = ? WHERE seq % ? = 0`, int64(ahead), every); err != nil {
		t.Fatal(err)
	}
	db.Close()

	proxy := startCutProxy(t, h.srv.Addr, 2_000, 16_000, 11)
	a.cl.URL = "wss://" + proxy.addr() + "/sync"
	a.cl.BatchBytes = 4 << 10 // small batches: a refusal in most acks
	a.cl.Window = 3
	a.cl.AnswerTimeout = 5 * time.Second
	syncThroughCuts(t, a, 2000)
	if proxy.cuts.Load() < 10 {
		t.Fatalf("only %d cuts: the test did not cut enough", proxy.cuts.Load())
	}
	rs, err := a.st.RejectedChanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, r := range rs {
		if r.Code != wire.CodeClockAhead {
			t.Errorf("change %d refused for %s", r.Seq, r.Code)
		}
		got = append(got, r.Seq)
	}
	var want []uint64
	for s := uint64(every); s <= n; s += every {
		want = append(want, s)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after %d cuts the agent lists %d refused changes, want %d: %v", proxy.cuts.Load(), len(got), len(want), got)
	}
	changes, distinct, hwm := hubCount(t, h, a.st.Device())
	if changes != n-len(want) || distinct != changes || hwm != n {
		t.Fatalf("hub holds %d changes (%d distinct), hwm %d; want %d, mark %d", changes, distinct, hwm, n-len(want), n)
	}
	t.Logf("%d cuts", proxy.cuts.Load())
}
