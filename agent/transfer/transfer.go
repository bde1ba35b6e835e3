// Package transfer is the agent's end of the transfer by USB stick, for a
// vehicle out of coverage for weeks: Export writes the pending changes
// as a bundle for the hub, ImportReceipt takes the hub's receipt of it,
// ImportBundle applies the team's changes the hub wrote for this laptop.
// The format is internal/bundle's (schema/bundle.cddl); docs/CLI.md,
// « Transfert par clé USB », says how mediators use it.
//
// Each mirrors a step of a live sync, with the same store operations:
// the outbox read as a push reads it (sealed bodies while locked, the
// push key signing, as a push-only session), a receipt taken as an Ack
// (refusals recorded, then the ack, which never moves back, after the
// tag check of a Welcome), the team's pages applied as pulled pages
// (store.ApplyRemote, with their cursor and tag).
package transfer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/apperr"
	"numeribus/internal/bundle"
	"numeribus/internal/change"
	"numeribus/internal/seal"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// Cutting the outbox into parts: a push batch's count, and at most 1 MiB
// of changes (the hub applies a part as one batch; a frame holds 4 MiB).
const (
	partChanges = 2000
	partBytes   = 1 << 20
)

// Exported is what an export wrote.
type Exported struct {
	From, To uint64 // the changes (From, To] of this device
	Changes  int
	Parts    int
	Signer   bundle.Signer // SignerDevice, or SignerPush when locked
	// Waiting counts the pending changes left out: written before the
	// enrollment and not sealed to the hub yet, they wait for an unlock.
	Waiting uint64
	// Resent counts the records refused for want of a consent the hub
	// had not received, written again before the export
	// (store.ResendConsented).
	Resent int
}

// Export writes to dst, as one bundle sealed to the hub and signed by
// this device, its changes after seq from — when from is nil, after its
// acknowledged mark: the outbox. An unlocked store signs with the device
// key; a locked one with the push key, and exports the bodies sealed to
// the hub at write time, as a push-only session sends them.
func Export(ctx context.Context, st *store.Store, from *uint64, dst io.Writer, now time.Time) (Exported, error) {
	var res Exported
	h, err := st.Hub(ctx)
	if err != nil {
		return res, err
	}
	if len(h.HubKey) != seal.EnvelopeKeySize {
		return res, apperr.Errorf(apperr.State, "ce poste ne connaît pas la clé du hub : inscrivez-le de nouveau")
	}
	locked := st.Locked()
	if !locked {
		resent, err := st.ResendConsented(ctx)
		if err != nil {
			return res, fmt.Errorf("writing again what the hub refused for want of a consent: %w", err)
		}
		res.Resent = len(resent)
	}
	last, acked, err := st.Seqs(ctx)
	if err != nil {
		return res, err
	}
	res.From = acked
	if from != nil {
		if *from > last {
			return res, apperr.Errorf(apperr.Usage, "--from %d : ce poste n'a que %d modification(s)", *from, last)
		}
		res.From = *from
	}
	var fromTag []byte
	if res.From > 0 {
		if fromTag, err = st.ChangeTag(ctx, res.From); err != nil {
			return res, err
		}
		if fromTag == nil {
			return res, apperr.Errorf(apperr.State, "le journal de ce poste n'a pas de modification n° %d : synchronisez-le en ligne", res.From)
		}
	}
	w, err := bundle.NewWriter(bundle.DeviceChanges, h.HubKey)
	if err != nil {
		return res, err
	}
	res.To = res.From
	var part []wire.Change
	keys := map[uint64][]byte{}
	size := 0
	flush := func() error {
		if len(part) == 0 {
			return nil
		}
		p := &wire.Push{Batch: uint64(res.Parts + 1), Changes: part}
		for _, c := range part {
			if c.Sealed != nil {
				if p.Keys == nil {
					p.Keys = map[uint64][]byte{}
				}
				p.Keys[c.KeyID] = keys[c.KeyID]
			}
		}
		frame, err := wire.Encode(p)
		if err != nil {
			return fmt.Errorf("encoding part %d: %w", res.Parts+1, err)
		}
		if err := w.Add(frame); err != nil {
			return err
		}
		res.Parts++
		part, size = nil, 0
		return nil
	}
	for {
		cs, err := pending(ctx, st, locked, res.To, keys)
		if err != nil {
			return res, err
		}
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			if c.Seq != res.To+1 {
				return res, apperr.Errorf(apperr.State, "le journal de ce poste saute du n° %d au n° %d : synchronisez-le en ligne", res.To, c.Seq)
			}
			sz := wire.EncodedSize(&c)
			if len(part) > 0 && (len(part) == partChanges || size+sz > partBytes) {
				if err := flush(); err != nil {
					return res, err
				}
			}
			part, size = append(part, c), size+sz
			res.To, res.Changes = c.Seq, res.Changes+1
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.Waiting = last - res.To
	ss, err := st.SyncState(ctx)
	if err != nil {
		return res, err
	}
	m := bundle.Manifest{Device: st.Device(), Created: now.UnixMilli(), Hub: h.HubKey, From: res.From, FromTag: fromTag, To: res.To,
		Cursor: ss.PullCursor, CursorTag: ss.PullTag}
	key := h.PushKey
	m.Signer, res.Signer = bundle.SignerPush, bundle.SignerPush
	if !locked {
		if key, err = st.DeviceKey(ctx); err != nil {
			return res, err
		}
		m.Signer, res.Signer = bundle.SignerDevice, bundle.SignerDevice
	}
	if _, err := w.Finish(dst, m, func(msg []byte) ([]byte, error) { return ed25519.Sign(key, msg), nil }); err != nil {
		return res, err
	}
	return res, nil
}

// pending reads the next changes of the log after seq after as a push
// carries them: in clear fields when the store is unlocked (the whole
// bundle is sealed to the hub), sealed to the hub otherwise — those
// written before the enrollment have no such copy until an unlock, and
// the reading stops before the first of them.
func pending(ctx context.Context, st *store.Store, locked bool, after uint64, keys map[uint64][]byte) ([]wire.Change, error) {
	if locked {
		ss, ks, err := st.PendingSealed(ctx, after, partChanges)
		if err != nil {
			return nil, err
		}
		out := make([]wire.Change, len(ss))
		for i, c := range ss {
			out[i] = wire.Change{Kind: wire.KindCode(c.Kind), ID: c.ID, Op: c.Op, HLC: c.HLC, Seq: c.Seq, Sealed: c.Body, KeyID: c.KeyID}
		}
		for id, k := range ks {
			keys[id] = k
		}
		return out, nil
	}
	cs, err := st.Pending(ctx, after, partChanges)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Change, len(cs))
	for i := range cs {
		if out[i], err = wire.FromChange(&cs[i]); err != nil {
			return nil, fmt.Errorf("encoding change %d: %w", cs[i].Seq, err)
		}
	}
	return out, nil
}

// Receipt is what taking a receipt did.
type Receipt struct {
	HWM      uint64 // the hub's mark for this device
	Acked    uint64 // this store's acknowledged mark after it
	Applied  uint64 // changes the hub newly applied from the bundle
	Rejected []wire.Rejection
	// Again says this receipt had been taken already: only its ack
	// counted (it never moves back), not its refusals.
	Again bool
}

// Errors of the agent's imports, in French for the mediator.
var (
	errNotThisDevice = apperr.New(apperr.Invalid, "ce fichier est destiné à un autre poste : rien n'a été importé")
	errDeviceBundle  = apperr.New(apperr.Invalid, "ce paquet contient les modifications d'un poste pour le hub : il s'importe au hub (« hub import »)")
)

// hubSigned says a failed check of the hub's signature in French.
func hubSigned(err error, what string) error {
	var mm *tlspin.MismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mm):
		return apperr.Errorf(apperr.Invalid, "%s a été signé par un autre hub que celui de ce poste : refusé, rien n'a été importé", what)
	case errors.Is(err, tlspin.ErrBadSignature):
		return apperr.Errorf(apperr.Invalid, "signature invalide : %s forgé ou altéré, rien n'a été importé", what)
	}
	return apperr.Errorf(apperr.State, "%s ne peut pas être vérifié (%v) : rien n'a été importé", what, err)
}

// ImportReceipt takes the hub's receipt in src: after checking it is
// signed by the hub this laptop pinned, for this device, and that the
// hub's change at its mark is this store's own (its tag), it records the
// refusals and marks every change up to the mark sent, as a live Ack
// does. It needs no passphrase.
func ImportReceipt(ctx context.Context, st *store.Store, src io.Reader, now time.Time) (Receipt, error) {
	var res Receipt
	h, err := st.Hub(ctx)
	if err != nil {
		return res, err
	}
	rc, msg, err := bundle.ReadReceipt(src)
	if err != nil {
		return res, err
	}
	if err := hubSigned(tlspin.Verify(rc.Cert, h.CertFingerprint, msg, rc.Sig), "ce reçu"); err != nil {
		return res, err
	}
	if rc.Device != st.Device() {
		return res, errNotThisDevice
	}
	res.HWM, res.Applied, res.Rejected = rc.HWM, rc.Applied, rc.Rejected
	if rc.HWM > 0 {
		tag, err := st.ChangeTag(ctx, rc.HWM)
		if err != nil {
			return res, err
		}
		if tag == nil || !bytes.Equal(tag, rc.Tag) {
			return res, apperr.Errorf(apperr.State, "ce reçu ne correspond pas aux modifications de ce poste "+
				"(la n° %d du hub n'est pas celle de ce poste : magasin restauré d'une copie ?) : synchronisez en ligne ; rien n'a été marqué", rc.HWM)
		}
	}
	fresh, err := st.TakeReceipt(ctx, rc.Bundle, rc.HWM, rc.Rejected, now)
	if err != nil {
		return res, err
	}
	res.Again = !fresh
	if _, res.Acked, err = st.Seqs(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// Imported is what importing the team's bundle did.
type Imported struct {
	From, To uint64 // the hub cursors the bundle covers
	Changes  int
	// Skipped counts changes that do not decode or are stamped beyond the
	// clock's bound, as a pull skips them.
	Skipped int
	Cursor  uint64 // this store's pull cursor after
	// Already says the bundle held nothing beyond what this store had
	// pulled: applied again, it changed nothing.
	Already bool
}

// ImportBundle applies the team's changes the hub wrote for this laptop
// (`hub export`), as pulled pages: after checking it is sealed to this
// device, signed by the hub it pinned, and follows its pull cursor, page
// by page with the cursor and its tag, idempotently: an older bundle, or
// one imported twice, changes nothing. The store must be unlocked (the
// device key opens it; the records are sealed).
func ImportBundle(ctx context.Context, st *store.Store, src io.ReadSeeker) (Imported, error) {
	var res Imported
	h, err := st.Hub(ctx)
	if err != nil {
		return res, err
	}
	dk, err := st.DeviceKey(ctx)
	if err != nil {
		return res, err
	}
	xk, err := seal.FromEd25519(dk)
	clear(dk)
	if err != nil {
		return res, err
	}
	r, err := bundle.Open(src)
	if err != nil {
		return res, err
	}
	defer r.Close()
	head := r.Head()
	if head.Kind == bundle.DeviceChanges {
		return res, errDeviceBundle
	}
	if !bytes.Equal(head.Recipient, bundle.RecipientID(xk.Public())) {
		return res, errNotThisDevice
	}
	key, err := xk.OpenFor(head.EPK, seal.PurposeBundle)
	if err != nil {
		return res, fmt.Errorf("%w (%v)", bundle.ErrTampered, err)
	}
	m, err := r.Manifest(key)
	if err != nil {
		return res, err
	}
	if err := hubSigned(tlspin.Verify(m.Hub, h.CertFingerprint, r.Signed(), m.Sig), "ce paquet"); err != nil {
		return res, err
	}
	if m.Device != st.Device() {
		return res, errNotThisDevice
	}
	if err := r.Check(); err != nil {
		return res, err
	}
	ss, err := st.SyncState(ctx)
	if err != nil {
		return res, err
	}
	res.From, res.To, res.Already = m.From, m.To, m.To <= ss.PullCursor
	if err := checkPages(r, m, ss, &res); err != nil {
		return res, err
	}
	if err := r.Rewind(); err != nil {
		return res, err
	}
	cursor, tag := ss.PullCursor, ss.PullTag
	for {
		frame, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		page, cs, err := decodePage(frame)
		if err != nil {
			return res, err
		}
		if page.Next > cursor {
			cursor, tag = page.Next, page.Tag
		}
		if len(cs) == 0 && cursor == ss.PullCursor && bytes.Equal(tag, ss.PullTag) {
			continue
		}
		skipped, err := st.ApplyRemote(ctx, cs, cursor, tag)
		if err != nil {
			return res, err
		}
		res.Skipped += skipped
		ss.PullCursor, ss.PullTag = cursor, tag
	}
	res.Cursor = cursor
	return res, nil
}

// checkPages reads every page without applying anything: each must
// decode as a pulled page does, the pages must run from the manifest's
// From to its To, and the bundle must follow this store's pull cursor —
// start at or before it, and where a page ends at it, with the tag this
// store holds (else the hub's log was rewritten since: restored from a
// backup).
func checkPages(r *bundle.Reader, m *bundle.Manifest, ss store.SyncState, res *Imported) error {
	if m.From > ss.PullCursor {
		return apperr.Errorf(apperr.State, "il manque à ce poste les modifications de l'équipe entre le n° %d et le n° %d du hub : "+
			"demandez au coordinateur un export complet (« hub export --device NOM --all ») ; rien n'a été importé", ss.PullCursor, m.From)
	}
	stale := func(at uint64, tag []byte) error {
		if at == ss.PullCursor && at > 0 && !bytes.Equal(tag, ss.PullTag) {
			return apperr.Errorf(apperr.State, "le journal du hub a changé depuis la dernière réception de ce poste (hub restauré ?) : "+
				"demandez au coordinateur un export complet (« hub export --device NOM --all ») ; rien n'a été importé")
		}
		return nil
	}
	if err := stale(m.From, m.FromTag); err != nil {
		return err
	}
	cursor := m.From
	for {
		frame, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		page, cs, err := decodePage(frame)
		if err != nil {
			return err
		}
		if page.Next < cursor || page.Reset {
			return fmt.Errorf("%w (une page revient du n° %d au n° %d)", bundle.ErrTampered, cursor, page.Next)
		}
		if err := stale(page.Next, page.Tag); err != nil {
			return err
		}
		cursor = page.Next
		res.Changes += len(cs)
	}
	if cursor != m.To {
		return fmt.Errorf("%w (le manifeste annonce le n° %d, la dernière page finit au n° %d)", bundle.ErrTampered, m.To, cursor)
	}
	return nil
}

// decodePage decodes a part of the team's bundle: a Changes page, whose
// changes convert as a pull's do.
func decodePage(frame []byte) (*wire.Changes, []change.Change, error) {
	msg, err := wire.Decode(frame)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%v)", bundle.ErrTampered, err)
	}
	page, ok := msg.(*wire.Changes)
	if !ok {
		return nil, nil, fmt.Errorf("%w (une partie de type %s au lieu d'une page)", bundle.ErrTampered, msg.Type())
	}
	cs := make([]change.Change, 0, len(page.Changes))
	for i := range page.Changes {
		c, err := page.Changes[i].ToChange()
		if err != nil {
			return nil, nil, fmt.Errorf("%w (%v)", bundle.ErrTampered, err)
		}
		if c.Device == "" {
			return nil, nil, fmt.Errorf("%w (une modification sans son appareil)", bundle.ErrTampered)
		}
		cs = append(cs, c)
	}
	return page, cs, nil
}
