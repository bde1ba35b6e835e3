// Package storetest is the conformance suite of hub stores: every
// implementation of store.Store (SQLite now, PostgreSQL later) runs it from
// its own tests, so the sync code can rely on the same behaviour from all.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
//	}
//
// Stores that also implement [Inspector] get the merge checks on record
// states; the others are checked through the change log and Stats only.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/wire"
)

// Inspector is implemented by stores that can show a record's merged
// state. The store.Store interface has no such read (yet); the suite uses
// it, when present, to check the merge itself and not only the log.
type Inspector interface {
	Record(ctx context.Context, id ident.ID) (kind domain.Kind, team string, st *merge.State, err error)
}

// Run runs the suite. open must return a new, empty store; the suite
// closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) { run(t, open, false) }

// run runs the suite, with every batch prepared first if prepare.
func run(t *testing.T, open func(t *testing.T) store.Store, prepare bool) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Enrollment", testEnrollment},
		{"Revoke", testRevoke},
		{"RevokedDevices", testRevokedDevices},
		{"MarkSeenSynced", testMarkSeenSynced},
		{"ApplyIdempotent", testApplyIdempotent},
		{"ApplyUnknownOrRevokedDevice", testApplyUnknownDevice},
		{"Gap", testGap},
		{"FieldLevelMerge", testFieldLevelMerge},
		{"DeleteTombstone", testDelete},
		{"Erase", testErase},
		{"EraseWithinOneBatch", testEraseOneBatch},
		{"TeamIsolation", testTeamIsolation},
		{"KindMismatchSkipped", testKindMismatch},
		{"NewAndStoredInOneBatch", testNewAndStored},
		{"ExcludeOwnChanges", testExcludeOwn},
		{"Paging", testPaging},
		{"PulledAsStored", testPulledAsStored},
		{"Stats", testStats},
		{"Concurrent", testConcurrent},
		{"Tags", testTags},
		{"Reject", testReject},
		{"Refusals", testRefusals},
		{"Consents", testConsents},
		{"PageWithinWireLimits", testPageWithinWireLimits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			e := &env{t: t, s: s, inner: s, ctx: context.Background()}
			if p, ok := s.(store.Preparer); ok && prepare {
				e.s = preparing{s, p}
			}
			tc.fn(t, e)
		})
	}
}

// RunPrepared runs the suite on a store.Preparer with every batch
// prepared first (PrepareBatch, then ApplyPrepared, as the sync does):
// the preparation must change nothing the suite sees, whether it is used
// or, for a retry or a record stored already, set aside.
func RunPrepared(t *testing.T, open func(t *testing.T) store.Store) { run(t, open, true) }

// preparing is a store whose ApplyBatch goes through its Preparer.
type preparing struct {
	store.Store
	p store.Preparer
}

func (s preparing) ApplyBatch(ctx context.Context, deviceID string, changes []change.Change, bytes int) (uint64, int, error) {
	d, err := s.Device(ctx, deviceID)
	if err != nil {
		return s.Store.ApplyBatch(ctx, deviceID, changes, bytes)
	}
	pb := s.p.PrepareBatch(deviceID, d.Team, changes)
	return s.p.ApplyPrepared(ctx, deviceID, changes, pb, bytes)
}

// base is the suite's clock: whole seconds, which every store keeps
// exactly.
var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	s     store.Store
	inner store.Store // s as opened, for Inspector
	ctx   context.Context
}

func token() [32]byte {
	var b [32]byte
	rand.Read(b[:])
	return sha256.Sum256(b[:])
}

func key() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// enroll registers a new device named name in team.
func (e *env) enroll(name, team string) store.Device {
	e.t.Helper()
	tok := token()
	if err := e.s.CreateEnrollment(e.ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: base.Add(time.Hour)}); err != nil {
		e.t.Fatalf("CreateEnrollment %s: %v", name, err)
	}
	d, err := e.s.Enroll(e.ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: key(), PushKey: key()}, base)
	if err != nil {
		e.t.Fatalf("Enroll %s: %v", name, err)
	}
	return d
}

func (e *env) apply(dev string, cs []change.Change) (uint64, int) {
	e.t.Helper()
	hwm, n, err := e.s.ApplyBatch(e.ctx, dev, cs, 100)
	if err != nil {
		e.t.Fatalf("ApplyBatch: %v", err)
	}
	return hwm, n
}

// pull returns every change team may see, except dev's, in one call,
// their fields decoded.
func (e *env) pull(team, dev string) []store.Logged {
	e.t.Helper()
	cs, _, more, err := e.s.ChangesSince(e.ctx, team, dev, 0, 1<<30)
	if err != nil {
		e.t.Fatalf("ChangesSince: %v", err)
	}
	if more {
		e.t.Fatal("ChangesSince: more after an unlimited page")
	}
	if err := store.DecodeLogged(cs); err != nil {
		e.t.Fatal(err)
	}
	return cs
}

func (e *env) device(id string) store.Device {
	e.t.Helper()
	d, err := e.s.Device(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Device: %v", err)
	}
	return d
}

// record returns a record's state, or skips the test when the store
// cannot show it.
func (e *env) record(id ident.ID) (domain.Kind, string, *merge.State) {
	e.t.Helper()
	in, ok := e.inner.(Inspector)
	if !ok {
		e.t.Skip("the store does not implement storetest.Inspector")
	}
	k, team, st, err := in.Record(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Record %s: %v", id, err)
	}
	return k, team, st
}

func raw(t *testing.T, v any) []byte {
	t.Helper()
	b, err := change.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fields(t *testing.T, m map[uint64]any) change.Fields {
	t.Helper()
	f := change.Fields{}
	for n, v := range m {
		if v == nil {
			f[n] = change.Null
		} else {
			f[n] = raw(t, v)
		}
	}
	return f
}

// Field numbers of a beneficiary used below (internal/domain).
const (
	fPrenom = 2 // personal
	fNom    = 3 // personal
	fNotes  = 8 // personal
	fGenre  = 10
	fStatut = 12
)

// UpsertOf is the upsert setting r whole, numbered seq and stamped at:
// for the tests of the stores and of their callers.
func UpsertOf(t *testing.T, seq uint64, at hlc.Timestamp, r domain.Record) change.Change {
	t.Helper()
	f, err := change.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f, HLC: at, Seq: seq}
}

func upsert(t *testing.T, k domain.Kind, id ident.ID, seq uint64, ts hlc.Timestamp, m map[uint64]any) change.Change {
	return change.Change{Kind: k, ID: id, Op: change.OpUpsert, Fields: fields(t, m), HLC: ts, Seq: seq}
}

func op(k domain.Kind, id ident.ID, o change.Op, seq uint64, ts hlc.Timestamp) change.Change {
	return change.Change{Kind: k, ID: id, Op: o, HLC: ts, Seq: seq}
}

// stamp returns a plausible HLC n milliseconds after base.
func stamp(n int) hlc.Timestamp { return hlc.FromTime(base.Add(time.Duration(n) * time.Millisecond)) }

// series returns n upserts of new beneficiaries, seqs from..from+n-1.
func series(t *testing.T, from uint64, n int) []change.Change {
	out := make([]change.Change, n)
	for i := range out {
		seq := from + uint64(i)
		out[i] = upsert(t, domain.KindBeneficiary, ident.New(), seq, stamp(int(seq)),
			map[uint64]any{fGenre: "feminin", fStatut: "retraite", 9: fmt.Sprintf("88%03d", i%1000)})
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func testEnrollment(t *testing.T, e *env) {
	s, ctx := e.s, e.ctx
	id := ident.New().String()
	dk, pk := key(), key()
	dev := store.Device{ID: id, DeviceKey: dk, PushKey: pk, Name: "ignored", Team: "ignored"}

	_, err := s.Enroll(ctx, token(), dev, base)
	wantErr(t, "unknown token", err, store.ErrBadToken)

	tok := token()
	if err := s.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: "bus-1", Team: "cd88", ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Enroll(ctx, tok, dev, base)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != id || d.Name != "bus-1" || d.Team != "cd88" || !bytes.Equal(d.DeviceKey, dk) || !bytes.Equal(d.PushKey, pk) ||
		!d.EnrolledAt.Equal(base) || d.Revoked() || d.HWM != 0 {
		t.Fatalf("enrolled device %+v", d)
	}
	got := e.device(id)
	if got.ID != d.ID || got.Name != d.Name || got.Team != d.Team || !got.EnrolledAt.Equal(base) || !bytes.Equal(got.PushKey, pk) {
		t.Fatalf("Device returned %+v, Enroll %+v", got, d)
	}

	_, err = s.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: key(), PushKey: key()}, base)
	wantErr(t, "used token", err, store.ErrTokenUsed)

	// Expiry: valid up to and including ExpiresAt.
	exp := token()
	if err := s.CreateEnrollment(ctx, store.Enrollment{TokenHash: exp, Name: "bus-2", Team: "cd88", ExpiresAt: base}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Enroll(ctx, exp, store.Device{ID: ident.New().String(), DeviceKey: key(), PushKey: key()}, base.Add(time.Second))
	wantErr(t, "expired token", err, store.ErrTokenExpired)
	d2, err := s.Enroll(ctx, exp, store.Device{ID: ident.New().String(), DeviceKey: key(), PushKey: key()}, base)
	if err != nil {
		t.Fatalf("enrolling at the expiry instant: %v", err)
	}

	// A second token for a name already enrolled.
	dup := token()
	if err := s.CreateEnrollment(ctx, store.Enrollment{TokenHash: dup, Name: "bus-1", Team: "cd88", ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the refusal does not consume the token
		_, err = s.Enroll(ctx, dup, store.Device{ID: ident.New().String(), DeviceKey: key(), PushKey: key()}, base)
		wantErr(t, "name taken", err, store.ErrNameTaken)
	}

	// The same device enrolling again, under another name.
	again := token()
	if err := s.CreateEnrollment(ctx, store.Enrollment{TokenHash: again, Name: "bus-9", Team: "cd88", ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enroll(ctx, again, dev, base); err == nil {
		t.Fatal("a device id enrolled twice")
	}

	_, err = s.Device(ctx, ident.New().String())
	wantErr(t, "Device(unknown)", err, store.ErrNoDevice)

	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].ID != d.ID || ds[1].ID != d2.ID {
		t.Fatalf("Devices: %+v", ds)
	}
}

func testRevoke(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd88")
	at := base.Add(24 * time.Hour)
	if err := e.s.Revoke(e.ctx, "bus-b", at); err != nil {
		t.Fatal(err)
	}
	got := e.device(b.ID)
	if !got.Revoked() || !got.RevokedAt.Equal(at) {
		t.Fatalf("revoked device %+v", got)
	}
	if da := e.device(a.ID); da.Revoked() {
		t.Fatal("another device revoked")
	}
	wantErr(t, "Revoke(unknown)", e.s.Revoke(e.ctx, "bus-z", at), store.ErrNoDevice)
}

// The revocation watch's one question: which devices are revoked, all of
// them in one answer.
func testRevokedDevices(t *testing.T, e *env) {
	devs := make([]store.Device, 5)
	for i := range devs {
		devs[i] = e.enroll(fmt.Sprintf("bus-%d", i), []string{"cd88", "cd54"}[i%2])
	}
	got, err := e.s.RevokedDevices(e.ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("before any revocation: %v, %v", got, err)
	}
	for _, i := range []int{3, 0, 3} { // twice: still once in the answer
		if err := e.s.Revoke(e.ctx, devs[i].Name, base.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{devs[0].ID, devs[3].ID}
	slices.Sort(want)
	got, err = e.s.RevokedDevices(e.ctx)
	if slices.Sort(got); err != nil || !slices.Equal(got, want) {
		t.Fatalf("RevokedDevices = %v, %v; want %v", got, err, want)
	}
}

func testMarkSeenSynced(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	seen := store.Seen{At: base.Add(time.Minute), AgentVersion: "1.2.3", ClockOffsetMs: -4200}
	if err := e.s.MarkSeen(e.ctx, a.ID, seen); err != nil {
		t.Fatal(err)
	}
	if err := e.s.MarkSynced(e.ctx, a.ID, base.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	d := e.device(a.ID)
	if !d.LastSeen.Equal(base.Add(2*time.Minute)) || d.AgentVersion != "1.2.3" || d.ClockOffsetMs != -4200 || !d.LastSync.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("device %+v", d)
	}
	unknown := ident.New().String()
	wantErr(t, "MarkSeen(unknown)", e.s.MarkSeen(e.ctx, unknown, seen), store.ErrNoDevice)
	wantErr(t, "MarkSynced(unknown)", e.s.MarkSynced(e.ctx, unknown, base), store.ErrNoDevice)

	// Contacts on open connections move last seen forward, never back,
	// many devices at once; an unknown device is skipped.
	b := e.enroll("bus-b", "cd88")
	later := base.Add(time.Hour)
	if err := e.s.MarkContacts(e.ctx, map[string]time.Time{a.ID: later, b.ID: base.Add(30 * time.Minute), unknown: later}); err != nil {
		t.Fatal(err)
	}
	if err := e.s.MarkContacts(e.ctx, map[string]time.Time{a.ID: base}); err != nil {
		t.Fatal(err)
	}
	if d := e.device(a.ID); !d.LastSeen.Equal(later) || !d.LastSync.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("after contacts: %s seen %v, synced %v; want seen %v, sync unchanged", d.Name, d.LastSeen, d.LastSync, later)
	}
	if d := e.device(b.ID); !d.LastSeen.Equal(base.Add(30 * time.Minute)) {
		t.Fatalf("after contacts: %s seen %v", d.Name, d.LastSeen)
	}
	// A complete round is a contact: last seen follows last sync.
	if err := e.s.MarkSynced(e.ctx, b.ID, later.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d := e.device(b.ID); !d.LastSeen.Equal(later.Add(time.Minute)) {
		t.Fatalf("after a round: %s seen %v, want %v", d.Name, d.LastSeen, later.Add(time.Minute))
	}
}

func testApplyIdempotent(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	cs := series(t, 1, 10)
	cs[3].Device = "forged" // the store knows who pushes
	if hwm, n := e.apply(a.ID, cs); hwm != 10 || n != 10 {
		t.Fatalf("first apply: hwm %d applied %d", hwm, n)
	}
	if hwm, n := e.apply(a.ID, cs); hwm != 10 || n != 0 {
		t.Fatalf("retry: hwm %d applied %d", hwm, n)
	}
	// A retry overlapping new changes applies only the new ones.
	more := append(slices.Clone(cs[5:]), series(t, 11, 5)...)
	if hwm, n := e.apply(a.ID, more); hwm != 15 || n != 5 {
		t.Fatalf("overlap: hwm %d applied %d", hwm, n)
	}
	if hwm, n := e.apply(a.ID, nil); hwm != 15 || n != 0 {
		t.Fatalf("empty batch: hwm %d applied %d", hwm, n)
	}
	d := e.device(a.ID)
	if d.HWM != 15 || d.ChangesReceived != 15 || d.BytesReceived != 400 {
		t.Fatalf("device counters %+v", d)
	}
	all := append(cs, more[5:]...)
	got := e.pull("cd88", "")
	if len(got) != len(all) {
		t.Fatalf("%d changes logged, want %d", len(got), len(all))
	}
	for i, l := range got {
		w := all[i]
		if l.Kind != w.Kind || l.ID != w.ID || l.Op != w.Op || l.HLC != w.HLC || l.Seq != w.Seq || l.Device != a.ID {
			t.Fatalf("change %d: got %+v, want %+v from %s", i, l.Change, w, a.ID)
		}
		if !equalFields(l.Fields, w.Fields) {
			t.Fatalf("change %d: fields %v, want %v", i, l.Fields, w.Fields)
		}
		if i > 0 && l.HubSeq <= got[i-1].HubSeq {
			t.Fatalf("hub sequence not increasing: %d after %d", l.HubSeq, got[i-1].HubSeq)
		}
	}
	if cs[3].Device != "forged" {
		t.Fatal("ApplyBatch modified the caller's changes")
	}
}

func equalFields(a, b change.Fields) bool {
	if len(a) != len(b) {
		return false
	}
	for n, v := range a {
		if !bytes.Equal(v, b[n]) {
			return false
		}
	}
	return true
}

func testApplyUnknownDevice(t *testing.T, e *env) {
	_, _, err := e.s.ApplyBatch(e.ctx, ident.New().String(), series(t, 1, 1), 10)
	wantErr(t, "unknown device", err, store.ErrNoDevice)
	b := e.enroll("bus-b", "cd88")
	if err := e.s.Revoke(e.ctx, "bus-b", base); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.ApplyBatch(e.ctx, b.ID, series(t, 1, 1), 10); err == nil {
		t.Fatal("a revoked device pushed")
	}
	if got := e.pull("cd88", ""); len(got) != 0 {
		t.Fatalf("%d changes logged", len(got))
	}
}

func testGap(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	_, _, err := e.s.ApplyBatch(e.ctx, a.ID, series(t, 2, 3), 10)
	wantErr(t, "first change after 0 is 2", err, store.ErrGap)
	e.apply(a.ID, series(t, 1, 3))
	// A gap in the middle: nothing of the batch is kept.
	cs := append(series(t, 4, 3), series(t, 8, 3)...)
	_, _, err = e.s.ApplyBatch(e.ctx, a.ID, cs, 10)
	wantErr(t, "gap after 6", err, store.ErrGap)
	if d := e.device(a.ID); d.HWM != 3 || d.ChangesReceived != 3 {
		t.Fatalf("after a gap: %+v", d)
	}
	if got := e.pull("cd88", ""); len(got) != 3 {
		t.Fatalf("after a gap: %d changes logged, want 3", len(got))
	}
	if hwm, n := e.apply(a.ID, cs[:3]); hwm != 6 || n != 3 {
		t.Fatalf("after the gap, the right batch: hwm %d applied %d", hwm, n)
	}
}

func testFieldLevelMerge(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd88")
	k := domain.KindBeneficiary
	id := ident.New()
	e.apply(a.ID, []change.Change{upsert(t, k, id, 1, stamp(10), map[uint64]any{fGenre: "feminin", fStatut: "retraite", fPrenom: "Léa"})})
	// Concurrent edits of different fields: both stay, whatever the
	// arrival order.
	e.apply(b.ID, []change.Change{upsert(t, k, id, 1, stamp(20), map[uint64]any{fGenre: "non_communique"})})
	e.apply(a.ID, []change.Change{upsert(t, k, id, 2, stamp(15), map[uint64]any{fStatut: "en_emploi"})})
	// An older write to a field loses.
	e.apply(b.ID, []change.Change{upsert(t, k, id, 2, stamp(12), map[uint64]any{fStatut: "etudiant"})})

	// Same field, same HLC: the greater device id wins, whatever the
	// Device field claims.
	lo, hi := a, b
	if lo.ID > hi.ID {
		lo, hi = hi, lo
	}
	c1 := upsert(t, k, id, 0, stamp(30), map[uint64]any{fPrenom: "from-" + hi.Name})
	c2 := upsert(t, k, id, 0, stamp(30), map[uint64]any{fPrenom: "from-" + lo.Name})
	c2.Device = "zzzz-forged"
	c1.Seq = e.device(hi.ID).HWM + 1
	c2.Seq = e.device(lo.ID).HWM + 1
	e.apply(hi.ID, []change.Change{c1})
	e.apply(lo.ID, []change.Change{c2})

	// Every change is in the log, from the right devices.
	got := e.pull("cd88", "")
	if len(got) != 6 {
		t.Fatalf("%d changes logged, want 6", len(got))
	}
	if got[5].Device != lo.ID {
		t.Fatalf("last change logged from %q, want %q", got[5].Device, lo.ID)
	}

	kind, team, st := e.record(id)
	if kind != k || team != "cd88" {
		t.Fatalf("record kind %q team %q", kind, team)
	}
	want := map[uint64]string{fGenre: "non_communique", fStatut: "en_emploi", fPrenom: "from-" + hi.Name}
	for n, v := range want {
		if !bytes.Equal(st.Fields[n], raw(t, v)) {
			t.Errorf("field %d: got %x, want %q", n, st.Fields[n], v)
		}
	}
	if st.Last != (hlc.Stamp{TS: stamp(30), Device: hi.ID}) {
		t.Errorf("last stamp %v", st.Last)
	}
}

func testDelete(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	k := domain.KindBeneficiary
	id, other := ident.New(), ident.New()
	e.apply(a.ID, []change.Change{
		upsert(t, k, id, 1, stamp(1), map[uint64]any{fGenre: "feminin"}),
		upsert(t, k, other, 2, stamp(2), map[uint64]any{fGenre: "masculin"}),
		op(k, id, change.OpDelete, 3, stamp(3)),
		upsert(t, k, id, 4, stamp(4), map[uint64]any{fGenre: "masculin"}), // no revival
	})
	got := e.pull("cd88", "")
	if len(got) != 4 || got[2].Op != change.OpDelete || got[2].ID != id {
		t.Fatalf("log %+v", got)
	}
	st, err := e.s.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records[k] != 1 {
		t.Fatalf("live beneficiaries %d, want 1", st.Records[k])
	}
	_, _, rs := e.record(id)
	if !rs.IsDeleted() {
		t.Fatal("a later write revived a tombstone")
	}
}

func testErase(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd88")
	k := domain.KindBeneficiary
	id, keep := ident.New(), ident.New()
	e.apply(a.ID, []change.Change{
		upsert(t, k, id, 1, stamp(1), map[uint64]any{fPrenom: "Léa-Marie", fNom: "Roux-Dupont", fGenre: "feminin"}),
		upsert(t, k, keep, 2, stamp(2), map[uint64]any{fPrenom: "Jeanne-Other", fGenre: "feminin"}),
		upsert(t, k, id, 3, stamp(3), map[uint64]any{fNotes: "rappeler mardi", fStatut: "retraite"}),
	})
	e.apply(b.ID, []change.Change{op(k, id, change.OpErase, 1, stamp(5))})
	// A's concurrent edit, made before it heard of the erasure.
	e.apply(a.ID, []change.Change{upsert(t, k, id, 4, stamp(6), map[uint64]any{fNom: "Roux-Dupont", fStatut: "en_emploi"})})

	personal := domain.PersonalFields(k)
	for _, l := range e.pull("cd88", "") {
		if l.ID != id {
			if _, ok := l.Fields[fPrenom]; !ok {
				t.Fatal("erasure stripped another record's change")
			}
			continue
		}
		for _, n := range personal {
			if _, ok := l.Fields[n]; ok {
				t.Fatalf("change %d (seq %d from %s) still carries personal field %d", l.HubSeq, l.Seq, l.Device, n)
			}
		}
	}
	// The non-personal fields of the erased record are still served.
	var statut []byte
	for _, l := range e.pull("cd88", b.ID) {
		if l.ID == id && l.Fields[fStatut] != nil {
			statut = l.Fields[fStatut]
		}
	}
	if !bytes.Equal(statut, raw(t, "en_emploi")) {
		t.Fatalf("statistics lost by the erasure: %x", statut)
	}

	_, _, st := e.record(id)
	if !st.IsErased() {
		t.Fatal("record not marked erased")
	}
	for _, n := range personal {
		if _, ok := st.Fields[n]; ok {
			t.Fatalf("record state keeps personal field %d", n)
		}
	}
	if !bytes.Equal(st.Fields[fGenre], raw(t, "feminin")) || !bytes.Equal(st.Fields[fStatut], raw(t, "en_emploi")) {
		t.Fatalf("record state lost its statistics: %v", st.Fields)
	}
}

// A record created, edited and erased in one batch, then written again
// with its identity by a device that had not heard of the erasure.
func testEraseOneBatch(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd88")
	k := domain.KindBeneficiary
	id := ident.New()
	if hwm, n := e.apply(a.ID, []change.Change{
		upsert(t, k, id, 1, stamp(1), map[uint64]any{fPrenom: "Léa-Marie", fGenre: "feminin"}),
		upsert(t, k, id, 2, stamp(2), map[uint64]any{fNom: "Roux-Dupont"}),
		op(k, id, change.OpErase, 3, stamp(3)),
		upsert(t, k, id, 4, stamp(4), map[uint64]any{fNotes: "après", fStatut: "retraite"}),
	}); hwm != 4 || n != 4 {
		t.Fatalf("hwm %d applied %d", hwm, n)
	}
	e.apply(b.ID, []change.Change{upsert(t, k, id, 1, stamp(2), map[uint64]any{fPrenom: "Léa-Marie", fGenre: "masculin"})})
	got := e.pull("cd88", "")
	if len(got) != 5 {
		t.Fatalf("%d changes logged, want 5", len(got))
	}
	for _, l := range got {
		for _, n := range domain.PersonalFields(k) {
			if _, ok := l.Fields[n]; ok {
				t.Fatalf("change %d (seq %d) carries personal field %d", l.HubSeq, l.Seq, n)
			}
		}
	}
	if !bytes.Equal(got[4].Fields[fGenre], raw(t, "masculin")) {
		t.Fatalf("the late write lost its statistics: %v", got[4].Fields)
	}
	_, _, st := e.record(id)
	if _, ok := st.Fields[fPrenom]; ok || !st.IsErased() {
		t.Fatalf("state %+v", st)
	}
	// B's genre is newer (stamp 2 > 1): statistics still merge.
	if !bytes.Equal(st.Fields[fGenre], raw(t, "masculin")) || !bytes.Equal(st.Fields[fStatut], raw(t, "retraite")) {
		t.Fatalf("state fields %v", st.Fields)
	}
}

func testTeamIsolation(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd54")
	cs := series(t, 1, 5)
	e.apply(a.ID, cs)
	if got := e.pull("cd54", b.ID); len(got) != 0 {
		t.Fatalf("team cd54 sees %d changes of cd88", len(got))
	}
	if got := e.pull("cd54", ""); len(got) != 0 {
		t.Fatalf("team cd54 sees %d changes of cd88", len(got))
	}
	// B writes to a record of A's team: skipped (not merged, not logged,
	// not counted as applied), but its high-water mark moves on so that B
	// is not stuck re-sending it.
	foreign := upsert(t, domain.KindBeneficiary, cs[0].ID, 1, stamp(100), map[uint64]any{fGenre: "masculin"})
	own := series(t, 2, 1)
	if hwm, n := e.apply(b.ID, append([]change.Change{foreign}, own...)); hwm != 2 || n != 1 {
		t.Fatalf("batch with a foreign change: hwm %d applied %d, want 2 and 1", hwm, n)
	}
	for _, l := range e.pull("cd88", a.ID) {
		t.Fatalf("team cd88 received %+v", l)
	}
	if got := e.pull("cd88", ""); len(got) != 5 {
		t.Fatalf("team cd88 has %d changes, want 5", len(got))
	}
	if got := e.pull("cd54", ""); len(got) != 1 || got[0].ID != own[0].ID {
		t.Fatalf("team cd54 log %+v", got)
	}
	_, team, st := e.record(cs[0].ID)
	if team != "cd88" || !bytes.Equal(st.Fields[fGenre], raw(t, "feminin")) {
		t.Fatalf("foreign change merged: team %s fields %v", team, st.Fields)
	}
}

func testKindMismatch(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	cs := series(t, 1, 1)
	e.apply(a.ID, cs)
	bad := upsert(t, domain.KindActivity, cs[0].ID, 2, stamp(10), map[uint64]any{2: "individuel"})
	hwm, n := e.apply(a.ID, []change.Change{bad})
	if hwm != 2 || n != 0 {
		t.Fatalf("change naming another kind: hwm %d applied %d, want 2 and 0", hwm, n)
	}
	if got := e.pull("cd88", ""); len(got) != 1 {
		t.Fatalf("%d changes logged, want 1", len(got))
	}
}

// A batch of new records only, then one that mixes new records, stored
// ones, a record of another team and a kind that contradicts a record's
// first change in the same batch: a backend may take a faster way for
// the first (the SQLite one inserts first), and must come to the same
// states and log as the general way for the second.
func testNewAndStored(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd54")
	k := domain.KindBeneficiary
	stored := series(t, 1, 3)
	if hwm, n := e.apply(a.ID, stored); hwm != 3 || n != 3 {
		t.Fatalf("new records: hwm %d applied %d", hwm, n)
	}
	foreign := series(t, 1, 1)
	e.apply(b.ID, foreign)
	fresh, again := ident.New(), ident.New()
	mixed := []change.Change{
		upsert(t, k, fresh, 4, stamp(40), map[uint64]any{fGenre: "masculin", fPrenom: "Jean"}),
		upsert(t, k, stored[1].ID, 5, stamp(50), map[uint64]any{fStatut: "en_emploi"}),
		upsert(t, k, foreign[0].ID, 6, stamp(60), map[uint64]any{fGenre: "masculin"}),        // another team's: skipped
		upsert(t, domain.KindActivity, fresh, 7, stamp(70), map[uint64]any{2: "individuel"}), // another kind: skipped
		upsert(t, k, again, 8, stamp(80), map[uint64]any{fGenre: "feminin"}),
		upsert(t, k, fresh, 9, stamp(90), map[uint64]any{fGenre: "non_communique"}),
		upsert(t, k, stored[1].ID, 10, stamp(5), map[uint64]any{fStatut: "etudiant"}), // older than the stored write: loses
	}
	if hwm, n := e.apply(a.ID, mixed); hwm != 10 || n != 5 {
		t.Fatalf("mixed batch: hwm %d applied %d, want 10 and 5", hwm, n)
	}
	for _, w := range []struct {
		id   ident.ID
		want map[uint64]string
	}{
		{fresh, map[uint64]string{fGenre: "non_communique", fPrenom: "Jean"}},
		{stored[1].ID, map[uint64]string{fGenre: "feminin", fStatut: "en_emploi"}},
		{again, map[uint64]string{fGenre: "feminin"}},
	} {
		kind, team, st := e.record(w.id)
		if kind != k || team != "cd88" {
			t.Fatalf("record %s: kind %s team %s", w.id, kind, team)
		}
		for n, v := range w.want {
			if !bytes.Equal(st.Fields[n], raw(t, v)) {
				t.Errorf("record %s field %d: %x, want %q", w.id, n, st.Fields[n], v)
			}
		}
	}
	if _, team, st := e.record(foreign[0].ID); team != "cd54" || !bytes.Equal(st.Fields[fGenre], raw(t, "feminin")) {
		t.Fatalf("another team's record changed: team %s fields %v", team, st.Fields)
	}
	var seqs []uint64
	for _, l := range e.pull("cd88", "") {
		seqs = append(seqs, l.Seq)
	}
	if want := []uint64{1, 2, 3, 4, 5, 8, 9, 10}; !slices.Equal(seqs, want) {
		t.Fatalf("logged seqs %v, want %v", seqs, want)
	}
}

func testExcludeOwn(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd88")
	e.apply(a.ID, series(t, 1, 3))
	e.apply(b.ID, series(t, 1, 2))
	e.apply(a.ID, series(t, 4, 1))
	count := func(ls []store.Logged, dev string) int {
		n := 0
		for _, l := range ls {
			if l.Device == dev {
				n++
			}
		}
		return n
	}
	if got := e.pull("cd88", a.ID); len(got) != 2 || count(got, b.ID) != 2 {
		t.Fatalf("A pulls %d changes", len(got))
	}
	if got := e.pull("cd88", b.ID); len(got) != 4 || count(got, a.ID) != 4 {
		t.Fatalf("B pulls %d changes", len(got))
	}
	if got := e.pull("cd88", ""); len(got) != 6 {
		t.Fatalf("an admin pull has %d changes", len(got))
	}
}

func testPaging(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd88")
	var cs []change.Change
	for i := range 120 {
		m := map[uint64]any{fGenre: "feminin"}
		for j := range i % 7 {
			m[uint64(20+j)] = fmt.Sprintf("%0*d", 10*(j+1), i) // sizes vary
		}
		cs = append(cs, upsert(t, domain.KindBeneficiary, ident.New(), uint64(i+1), stamp(i+1), m))
	}
	for i := 0; i < len(cs); i += 25 {
		e.apply(a.ID, cs[i:min(i+25, len(cs))])
	}
	full := e.pull("cd88", b.ID)
	if len(full) != len(cs) {
		t.Fatalf("%d changes, want %d", len(full), len(cs))
	}
	for _, maxBytes := range []int{0, 1, 100, 300, 1000, 5000} {
		var got []store.Logged
		cursor := uint64(0)
		for pages := 0; ; pages++ {
			if pages > len(cs)+1 {
				t.Fatalf("maxBytes %d: paging does not end", maxBytes)
			}
			page, next, more, err := e.s.ChangesSince(e.ctx, "cd88", b.ID, cursor, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 && more {
				t.Fatalf("maxBytes %d: empty page with more", maxBytes)
			}
			if len(page) > 0 {
				if next != page[len(page)-1].HubSeq {
					t.Fatalf("maxBytes %d: next %d, last change %d", maxBytes, next, page[len(page)-1].HubSeq)
				}
				size := 0
				for _, l := range page {
					size += len(l.Raw)
				}
				if len(page) > 1 && size > maxBytes {
					t.Fatalf("maxBytes %d: page of %d changes with %d bytes of fields", maxBytes, len(page), size)
				}
			} else if next != cursor {
				t.Fatalf("maxBytes %d: empty page moved the cursor from %d to %d", maxBytes, cursor, next)
			}
			got = append(got, page...)
			cursor = next
			if !more {
				break
			}
		}
		if len(got) != len(full) {
			t.Fatalf("maxBytes %d: pages hold %d changes, want %d", maxBytes, len(got), len(full))
		}
		for i := range got {
			if got[i].HubSeq != full[i].HubSeq || got[i].ID != full[i].ID || !bytes.Equal(got[i].Raw, full[i].Raw) {
				t.Fatalf("maxBytes %d: change %d differs", maxBytes, i)
			}
		}
		if maxBytes <= 1 && len(got) != len(cs) {
			t.Fatal("tiny pages")
		}
	}
	// From the last change: nothing, and the cursor stays.
	last := full[len(full)-1].HubSeq
	page, next, more, err := e.s.ChangesSince(e.ctx, "cd88", b.ID, last, 1000)
	if err != nil || len(page) != 0 || next != last || more {
		t.Fatalf("after the end: %d changes, next %d, more %v, err %v", len(page), next, more, err)
	}
	// A page that stops on the device's own changes still reports more
	// only if others' remain.
	page, next, more, err = e.s.ChangesSince(e.ctx, "cd88", a.ID, 0, 1000)
	if err != nil || len(page) != 0 || next != 0 || more {
		t.Fatalf("A's own changes only: %d changes, next %d, more %v, err %v", len(page), next, more, err)
	}
}

// A pull serves the fields as the hub stored them, not decoded: the bytes
// are the canonical encoding the wire carries (wire.EncodeFields) of what
// the merge logged, erasure scrub included, and they decode back to those
// fields.
func testPulledAsStored(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd88")
	k := domain.KindBeneficiary
	id, gone := ident.New(), ident.New()
	e.apply(a.ID, []change.Change{
		upsert(t, k, id, 1, stamp(1), map[uint64]any{fStatut: "retraite", fPrenom: "Léa", fGenre: "feminin", 9: "88160"}),
		upsert(t, k, gone, 2, stamp(2), map[uint64]any{fGenre: "masculin"}),
		op(k, gone, change.OpDelete, 3, stamp(3)),
		op(k, id, change.OpErase, 4, stamp(4)),
		upsert(t, k, id, 5, stamp(5), map[uint64]any{fNom: "Roux", fStatut: nil}),
	})
	want := []change.Fields{ // what the log keeps: no personal field of an erased record
		fields(t, map[uint64]any{fStatut: "retraite", fGenre: "feminin", 9: "88160"}),
		fields(t, map[uint64]any{fGenre: "masculin"}),
		nil,
		nil,
		fields(t, map[uint64]any{fStatut: nil}),
	}
	ls, _, _, err := e.s.ChangesSince(e.ctx, "cd88", b.ID, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != len(want) {
		t.Fatalf("%d changes pulled, want %d", len(ls), len(want))
	}
	for i, l := range ls {
		if l.Fields != nil {
			t.Fatalf("change %d: ChangesSince decoded the fields", l.Seq)
		}
		enc, err := wire.EncodeFields(want[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l.Raw, enc) {
			t.Fatalf("change %d: stored %x, the wire encoding of what was logged is %x", l.Seq, l.Raw, enc)
		}
	}
	if err := store.DecodeLogged(ls); err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		if !equalFields(l.Fields, want[i]) {
			t.Fatalf("change %d decodes to %v, want %v", l.Seq, l.Fields, want[i])
		}
	}
}

func testStats(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	a2 := e.enroll("bus-a2", "cd88")
	b := e.enroll("bus-b", "cd54")
	e.enroll("bus-c", "cd54")
	if err := e.s.Revoke(e.ctx, "bus-c", base); err != nil {
		t.Fatal(err)
	}
	kb, ka := domain.KindBeneficiary, domain.KindActivity
	ids := []ident.ID{ident.New(), ident.New(), ident.New(), ident.New(), ident.New(), ident.New()}
	act := map[uint64]any{2: "individuel"}
	e.apply(a.ID, []change.Change{
		upsert(t, kb, ids[0], 1, stamp(1), map[uint64]any{fGenre: "feminin"}),
		upsert(t, kb, ids[1], 2, stamp(2), map[uint64]any{fGenre: "feminin"}),
		upsert(t, kb, ids[2], 3, stamp(3), map[uint64]any{fGenre: "feminin"}),
		upsert(t, ka, ids[3], 4, stamp(4), act),
		upsert(t, ka, ids[4], 5, stamp(5), act),
	})
	// Another device of the team edits and deletes A's records: they
	// still count as A's.
	e.apply(a2.ID, []change.Change{
		upsert(t, kb, ids[0], 1, stamp(10), map[uint64]any{fStatut: "retraite"}),
		op(kb, ids[1], change.OpDelete, 2, stamp(11)),
	})
	e.apply(b.ID, []change.Change{upsert(t, ka, ids[5], 1, stamp(6), act)})

	st, err := e.s.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want map[domain.Kind]int) {
		t.Helper()
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s[%s] = %d, want %d", what, k, got[k], n)
			}
		}
		for k, n := range got {
			if n != 0 && want[k] == 0 {
				t.Errorf("%s[%s] = %d, want none", what, k, n)
			}
		}
	}
	check("Records", st.Records, map[domain.Kind]int{kb: 2, ka: 3})
	check("ByTeam[cd88]", st.ByTeam["cd88"], map[domain.Kind]int{kb: 2, ka: 2})
	check("ByTeam[cd54]", st.ByTeam["cd54"], map[domain.Kind]int{ka: 1})
	check("ByDevice[bus-a]", st.ByDevice["bus-a"], map[domain.Kind]int{kb: 2, ka: 2})
	check("ByDevice[bus-b]", st.ByDevice["bus-b"], map[domain.Kind]int{ka: 1})
	check("ByDevice[bus-a2]", st.ByDevice["bus-a2"], nil)
	if st.Changes != 8 {
		t.Errorf("Changes = %d, want 8", st.Changes)
	}
	if st.Devices != 4 {
		t.Errorf("Devices = %d, want 4", st.Devices)
	}
}

func testConcurrent(t *testing.T, e *env) {
	const (
		devices = 4
		batches = 20
		size    = 50
	)
	var devs []store.Device
	for i := range devices {
		devs = append(devs, e.enroll(fmt.Sprintf("bus-%d", i), []string{"cd88", "cd54"}[i%2]))
	}
	var wg sync.WaitGroup
	errs := make(chan error, devices*2)
	for _, d := range devs {
		var todo [][]change.Change // made here: t.Fatal only on the test's goroutine
		for i := range batches {
			todo = append(todo, series(t, uint64(i*size+1), size))
		}
		wg.Go(func() {
			for i, cs := range todo {
				if _, _, err := e.s.ApplyBatch(e.ctx, d.ID, cs, 1000); err != nil {
					errs <- fmt.Errorf("%s batch %d: %w", d.Name, i, err)
					return
				}
			}
		})
		// A reader per device, pulling while the others write.
		wg.Go(func() {
			cursor := uint64(0)
			for range batches {
				page, next, _, err := e.s.ChangesSince(e.ctx, d.Team, d.ID, cursor, 4096)
				if err != nil {
					errs <- err
					return
				}
				for _, l := range page {
					if l.HubSeq <= cursor || l.Device == d.ID {
						errs <- fmt.Errorf("%s pulled %+v after %d", d.Name, l, cursor)
						return
					}
					cursor = l.HubSeq
				}
				if next != cursor {
					errs <- fmt.Errorf("next %d, last %d", next, cursor)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, d := range devs {
		if got := e.device(d.ID); got.HWM != batches*size || got.ChangesReceived != batches*size {
			t.Fatalf("%s: %+v", d.Name, got)
		}
	}
	seen := map[uint64]bool{}
	for _, team := range []string{"cd88", "cd54"} {
		got := e.pull(team, "")
		if len(got) != devices/2*batches*size {
			t.Fatalf("team %s: %d changes", team, len(got))
		}
		for _, l := range got {
			if seen[l.HubSeq] {
				t.Fatalf("hub sequence %d given twice", l.HubSeq)
			}
			seen[l.HubSeq] = true
		}
	}
	st, err := e.s.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Changes != devices*batches*size || st.Records[domain.KindBeneficiary] != devices*batches*size {
		t.Fatalf("stats %+v", st)
	}
}

// The divergence checks' look-ups: a device's change by its seq and a log
// entry by its hub seq, tagged exactly as internal/wire computes them, and
// nil where the store holds none.
func testTags(t *testing.T, e *env) {
	d := e.enroll("bus-1", "cd88")
	cs := series(t, 1, 3)
	e.apply(d.ID, cs)
	for _, c := range cs {
		got, err := e.s.DeviceChangeTag(e.ctx, d.ID, c.Seq)
		if err != nil {
			t.Fatalf("DeviceChangeTag %d: %v", c.Seq, err)
		}
		if want := wire.ChangeTag(c.Seq, uint64(c.HLC), c.ID, uint8(c.Op)); !bytes.Equal(got, want) {
			t.Errorf("DeviceChangeTag %d = %x, want %x", c.Seq, got, want)
		}
	}
	if got, err := e.s.DeviceChangeTag(e.ctx, d.ID, 4); err != nil || got != nil {
		t.Errorf("DeviceChangeTag beyond the mark = %x, %v; want nil", got, err)
	}
	other := e.enroll("bus-2", "cd88")
	ls := e.pull("cd88", other.ID)
	if len(ls) != len(cs) {
		t.Fatalf("pulled %d changes, want %d", len(ls), len(cs))
	}
	// The tag at a cursor chains every entry up to it (store.Chain).
	chain := make([]byte, wire.TagSize)
	for _, l := range ls {
		got, err := e.s.LogTag(e.ctx, l.HubSeq)
		if err != nil {
			t.Fatalf("LogTag %d: %v", l.HubSeq, err)
		}
		chain = store.Chain(chain, store.LogEntry{HubSeq: l.HubSeq, Device: d.ID, Seq: l.Seq, HLC: uint64(l.HLC), ID: l.ID, Op: uint8(l.Op)})
		if !bytes.Equal(got, chain) {
			t.Errorf("LogTag %d = %x, want %x", l.HubSeq, got, chain)
		}
	}
	last := ls[len(ls)-1].HubSeq
	for _, hs := range []uint64{0, last + 1, 1 << 62} {
		if got, err := e.s.LogTag(e.ctx, hs); err != nil || got != nil {
			t.Errorf("LogTag %d = %x, %v; want nil", hs, got, err)
		}
	}
}

// Thousands of one-field edits: a page cut by bytes alone held more changes
// than the protocol allows, the hub failed to encode it and the team's
// pulls were stuck for good. Every page must encode and decode under the
// wire's limits, and paging must reach the end.
func testPageWithinWireLimits(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd88")
	n := wire.MaxChanges + 2000
	id := ident.New()
	cs := make([]change.Change, n)
	for i := range cs {
		cs[i] = upsert(t, domain.KindBeneficiary, id, uint64(i+1), stamp(i+1), map[uint64]any{fStatut: "retraite"})
	}
	for i := 0; i < n; i += 2000 {
		e.apply(a.ID, cs[i:min(i+2000, n)])
	}
	cursor, total := uint64(0), 0
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		ls, next, more, err := e.s.ChangesSince(e.ctx, "cd88", b.ID, cursor, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) > wire.MaxChanges {
			t.Fatalf("a page of %d changes, the wire allows %d", len(ls), wire.MaxChanges)
		}
		out := &wire.Changes{Next: next, More: more}
		for i := range ls { // as the hub serves them: the stored fields
			l := &ls[i]
			out.Changes = append(out.Changes, wire.Change{Kind: wire.KindCode(l.Kind), ID: l.ID, Op: uint8(l.Op),
				HLC: uint64(l.HLC), Seq: l.Seq, Fields: l.Raw, Device: l.Device, HubSeq: l.HubSeq})
		}
		frame, err := wire.Encode(out)
		if err != nil {
			t.Fatalf("page %d does not encode: %v", pages, err)
		}
		if _, err := wire.Decode(frame); err != nil {
			t.Fatalf("page %d does not decode: %v", pages, err)
		}
		total += len(ls)
		cursor = next
		if !more {
			break
		}
	}
	if total != n {
		t.Fatalf("pulled %d changes, want %d", total, n)
	}
}

// A refused change moves the mark like an applied one, so that the changes
// after it go on; it is neither merged nor forwarded, and its tag is still
// known (the divergence check compares it).
func testReject(t *testing.T, e *env) {
	d := e.enroll("bus-1", "cd88")
	cs := series(t, 1, 4)
	e.apply(d.ID, cs[:1])
	bad := cs[1]
	rej := store.Rejected{Seq: bad.Seq, HLC: bad.HLC, Kind: bad.Kind, ID: bad.ID, Op: bad.Op,
		Code: wire.CodeInvalid, Reason: "test", At: time.Now()}
	hwm, err := e.s.Reject(e.ctx, d.ID, []store.Rejected{rej})
	if err != nil || hwm != bad.Seq {
		t.Fatalf("Reject = %d, %v; want %d", hwm, err, bad.Seq)
	}
	// A retry of the refused change is skipped; a gap is refused.
	if hwm, err := e.s.Reject(e.ctx, d.ID, []store.Rejected{rej}); err != nil || hwm != bad.Seq {
		t.Fatalf("Reject again = %d, %v; want %d, nil", hwm, err, bad.Seq)
	}
	far := rej
	far.Seq = bad.Seq + 2
	if _, err := e.s.Reject(e.ctx, d.ID, []store.Rejected{far}); !errors.Is(err, store.ErrGap) {
		t.Fatalf("Reject after a gap: %v, want ErrGap", err)
	}
	if hwm, n := e.apply(d.ID, cs[2:]); hwm != cs[len(cs)-1].Seq || n != len(cs)-2 {
		t.Fatalf("after the refused change: hwm %d, applied %d", hwm, n)
	}
	if got := e.device(d.ID).HWM; got != cs[len(cs)-1].Seq {
		t.Fatalf("device HWM = %d", got)
	}
	got, err := e.s.DeviceChangeTag(e.ctx, d.ID, bad.Seq)
	if want := wire.ChangeTag(bad.Seq, uint64(bad.HLC), bad.ID, uint8(bad.Op)); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("DeviceChangeTag of the refused change = %x, %v; want %x", got, err, want)
	}
	other := e.enroll("bus-2", "cd88")
	for _, l := range e.pull("cd88", other.ID) {
		if l.Seq == bad.Seq {
			t.Fatalf("the refused change was forwarded to the team")
		}
	}
	if _, err := e.s.Reject(e.ctx, "no-such-device", []store.Rejected{rej}); !errors.Is(err, store.ErrNoDevice) {
		t.Fatalf("Reject of an unknown device: %v", err)
	}
}

// The refusals recorded for a device — whole (Reject) or of a change
// taken in part (NoteRefused, before its run) — are read back by seq
// range, the latest max of them, for a Welcome; another device's are not.
func testRefusals(t *testing.T, e *env) {
	d, other := e.enroll("bus-1", "cd88"), e.enroll("bus-2", "cd88")
	cs := series(t, 1, 6)
	at := time.UnixMilli(time.Now().UnixMilli()).UTC()
	refusal := func(c change.Change, code string) store.Rejected {
		return store.Rejected{Seq: c.Seq, HLC: c.HLC, Kind: c.Kind, ID: c.ID, Op: c.Op, Code: code, Reason: "why " + code, At: at}
	}
	e.apply(d.ID, cs[:1])
	if _, err := e.s.Reject(e.ctx, d.ID, []store.Rejected{refusal(cs[1], wire.CodeInvalid)}); err != nil {
		t.Fatal(err)
	}
	partial := []store.Rejected{refusal(cs[2], wire.CodeNoConsent), refusal(cs[4], wire.CodeNoConsent)}
	if err := e.s.NoteRefused(e.ctx, d.ID, partial); err != nil {
		t.Fatal(err)
	}
	// Noted again (a retry): kept once, as first noted.
	again := partial[0]
	again.Reason = "another reason"
	if err := e.s.NoteRefused(e.ctx, d.ID, []store.Rejected{again}); err != nil {
		t.Fatal(err)
	}
	e.apply(d.ID, cs[2:])
	if err := e.s.NoteRefused(e.ctx, other.ID, []store.Rejected{refusal(cs[0], wire.CodeInvalid)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after, upTo uint64
		max         int
		want        []store.Rejected
	}{
		{0, 6, 10, []store.Rejected{refusal(cs[1], wire.CodeInvalid), partial[0], partial[1]}},
		{2, 6, 10, partial},
		{0, 4, 10, []store.Rejected{refusal(cs[1], wire.CodeInvalid), partial[0]}},
		{0, 6, 2, partial}, // the latest
		{5, 6, 10, nil},
	} {
		got, err := e.s.Refusals(e.ctx, d.ID, tc.after, tc.upTo, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, tc.want, func(a, b store.Rejected) bool { return a == b }) {
			t.Errorf("Refusals(%d, %d, %d) = %+v, want %+v", tc.after, tc.upTo, tc.max, got, tc.want)
		}
	}
	if hwm := e.device(d.ID).HWM; hwm != 6 {
		t.Fatalf("mark %d after the batch, want 6: noting a refusal must not move it", hwm)
	}
}

// Field numbers of a consent used below (internal/domain).
const (
	fConsentOf = 2 // beneficiaire
	fFinalites = 3
	fMode      = 4
	fDate      = 6
	fRetireLe  = 8
)

// consentOf returns a new consent of person giving finalites.
func consentOf(t *testing.T, person ident.ID, seq uint64, finalites ...string) change.Change {
	return upsert(t, domain.KindConsent, ident.New(), seq, stamp(int(seq)), map[uint64]any{
		fConsentOf: person, fFinalites: finalites, fMode: "oral", fDate: "2026-03-02"})
}

// consents returns what Consents gives, by id, each with its decoded
// record; it fails on a consent returned twice.
func (e *env) consents(team string, persons, ids []ident.ID) map[ident.ID]*domain.Consent {
	e.t.Helper()
	cs, err := e.s.Consents(e.ctx, team, persons, ids)
	if err != nil {
		e.t.Fatalf("Consents: %v", err)
	}
	out := map[ident.ID]*domain.Consent{}
	for _, c := range cs {
		if out[c.ID] != nil {
			e.t.Fatalf("Consents gave %s twice", c.ID)
		}
		r, err := change.Decode(domain.KindConsent, c.ID, c.State.Live())
		if err != nil {
			e.t.Fatalf("consent %s: %v", c.ID, err)
		}
		out[c.ID] = r.(*domain.Consent)
	}
	return out
}

// The sync asks, once per batch, for the consents of the persons the batch
// identifies: found by person within the team (never another team's), or
// by id whatever the team, each once, as merged (a withdrawal included),
// however many persons are asked for.
func testConsents(t *testing.T, e *env) {
	a := e.enroll("bus-a", "cd88")
	b := e.enroll("bus-b", "cd54")
	p1, p2, p3 := ident.New(), ident.New(), ident.New()
	c1 := consentOf(t, p1, 1, domain.FinaliteSuivi)
	c2 := consentOf(t, p1, 2, domain.FinaliteDiagnostic)
	c3 := consentOf(t, p3, 3, domain.FinaliteSuivi)
	e.apply(a.ID, []change.Change{c1, c2, c3})
	foreign := consentOf(t, p2, 1, domain.FinaliteSuivi)
	e.apply(b.ID, []change.Change{foreign})

	// Many persons asked at once, more than one statement's worth.
	many := []ident.ID{p2}
	for range 1200 {
		many = append(many, ident.New())
	}
	many = append(many, p1)
	got := e.consents("cd88", many, nil)
	if len(got) != 2 || got[c1.ID] == nil || got[c2.ID] == nil {
		t.Fatalf("consents of p1 (and of p2, of team cd54): got %v, want c1 and c2", got)
	}
	if got[c1.ID].Beneficiaire != p1 || !slices.Equal(got[c1.ID].Active(), []string{domain.FinaliteSuivi}) {
		t.Fatalf("c1 as stored: %+v", got[c1.ID])
	}
	if got := e.consents("cd54", []ident.ID{p1, p3}, nil); len(got) != 0 {
		t.Fatalf("team cd54 sees the consents of team cd88: %v", got)
	}
	if got := e.consents("cd88", nil, nil); len(got) != 0 {
		t.Fatalf("nothing asked, got %v", got)
	}

	// By id: any team (the caller tells a foreign one by its Team), and
	// a consent found both ways once.
	cs, err := e.s.Consents(e.ctx, "cd88", []ident.ID{p1}, []ident.ID{foreign.ID, c1.ID, ident.New()})
	if err != nil {
		t.Fatal(err)
	}
	teams := map[ident.ID]string{}
	for _, c := range cs {
		if _, twice := teams[c.ID]; twice {
			t.Fatalf("consent %s given twice", c.ID)
		}
		teams[c.ID] = c.Team
	}
	if len(teams) != 3 || teams[foreign.ID] != "cd54" || teams[c1.ID] != "cd88" || teams[c2.ID] != "cd88" {
		t.Fatalf("consents by person and by id: %v", teams)
	}

	// A withdrawal merged later is what the next look-up sees.
	e.apply(a.ID, []change.Change{upsert(t, domain.KindConsent, c3.ID, 4, stamp(4), map[uint64]any{fRetireLe: "2026-03-03"})})
	got = e.consents("cd88", []ident.ID{p3}, nil)
	if c := got[c3.ID]; len(got) != 1 || c == nil || c.Beneficiaire != p3 || len(c.Active()) != 0 {
		t.Fatalf("after the withdrawal: %v", got)
	}
	// A deleted consent is still given, as a tombstone.
	e.apply(a.ID, []change.Change{op(domain.KindConsent, c2.ID, change.OpDelete, 5, stamp(5))})
	cs, err = e.s.Consents(e.ctx, "cd88", []ident.ID{p1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.State.IsDeleted() != (c.ID == c2.ID) {
			t.Fatalf("consent %s deleted: %v", c.ID, c.State.IsDeleted())
		}
	}
}
