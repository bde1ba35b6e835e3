package transfer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"numeribus/agent/store"
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

// hubSide is what a test plays of the hub: its envelope key and its
// certificate with the key that signs.
type hubSide struct {
	env  *seal.HubKey
	cert []byte
	key  *ecdsa.PrivateKey
}

func newHubSide(t *testing.T) hubSide {
	t.Helper()
	env, err := seal.NewHubKey()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hub"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return hubSide{env: env, cert: der, key: key}
}

func (h hubSide) sign(msg []byte) ([]byte, error) { return tlspin.Sign(h.key, msg) }

// agent is an enrolled store with its device key.
type agent struct {
	st  *store.Store
	key ed25519.PrivateKey
	hub store.Hub
}

func newAgent(t *testing.T, h hubSide) agent {
	t.Helper()
	ctx := context.Background()
	st, _, err := store.Create(ctx, filepath.Join(t.TempDir(), "agent"), []byte("phrase"), store.Options{KDF: seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	_, pk, _ := ed25519.GenerateKey(rand.Reader)
	hub := store.Hub{URL: "wss://hub/sync", CertFingerprint: tlspin.Fingerprint(h.cert), HubKey: h.env.Public(), DeviceName: "bus-1", Team: "cd88", PushKey: pk}
	if err := st.Enroll(ctx, hub, dk); err != nil {
		t.Fatal(err)
	}
	return agent{st: st, key: dk, hub: hub}
}

// openExport reads an agent's bundle as the hub does, and returns its
// manifest and its changes.
func openExport(t *testing.T, h hubSide, file []byte, signer ed25519.PublicKey) (*bundle.Manifest, []wire.Change) {
	t.Helper()
	r, err := bundle.Open(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Head().Recipient, bundle.RecipientID(h.env.Public())) {
		t.Fatal("not sealed to the hub")
	}
	key, err := h.env.OpenFor(r.Head().EPK, seal.PurposeBundle)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Manifest(key)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(signer, r.Signed(), m.Sig) {
		t.Fatal("the bundle's signature does not verify with the expected key")
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	var cs []wire.Change
	for {
		f, err := r.Next()
		if err == io.EOF {
			return m, cs
		}
		if err != nil {
			t.Fatal(err)
		}
		msg, err := wire.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		p := msg.(*wire.Push)
		for _, c := range p.Changes {
			if c.Sealed != nil && p.Keys[c.KeyID] == nil {
				t.Fatalf("change %d sealed with key %d, absent from its part", c.Seq, c.KeyID)
			}
		}
		cs = append(cs, p.Changes...)
	}
}

// Unlocked, the outbox goes in clear fields inside the sealed bundle,
// signed by the device key, cut in parts of at most 2,000 changes;
// locked, the bodies sealed to the hub at write time, signed by the push
// key; after an ack, from the acknowledged mark with its tag.
func TestExport(t *testing.T) {
	ctx := context.Background()
	h := newHubSide(t)
	a := newAgent(t, h)
	if _, err := a.st.Save(ctx, fixture.Generate(fixture.Options{N: 1200, Seed: 1}).Records()...); err != nil {
		t.Fatal(err)
	}
	last, _, _ := a.st.Seqs(ctx)
	if last <= partChanges {
		t.Fatalf("%d changes: the parts would not be cut", last)
	}
	var buf bytes.Buffer
	res, err := Export(ctx, a.st, nil, &buf, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, cs := openExport(t, h, buf.Bytes(), a.key.Public().(ed25519.PublicKey))
	if res.Changes != int(last) || res.To != last || res.From != 0 || m.To != last || len(m.Parts) != res.Parts ||
		res.Parts != int((last+partChanges-1)/partChanges) || res.Signer != bundle.SignerDevice {
		t.Fatalf("export: %+v, manifest to %d with %d parts, %d changes in the log", res, m.To, len(m.Parts), last)
	}
	for i, c := range cs {
		if c.Seq != uint64(i+1) || c.Sealed != nil || len(c.Fields) == 0 && c.Op == uint8(change.OpUpsert) {
			t.Fatalf("change %d: %+v", i, c)
		}
	}

	if err := a.st.Ack(ctx, 100); err != nil {
		t.Fatal(err)
	}
	a.st.Lock()
	buf.Reset()
	res, err = Export(ctx, a.st, nil, &buf, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, cs = openExport(t, h, buf.Bytes(), a.hub.PushKey.Public().(ed25519.PublicKey))
	tag, _ := a.st.ChangeTag(ctx, 100)
	if res.Signer != bundle.SignerPush || m.From != 100 || !bytes.Equal(m.FromTag, tag) || len(cs) != int(last-100) || cs[0].Seq != 101 || cs[0].Sealed == nil {
		t.Fatalf("locked export: %+v, from %d", res, m.From)
	}
	beyond := last + 1
	if _, err := Export(ctx, a.st, &beyond, io.Discard, time.Now()); apperr.CodeOf(err) != apperr.Usage {
		t.Fatalf("--from beyond the log: %v", err)
	}
}

func (h hubSide) receipt(t *testing.T, rc bundle.Receipt) []byte {
	t.Helper()
	if rc.Cert == nil {
		rc.Cert = h.cert
	}
	if rc.Bundle == nil {
		rc.Bundle = bytes.Repeat([]byte{1}, 32)
	}
	var buf bytes.Buffer
	if err := bundle.WriteReceipt(&buf, rc, h.sign); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A receipt acks up to its mark when the change there is this store's,
// with its refusals, once; anything else leaves the marks as they were.
func TestImportReceipt(t *testing.T) {
	ctx := context.Background()
	h := newHubSide(t)
	a := newAgent(t, h)
	if _, err := a.st.Save(ctx, fixture.Generate(fixture.Options{N: 10, Seed: 1}).Records()...); err != nil {
		t.Fatal(err)
	}
	last, _, _ := a.st.Seqs(ctx)
	tag, _ := a.st.ChangeTag(ctx, last-2)
	dev := a.st.Device()
	other := newHubSide(t)
	for _, tc := range []struct {
		name string
		file []byte
		code apperr.Code
	}{
		{"a tag that is not this store's", h.receipt(t, bundle.Receipt{Device: dev, HWM: last - 2, Tag: bytes.Repeat([]byte{7}, 16)}), apperr.State},
		{"a mark beyond this store's log", h.receipt(t, bundle.Receipt{Device: dev, HWM: last + 5, Tag: tag}), apperr.State},
		{"another device's", h.receipt(t, bundle.Receipt{Device: ident.New().String(), HWM: last - 2, Tag: tag}), apperr.Invalid},
		{"another hub's", other.receipt(t, bundle.Receipt{Device: dev, HWM: last - 2, Tag: tag}), apperr.Invalid},
		{"signed by another key", func() []byte {
			var buf bytes.Buffer
			bundle.WriteReceipt(&buf, bundle.Receipt{Device: dev, Bundle: make([]byte, 32), HWM: last - 2, Tag: tag, Cert: h.cert}, other.sign)
			return buf.Bytes()
		}(), apperr.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ImportReceipt(ctx, a.st, bytes.NewReader(tc.file), time.Now())
			if apperr.CodeOf(err) != tc.code {
				t.Fatalf("error %v (%s), want %s", err, apperr.CodeOf(err), tc.code)
			}
			if _, ack, _ := a.st.Seqs(ctx); ack != 0 {
				t.Fatalf("a refused receipt acked up to %d", ack)
			}
		})
	}
	good := h.receipt(t, bundle.Receipt{Device: dev, HWM: last - 2, Tag: tag, Applied: last - 3,
		Rejected: []wire.Rejection{{Seq: 2, Code: wire.CodeInvalid, Reason: "invalid record content: duree"}}})
	a.st.Lock() // no passphrase needed
	res, err := ImportReceipt(ctx, a.st, bytes.NewReader(good), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := a.st.RejectedChanges(ctx)
	if res.Acked != last-2 || res.Again || len(rs) != 1 || rs[0].Seq != 2 {
		t.Fatalf("receipt: %+v, refusals %+v", res, rs)
	}
	// Forgotten meanwhile (as ResendConsented forgets one it sends
	// again), a refusal does not come back with the same receipt.
	a.st.Lock()
	res, err = ImportReceipt(ctx, a.st, bytes.NewReader(good), time.Now())
	if err != nil || !res.Again || res.Acked != last-2 {
		t.Fatalf("the same receipt again: %+v %v", res, err)
	}
}

// teamBundle writes the hub's bundle for a: pages of another device's
// changes, each page one activity, from cursor from with tag ftag.
func (h hubSide) teamBundle(t *testing.T, a agent, acts []*domain.Activity, from uint64, ftag []byte) ([]byte, uint64, []byte) {
	t.Helper()
	xpub, err := seal.X25519FromEd25519(a.key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	w, err := bundle.NewWriter(bundle.TeamChanges, xpub)
	if err != nil {
		t.Fatal(err)
	}
	next, tag := from, ftag
	for i, act := range acts {
		f, err := change.Encode(act)
		if err != nil {
			t.Fatal(err)
		}
		c := change.Change{Kind: domain.KindActivity, ID: act.ID, Op: change.OpUpsert, Fields: f, HLC: hlc.FromTime(time.Now()) + hlc.Timestamp(i), Seq: uint64(i + 1)}
		wc, err := wire.FromChange(&c)
		if err != nil {
			t.Fatal(err)
		}
		next += 3 // other teams' changes between
		wc.Device, wc.HubSeq = "0190a1b2-0000-7000-8000-00000000000b", next
		tag = bytes.Repeat([]byte{byte(next)}, 16)
		frame, err := wire.Encode(&wire.Changes{Changes: []wire.Change{wc}, Next: next, Tag: tag, More: i < len(acts)-1})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(frame); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	m := bundle.Manifest{Device: a.st.Device(), Signer: bundle.SignerHub, Hub: h.cert, From: from, FromTag: ftag, To: next, ToTag: tag}
	if _, err := w.Finish(&buf, m, h.sign); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), next, tag
}

// The team's bundle applies as pulled pages, with the cursor and its
// tag; again, or an older one, changes nothing; one that does not follow
// the cursor, or another hub's, is refused whole.
func TestImportBundle(t *testing.T) {
	ctx := context.Background()
	h := newHubSide(t)
	a := newAgent(t, h)
	acts := fixture.Generate(fixture.Options{N: 12, Seed: 4}).Activities
	first, next, tag := h.teamBundle(t, a, acts[:6], 0, nil)
	res, err := ImportBundle(ctx, a.st, bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := a.st.SyncState(ctx)
	if res.Changes != 6 || res.Cursor != next || ss.PullCursor != next || !bytes.Equal(ss.PullTag, tag) || res.Already {
		t.Fatalf("import: %+v, cursor %d", res, ss.PullCursor)
	}
	for _, act := range acts[:6] {
		if _, err := a.st.Get(ctx, act.ID); err != nil {
			t.Fatalf("activity %s not applied: %v", act.ID, err)
		}
	}
	if res, err := ImportBundle(ctx, a.st, bytes.NewReader(first)); err != nil || !res.Already || res.Cursor != next {
		t.Fatalf("again: %+v %v", res, err)
	}
	if ss2, _ := a.st.SyncState(ctx); ss2.PullCursor != next || !bytes.Equal(ss2.PullTag, tag) {
		t.Fatalf("the same bundle again moved the cursor to %d", ss2.PullCursor)
	}
	for _, tc := range []struct {
		name string
		file []byte
		code apperr.Code
	}{
		{"after a gap", func() []byte { b, _, _ := h.teamBundle(t, a, acts[6:], next+10, bytes.Repeat([]byte{1}, 16)); return b }(), apperr.State},
		{"from the cursor of another log", func() []byte { b, _, _ := h.teamBundle(t, a, acts[6:], next, bytes.Repeat([]byte{1}, 16)); return b }(), apperr.State},
		{"signed by another hub", func() []byte { b, _, _ := newHubSide(t).teamBundle(t, a, acts[6:], next, tag); return b }(), apperr.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ImportBundle(ctx, a.st, bytes.NewReader(tc.file))
			if apperr.CodeOf(err) != tc.code {
				t.Fatalf("error %v (%s), want %s", err, apperr.CodeOf(err), tc.code)
			}
			for _, act := range acts[6:] {
				if _, err := a.st.Get(ctx, act.ID); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("a refused bundle applied %s: %v", act.ID, err)
				}
			}
		})
	}
	second, next2, _ := h.teamBundle(t, a, acts[6:], next, tag)
	if res, err := ImportBundle(ctx, a.st, bytes.NewReader(second)); err != nil || res.Cursor != next2 || res.Changes != 6 {
		t.Fatalf("the next bundle: %+v %v", res, err)
	}
	// The first bundle, late: applied again, nothing moves back.
	if res, err := ImportBundle(ctx, a.st, bytes.NewReader(first)); err != nil || !res.Already || res.Cursor != next2 {
		t.Fatalf("an older bundle: %+v %v", res, err)
	}
	a.st.Lock()
	if _, err := ImportBundle(ctx, a.st, bytes.NewReader(second)); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("locked: %v", err)
	}
}
