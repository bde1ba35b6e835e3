package transfer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"numeribus/hub/certs"
	"numeribus/hub/store"
	"numeribus/hub/store/sqlite"
	"numeribus/internal/apperr"
	"numeribus/internal/bundle"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/seal"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// device is a laptop as the hub enrolled it, with its private keys.
type device struct {
	store.Device
	key, push ed25519.PrivateKey
}

type env struct {
	t   *testing.T
	h   *Hub
	st  *sqlite.Store
	fp  []byte // the certificate's fingerprint, as agents pin it
	set *fixture.Set
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "hub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pair, err := certs.Get(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	hk, err := certs.LoadOrCreateEnvelopeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, fp: pair.Fingerprint, set: fixture.Generate(fixture.Options{N: 80, Seed: 2}),
		h: &Hub{Store: st, Envelope: hk, Cert: pair.Cert.Certificate[0], Signer: pair.Cert.PrivateKey.(crypto.Signer), Dir: dir}}
}

func (e *env) enroll(name, team string) device {
	e.t.Helper()
	ctx := context.Background()
	token := []byte("jeton-" + name)
	if err := e.st.CreateEnrollment(ctx, store.Enrollment{TokenHash: sha256.Sum256(token), Name: name, Team: team, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
	kp, k, _ := ed25519.GenerateKey(rand.Reader)
	pp, p, _ := ed25519.GenerateKey(rand.Reader)
	d, err := e.st.Enroll(ctx, sha256.Sum256(token), store.Device{ID: ident.New().String(), DeviceKey: kp, PushKey: pp}, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return device{Device: d, key: k, push: p}
}

// changes returns the activities i..j of the fixture as the changes
// seqs from+1… of a device.
func (e *env) changes(from uint64, i, j int) []change.Change {
	e.t.Helper()
	var out []change.Change
	for n, a := range e.set.Activities[i:j] {
		f, err := change.Encode(a)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f,
			HLC: hlc.FromTime(time.Now()) + hlc.Timestamp(n), Seq: from + uint64(n) + 1})
	}
	return out
}

// spec is a device's bundle to make.
type spec struct {
	d      device
	from   uint64
	ftag   []byte // the tag of the device's change at from
	parts  [][]change.Change
	signer bundle.Signer
	key    ed25519.PrivateKey // signs (default: the signer's key of d)
	to     []byte             // the recipient (default: the hub's envelope key)
	cursor uint64
	ctag   []byte
	create int64
}

func (e *env) bundle(s spec) []byte {
	e.t.Helper()
	if s.signer == 0 {
		s.signer = bundle.SignerDevice
	}
	if s.key == nil {
		s.key = map[bundle.Signer]ed25519.PrivateKey{bundle.SignerDevice: s.d.key, bundle.SignerPush: s.d.push}[s.signer]
	}
	if s.to == nil {
		s.to = e.h.Envelope.Public()
	}
	w, err := bundle.NewWriter(bundle.DeviceChanges, s.to)
	if err != nil {
		e.t.Fatal(err)
	}
	m := bundle.Manifest{Device: s.d.ID, Signer: s.signer, Created: s.create, Hub: s.to, From: s.from, FromTag: s.ftag, To: s.from,
		Cursor: s.cursor, CursorTag: s.ctag}
	for i, cs := range s.parts {
		p := &wire.Push{Batch: uint64(i + 1)}
		for _, c := range cs {
			wc, err := wire.FromChange(&c)
			if err != nil {
				e.t.Fatal(err)
			}
			p.Changes = append(p.Changes, wc)
			m.To = c.Seq
		}
		frame, err := wire.Encode(p)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := w.Add(frame); err != nil {
			e.t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.Finish(&buf, m, func(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }); err != nil {
		e.t.Fatal(err)
	}
	return buf.Bytes()
}

// state is what the hub holds: counts, the log and the devices' marks.
func (e *env) state() string {
	e.t.Helper()
	ctx := context.Background()
	stats, err := e.st.Stats(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	ds, err := e.st.Devices(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	s := fmt.Sprintf("%v %d", stats.Records, stats.Changes)
	for _, d := range ds {
		s += fmt.Sprintf(" %s:%d", d.Name, d.HWM)
	}
	return s
}

func tagOf(c change.Change) []byte { return wire.ChangeTag(c.Seq, uint64(c.HLC), c.ID, uint8(c.Op)) }

// A bundle goes through the path of a live push: activities applied, a
// person without a consent taken without their identifying fields and
// the refusal told; the receipt says the mark and its tag, signed by the
// certificate the agents pinned. The same bundle again changes nothing.
func TestImportAppliesLikeAPush(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d := e.enroll("bus-1", "cd88")
	person := &domain.Beneficiary{ID: ident.New(), Prenom: "Gwendoline", Nom: "Testerman", Genre: "feminin", Commune: "88413", StatutSocial: "retraite"}
	pf, err := change.Encode(person)
	if err != nil {
		t.Fatal(err)
	}
	first := e.changes(0, 0, 20)
	second := e.changes(20, 20, 30)
	pc := change.Change{Kind: domain.KindBeneficiary, ID: person.ID, Op: change.OpUpsert, Fields: pf, HLC: hlc.FromTime(time.Now()), Seq: 31}
	second = append(second, pc)
	file := e.bundle(spec{d: d, parts: [][]change.Change{first, second}})

	res, err := e.h.Import(ctx, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes != 31 || res.Applied != 31 || len(res.Rejected) != 1 || res.Rejected[0].Code != wire.CodeNoConsent || res.Rejected[0].Seq != 31 {
		t.Fatalf("import: %d changes, %d applied, refused %+v", res.Changes, res.Applied, res.Rejected)
	}
	rc := res.Receipt
	if rc.HWM != 31 || !bytes.Equal(rc.Tag, tagOf(pc)) || len(rc.Rejected) != 1 || rc.Device != d.ID {
		t.Fatalf("receipt %+v", rc)
	}
	_, _, st, err := e.st.Record(ctx, person.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := change.Decode(domain.KindBeneficiary, person.ID, st.Live())
	if b := got.(*domain.Beneficiary); b.Nom != "" || b.Prenom != "" || b.StatutSocial != "retraite" {
		t.Fatalf("the person at the hub: %+v", b)
	}
	var buf bytes.Buffer
	if err := e.h.WriteReceipt(&buf, rc); err != nil {
		t.Fatal(err)
	}
	back, msg, err := bundle.ReadReceipt(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlspin.Verify(back.Cert, e.fp, msg, back.Sig); err != nil {
		t.Fatalf("the receipt does not verify against the pinned certificate: %v", err)
	}

	after := e.state()
	again, err := e.h.Import(ctx, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if again.Applied != 0 || again.Receipt.HWM != 31 || e.state() != after {
		t.Fatalf("the same bundle again: %d applied, mark %d; %s, was %s", again.Applied, again.Receipt.HWM, e.state(), after)
	}
	// The next bundle, from the mark, signed by the push key (a locked
	// agent), follows.
	third := e.changes(31, 30, 35)
	res, err = e.h.Import(ctx, bytes.NewReader(e.bundle(spec{d: d, from: 31, ftag: tagOf(pc), parts: [][]change.Change{third}, signer: bundle.SignerPush})))
	if err != nil || res.Applied != 5 || res.Device.HWM != 36 {
		t.Fatalf("the next bundle: %+v %v", res, err)
	}
}

// What must be refused is refused, with nothing applied.
func TestImportRefuses(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d := e.enroll("bus-1", "cd88")
	revoked := e.enroll("bus-2", "cd88")
	if err := e.st.Revoke(ctx, "bus-2", time.Now()); err != nil {
		t.Fatal(err)
	}
	base := e.changes(0, 0, 10)
	if _, err := e.h.Import(ctx, bytes.NewReader(e.bundle(spec{d: d, parts: [][]change.Change{base}}))); err != nil {
		t.Fatal(err)
	}
	_, thief, _ := ed25519.GenerateKey(rand.Reader)
	stranger := device{Device: store.Device{ID: ident.New().String()}, key: thief}
	otherHub, _ := seal.NewHubKey()
	// A store restored from a copy: change 10 is other work.
	diverged := e.changes(0, 40, 51)
	next := e.changes(10, 10, 15)
	for _, tc := range []struct {
		name string
		file []byte
		code apperr.Code
		want error
	}{
		{"signed by another key", e.bundle(spec{d: d, from: 10, parts: [][]change.Change{next}, key: thief}), apperr.Invalid, errForged},
		{"signed by the push key, said the device key's", e.bundle(spec{d: d, from: 10, parts: [][]change.Change{next}, key: d.push}), apperr.Invalid, errForged},
		{"from an unknown device", e.bundle(spec{d: stranger, parts: [][]change.Change{base}}), apperr.Refused, nil},
		{"from a revoked device", e.bundle(spec{d: revoked, parts: [][]change.Change{base}}), apperr.Refused, nil},
		{"for another hub", e.bundle(spec{d: d, from: 10, parts: [][]change.Change{next}, to: otherHub.Public()}), apperr.Invalid, errNotForThisHub},
		{"after a gap", e.bundle(spec{d: d, from: 12, parts: [][]change.Change{e.changes(12, 10, 15)}}), apperr.State, nil},
		{"from a store gone back in time", e.bundle(spec{d: d, parts: [][]change.Change{diverged[:10]}}), apperr.State, nil},
		{"overlapping with other work", e.bundle(spec{d: d, parts: [][]change.Change{append(base[:9:9], diverged[9:11]...)}}), apperr.State, nil},
		{"seqs with a hole", e.bundle(spec{d: d, from: 10, parts: [][]change.Change{{next[0], next[2]}}}), apperr.Invalid, bundle.ErrTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.state()
			_, err := e.h.Import(ctx, bytes.NewReader(tc.file))
			if err == nil {
				t.Fatal("imported")
			}
			if apperr.CodeOf(err) != tc.code || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("error %v (%s), want %s %v", err, apperr.CodeOf(err), tc.code, tc.want)
			}
			if got := e.state(); got != before {
				t.Fatalf("a refused bundle changed the hub: %s, was %s", got, before)
			}
		})
	}
	// The genuine next bundle is taken: the refusals above were for what
	// they say.
	res, err := e.h.Import(ctx, bytes.NewReader(e.bundle(spec{d: d, from: 10, ftag: tagOf(base[9]), parts: [][]change.Change{next}})))
	if err != nil || res.Applied != 5 {
		t.Fatalf("the genuine next bundle: %+v %v", res, err)
	}
}

// The team's bundle for a device: sealed to the key its Ed25519 device
// key converts to, signed by the pinned certificate, holding the team's
// changes but the device's own, from the cursor the device reported in
// its last bundle — an older bundle imported later does not move it back.
func TestExportForADevice(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.enroll("bus-1", "cd88")
	b := e.enroll("bus-2", "cd88")
	e.enroll("bus-9", "cd23")
	firstA := e.changes(0, 0, 25)
	if _, err := e.h.Import(ctx, bytes.NewReader(e.bundle(spec{d: a, parts: [][]change.Change{firstA}}))); err != nil {
		t.Fatal(err)
	}
	open := func(file []byte, priv ed25519.PrivateKey) (*bundle.Manifest, [][]wire.Change, error) {
		r, err := bundle.Open(bytes.NewReader(file))
		if err != nil {
			return nil, nil, err
		}
		xk, _ := seal.FromEd25519(priv)
		if !bytes.Equal(r.Head().Recipient, bundle.RecipientID(xk.Public())) {
			return nil, nil, errors.New("not for this device")
		}
		key, _ := xk.OpenFor(r.Head().EPK, seal.PurposeBundle)
		m, err := r.Manifest(key)
		if err != nil {
			return nil, nil, err
		}
		if err := tlspin.Verify(m.Hub, e.fp, r.Signed(), m.Sig); err != nil {
			return nil, nil, err
		}
		if err := r.Check(); err != nil {
			return nil, nil, err
		}
		var pages [][]wire.Change
		for {
			f, err := r.Next()
			if err == io.EOF {
				return m, pages, nil
			}
			if err != nil {
				return nil, nil, err
			}
			msg, err := wire.Decode(f)
			if err != nil {
				return nil, nil, err
			}
			pages = append(pages, msg.(*wire.Changes).Changes)
		}
	}
	var buf bytes.Buffer
	res, err := e.h.Export(ctx, "bus-2", nil, &buf)
	if err != nil {
		t.Fatal(err)
	}
	m, pages, err := open(buf.Bytes(), b.key)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pages {
		for _, c := range p {
			if c.Device != a.ID {
				t.Fatalf("a change of %s in bus-2's bundle", c.Device)
			}
			n++
		}
	}
	if n != 25 || res.Changes != 25 || res.From != 0 || m.To != res.To || m.Device != b.ID || res.Reported {
		t.Fatalf("bundle for bus-2: %d changes, %+v, manifest to %d", n, res, m.To)
	}
	if _, _, err := open(buf.Bytes(), a.key); err == nil {
		t.Fatal("bus-1 opened bus-2's bundle")
	}
	// A's own bundle holds none of its own changes.
	var own bytes.Buffer
	if res, err := e.h.Export(ctx, "bus-1", nil, &own); err != nil || res.Changes != 0 {
		t.Fatalf("bus-1's bundle: %+v %v", res, err)
	}

	// bus-2 reports its cursor in a bundle; the next export starts there.
	tag, _ := e.st.LogTag(ctx, res.To)
	if _, err := e.h.Import(ctx, bytes.NewReader(e.bundle(spec{d: b, cursor: res.To, ctag: tag, create: 2000}))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.Import(ctx, bytes.NewReader(e.bundle(spec{d: a, from: 25, ftag: tagOf(firstA[24]), parts: [][]change.Change{e.changes(25, 25, 30)}}))); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	res2, err := e.h.Export(ctx, "bus-2", nil, &buf)
	if err != nil || !res2.Reported || res2.From != res.To || res2.Changes != 5 {
		t.Fatalf("second export: %+v %v", res2, err)
	}
	// An older bundle of bus-2 (cursor 0), imported late, leaves it.
	if _, err := e.h.Import(ctx, bytes.NewReader(e.bundle(spec{d: b, create: 1000}))); err != nil {
		t.Fatal(err)
	}
	if res3, err := e.h.Export(ctx, "bus-2", nil, io.Discard); err != nil || res3.From != res.To {
		t.Fatalf("after an older bundle: %+v %v", res3, err)
	}
	zero := uint64(0)
	if res4, err := e.h.Export(ctx, "bus-2", &zero, io.Discard); err != nil || res4.Changes != 30 {
		t.Fatalf("--all: %+v %v", res4, err)
	}
	if err := e.st.Revoke(ctx, "bus-2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.Export(ctx, "bus-2", nil, io.Discard); apperr.CodeOf(err) != apperr.Refused {
		t.Fatalf("export for a revoked device: %v", err)
	}
	if _, err := e.h.Export(ctx, "bus-404", nil, io.Discard); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("export for an unknown device: %v", err)
	}
}

// A bundle is one delivery: a person in one part and their consent in a
// later one (the parts cut the outbox where they may) are taken whole,
// as when both come in one live batch; a consent the hub refuses counts
// for nobody.
func TestConsentAnywhereInTheBundle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d := e.enroll("bus-1", "cd88")
	now := hlc.FromTime(time.Now())
	person := func(seq uint64) (*domain.Beneficiary, change.Change) {
		b := &domain.Beneficiary{ID: ident.New(), Prenom: "Aurélienne", Nom: "Testerman", Genre: "feminin", Commune: "88413"}
		f, err := change.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		return b, change.Change{Kind: domain.KindBeneficiary, ID: b.ID, Op: change.OpUpsert, Fields: f, HLC: now + hlc.Timestamp(seq), Seq: seq}
	}
	consent := func(b *domain.Beneficiary, seq uint64, stamp hlc.Timestamp) change.Change {
		c := &domain.Consent{ID: ident.New(), Beneficiaire: b.ID, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-01"}
		f, err := change.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return change.Change{Kind: domain.KindConsent, ID: c.ID, Op: change.OpUpsert, Fields: f, HLC: stamp, Seq: seq}
	}
	p1, c1 := person(1)
	p2, c2 := person(2)
	later := consent(p1, 3, now+3)
	ahead := consent(p2, 4, hlc.FromTime(time.Now().Add(72*time.Hour))) // clock_ahead: refused
	res, err := e.h.Import(ctx, bytes.NewReader(e.bundle(spec{d: d, parts: [][]change.Change{{c1, c2}, {later, ahead}}})))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[uint64]string{}
	for _, r := range res.Rejected {
		codes[r.Seq] = r.Code
	}
	if len(codes) != 2 || codes[2] != wire.CodeNoConsent || codes[4] != wire.CodeClockAhead {
		t.Fatalf("refused %v: want person 2 (its consent refused) and that consent", codes)
	}
	for _, p := range []*domain.Beneficiary{p1, p2} {
		_, _, st, err := e.st.Record(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := change.Decode(domain.KindBeneficiary, p.ID, st.Live())
		if named := got.(*domain.Beneficiary).Nom != ""; named != (p == p1) {
			t.Fatalf("person %s named at the hub: %v", p.ID, named)
		}
	}
}
