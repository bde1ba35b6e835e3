// Package transfer is the hub's end of the transfer by USB stick, for a
// vehicle out of coverage for weeks: Import takes a device's bundle
// (`agent export`) through the very path of a live push and makes its
// receipt; Export writes the team's changes for one device. The format is
// internal/bundle's (schema/bundle.cddl); docs/CLI.md, « Transfert par
// clé USB », says how mediators and coordinators use it.
//
// What holds a bundle to a live sync:
//
//   - the same checks and the same store writes, change by change
//     (syncserver.ConvertPush and syncserver.ApplyPush): refusals one by
//     one, the consent check, a person's change taken without its
//     identifying fields, runs between refused changes; changes at or
//     below the device's mark are retries, skipped. Importing a bundle
//     twice, or after a live sync of the same changes, changes nothing;
//   - the device's view checked as a live session's Open is: its changes
//     follow what the hub holds of it (no gap), and the hub's change of
//     the device where the two overlap is the bundle's (the same tag), so
//     a store restored from a copy, which reuses numbers for new work, is
//     refused rather than taken for a retry;
//   - nothing applied before everything is checked: the seal of every
//     part, its hash in the signed manifest, the signature by a key the
//     device enrolled, the device not revoked, every change well formed.
package transfer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/syncserver"
	"numeribus/internal/apperr"
	"numeribus/internal/bundle"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/seal"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// Hub is what an import or an export needs of the hub.
type Hub struct {
	Store store.Store
	// Envelope is the hub's X25519 key: devices seal their bundles to it.
	Envelope *seal.HubKey
	// Cert is the hub's TLS certificate (DER), pinned by every agent, and
	// Signer its private key: receipts and the team's bundles are signed
	// with it (tlspin.Sign).
	Cert   []byte
	Signer crypto.Signer
	// Dir is the hub's data directory, where the pull cursor each device
	// reported in its last bundle is kept for Export (CursorDir).
	Dir string
	Now func() time.Time
	Log *slog.Logger
}

func (h *Hub) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Hub) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Imported is what an import did.
type Imported struct {
	Device   store.Device // as the hub holds it after the import
	Changes  int          // changes in the bundle
	Applied  int          // newly applied (the others were held already, or refused)
	Rejected []store.Rejected
	From, To uint64 // the device's seqs the bundle covers: (From, To]
	Receipt  bundle.Receipt
}

// Errors of an import or an export, in French for the coordinator.
var (
	errNotForThisHub = apperr.New(apperr.Invalid, "ce paquet est destiné à un autre hub (il n'est pas scellé pour la clé de celui-ci) : rien n'a été importé")
	errTeamBundle    = apperr.New(apperr.Invalid, "ce paquet contient les modifications de l'équipe pour un poste : il s'importe sur ce poste (« agent import-bundle »), pas au hub")
	errForged        = apperr.New(apperr.Invalid, "signature invalide : paquet forgé ou altéré, rien n'a été importé")
)

// Import verifies the bundle in src and applies its changes as a live
// push of its device would be, then returns what the receipt will say.
// src is read twice: everything is checked before anything is applied.
func (h *Hub) Import(ctx context.Context, src io.ReadSeeker) (Imported, error) {
	var res Imported
	r, err := bundle.Open(src)
	if err != nil {
		return res, err
	}
	defer r.Close()
	head := r.Head()
	if head.Kind == bundle.TeamChanges {
		return res, errTeamBundle
	}
	if !bytes.Equal(head.Recipient, bundle.RecipientID(h.Envelope.Public())) {
		return res, errNotForThisHub
	}
	key, err := h.Envelope.OpenFor(head.EPK, seal.PurposeBundle)
	if err != nil {
		return res, fmt.Errorf("%w (%v)", bundle.ErrTampered, err)
	}
	m, err := r.Manifest(key)
	if err != nil {
		return res, err
	}
	d, err := h.Store.Device(ctx, m.Device)
	if errors.Is(err, store.ErrNoDevice) {
		return res, apperr.Errorf(apperr.Refused, "paquet d'un appareil inconnu de ce hub (%s) : refusé, rien n'a été importé", m.Device)
	}
	if err != nil {
		return res, fmt.Errorf("reading device %s: %w", m.Device, err)
	}
	if !ed25519.Verify(signerKey(d, m.Signer), r.Signed(), m.Sig) {
		return res, errForged
	}
	if d.Revoked() {
		return res, apperr.Errorf(apperr.Refused, "l'appareil %s a été révoqué le %s : son paquet est refusé, rien n'a été importé",
			d.Name, d.RevokedAt.Local().Format("02/01/2006 à 15:04"))
	}
	if !bytes.Equal(m.Hub, h.Envelope.Public()) {
		return res, errNotForThisHub
	}
	if err := r.Check(); err != nil {
		return res, err
	}
	res.From, res.To = m.From, m.To
	consents, err := h.checkView(ctx, r, d, m, &res)
	if err != nil {
		return res, err
	}
	if err := r.Rewind(); err != nil {
		return res, err
	}
	open := syncserver.EnvelopeOpener(h.Envelope)
	hwm := d.HWM
	for {
		frame, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		p, err := decodePush(frame)
		if err != nil {
			return res, err
		}
		now := h.now()
		cs, rejected, bad := syncserver.ConvertPush(open, d.ID, wire.ProtocolVersion, p, now)
		if bad != nil { // checked by checkView: the file changed meanwhile
			return res, fmt.Errorf("%w (%s)", bundle.ErrTampered, bad.Msg)
		}
		out, err := syncserver.ApplyPush(ctx, h.Store, d, wire.ProtocolVersion, hwm, cs, rejected, len(frame), now, consents)
		if errors.Is(err, store.ErrGap) {
			return res, apperr.Errorf(apperr.State, "les modifications de ce paquet ne suivent pas ce que le hub a reçu de l'appareil : %w", err)
		}
		if err != nil {
			return res, fmt.Errorf("applying the bundle of %s: %w", d.Name, err)
		}
		hwm = max(hwm, out.HWM)
		res.Applied += out.Applied
		res.Rejected = append(res.Rejected, out.Rejected...)
		for _, x := range out.Rejected {
			h.log().Warn("change refused", "device", d.ID, "seq", x.Seq, "kind", x.Kind, "code", x.Code, "reason", x.Reason)
		}
	}
	if res.Device, err = h.Store.Device(ctx, d.ID); err != nil {
		return res, fmt.Errorf("reading device %s: %w", d.Name, err)
	}
	res.Receipt = bundle.Receipt{Device: d.ID, Bundle: r.ID(), HWM: res.Device.HWM, Applied: uint64(res.Applied),
		Created: h.now().UnixMilli(), Cert: h.Cert}
	if res.Receipt.HWM > 0 {
		if res.Receipt.Tag, err = h.Store.DeviceChangeTag(ctx, d.ID, res.Receipt.HWM); err != nil {
			return res, fmt.Errorf("reading the tag of %s's mark: %w", d.Name, err)
		}
	}
	for _, x := range res.Rejected {
		if x.Seq <= res.Receipt.HWM {
			res.Receipt.Rejected = append(res.Receipt.Rejected, syncserver.WireRejection(x))
		}
	}
	if err := h.keepCursor(d.ID, m); err != nil {
		h.log().Warn("the device's pull cursor not kept for its next export", "device", d.ID, "err", err)
	}
	h.log().Info("bundle imported", "device", d.ID, "changes", res.Changes, "applied", res.Applied,
		"rejected", len(res.Rejected), "hwm", res.Device.HWM)
	return res, nil
}

// signerKey returns the key of d that signs a bundle for signer: the
// device key, or the push key of a locked agent.
func signerKey(d store.Device, s bundle.Signer) ed25519.PublicKey {
	switch s {
	case bundle.SignerDevice:
		return d.DeviceKey
	case bundle.SignerPush:
		return d.PushKey
	}
	return nil
}

// decodePush decodes a part of a device's bundle: a Push frame.
func decodePush(frame []byte) (*wire.Push, error) {
	msg, err := wire.Decode(frame)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", bundle.ErrTampered, err)
	}
	p, ok := msg.(*wire.Push)
	if !ok {
		return nil, fmt.Errorf("%w (une partie de type %s au lieu d'un envoi)", bundle.ErrTampered, msg.Type())
	}
	return p, nil
}

// checkView reads every part without applying anything: each must decode
// and convert as a live push's (nothing refused whole), and their changes
// must run without gap from the manifest's From to its To. Then the
// device's view: the bundle must follow what the hub holds of the device
// (From at or below its mark), and where the two overlap the hub's change
// must be the bundle's (its tag at the last seq both hold): otherwise the
// device's store went back in time and reused those numbers, and its new
// work would be skipped as retries. A live session realigns then; a
// bundle is refused, and one online sync sets things right. It returns
// the bundle's consent changes the hub does not refuse: they count for
// the persons of every part (syncserver.ApplyPush).
func (h *Hub) checkView(ctx context.Context, r *bundle.Reader, d store.Device, m *bundle.Manifest, res *Imported) ([]change.Change, error) {
	overlap := min(d.HWM, m.To) // the last seq both hold
	var want []byte
	if overlap == m.From {
		want = m.FromTag
	}
	open := syncserver.EnvelopeOpener(h.Envelope)
	var consents []change.Change
	seq := m.From
	for {
		frame, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		p, err := decodePush(frame)
		if err != nil {
			return nil, err
		}
		cs, refused, bad := syncserver.ConvertPush(open, d.ID, wire.ProtocolVersion, p, h.now())
		if bad != nil {
			return nil, apperr.Errorf(apperr.Invalid, "paquet refusé, rien n'a été importé : %s", bad.Msg)
		}
		for i, c := range cs {
			if c.Kind == domain.KindConsent && !slices.ContainsFunc(refused, func(x store.Rejected) bool { return x.Seq == c.Seq }) {
				consents = append(consents, cs[i])
			}
			if c.Seq != seq+1 {
				return nil, fmt.Errorf("%w (modification n° %d après le n° %d)", bundle.ErrTampered, c.Seq, seq)
			}
			seq = c.Seq
			if c.Seq == overlap {
				want = wire.ChangeTag(c.Seq, uint64(c.HLC), c.ID, uint8(c.Op))
			}
		}
		res.Changes += len(cs)
	}
	if seq != m.To {
		return nil, fmt.Errorf("%w (le manifeste annonce le n° %d, le dernier est le n° %d)", bundle.ErrTampered, m.To, seq)
	}
	if m.From > d.HWM {
		return nil, apperr.Errorf(apperr.State, "il manque au hub les modifications n° %d à %d de l'appareil %s, d'avant ce paquet : "+
			"importez d'abord le paquet précédent, ou synchronisez le poste en ligne ; rien n'a été importé", d.HWM+1, m.From, d.Name)
	}
	if overlap == 0 {
		return consents, nil
	}
	got, err := h.Store.DeviceChangeTag(ctx, d.ID, overlap)
	if err != nil {
		return nil, fmt.Errorf("reading the tag of change %d of %s: %w", overlap, d.Name, err)
	}
	if len(want) == 0 || !bytes.Equal(got, want) {
		return nil, apperr.Errorf(apperr.State, "la modification n° %d de ce paquet n'est pas celle que le hub a reçue de l'appareil %s sous ce numéro "+
			"(poste restauré d'une copie ?) : synchronisez-le en ligne une fois ; rien n'a été importé", overlap, d.Name)
	}
	return consents, nil
}

// WriteReceipt signs rc with the hub's certificate key and writes it.
func (h *Hub) WriteReceipt(dst io.Writer, rc bundle.Receipt) error {
	return bundle.WriteReceipt(dst, rc, func(msg []byte) ([]byte, error) { return tlspin.Sign(h.Signer, msg) })
}

// CursorDir is the folder, in the hub's data directory, of the pull
// cursors devices reported in their bundles: where the next export for
// each starts. A hint, checked against the log by its tag: a wrong or
// lost one costs a bigger bundle, never a missing change.
const CursorDir = "transfer"

type keptCursor struct {
	Cursor  uint64 `json:"cursor"`
	Tag     string `json:"tag,omitempty"` // hex
	Created int64  `json:"created_ms"`    // the bundle's, so that an older bundle imported later does not move it back
}

func (h *Hub) cursorPath(device string) string {
	return filepath.Join(h.Dir, CursorDir, device+".json")
}

// keepCursor records the pull cursor of m's device for its next export,
// unless one from a newer bundle is kept.
func (h *Hub) keepCursor(device string, m *bundle.Manifest) error {
	if h.Dir == "" {
		return nil
	}
	if old, ok := h.keptCursor(device); ok && old.Created > m.Created {
		return nil
	}
	b, err := json.Marshal(keptCursor{Cursor: m.Cursor, Tag: hex.EncodeToString(m.CursorTag), Created: m.Created})
	if err != nil {
		return err
	}
	dir := filepath.Join(h.Dir, CursorDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeFile(h.cursorPath(device), b)
}

func (h *Hub) keptCursor(device string) (keptCursor, bool) {
	var k keptCursor
	if h.Dir == "" {
		return k, false
	}
	b, err := os.ReadFile(h.cursorPath(device))
	if err != nil || json.Unmarshal(b, &k) != nil {
		return k, false
	}
	return k, true
}

// writeFile writes b to path through a temporary file renamed over it:
// a reader sees the old file or the new one, never half of one.
func writeFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Exported is what an export wrote.
type Exported struct {
	Device  store.Device
	From    uint64 // the cursor the bundle follows
	To      uint64 // the cursor after its last change
	Changes int
	// Reported says From is the cursor the device reported in its last
	// bundle; Reset that the one reported is no longer in the hub's log
	// (restored from a backup), so the bundle starts from 0.
	Reported, Reset bool
}

// pageBytes is the budget of one part of the team's bundle, a pull's
// default page.
const pageBytes = 1 << 20

// Export writes to dst the team's changes for the device named name,
// sealed to it and signed by the hub: those after cursor after, or when
// after is nil after the cursor the device reported in its last bundle
// (from the start when none was), as the pulls would serve them.
func (h *Hub) Export(ctx context.Context, name string, after *uint64, dst io.Writer) (Exported, error) {
	var res Exported
	ds, err := h.Store.Devices(ctx)
	if err != nil {
		return res, fmt.Errorf("reading devices: %w", err)
	}
	found := false
	for _, d := range ds {
		if d.Name == name {
			res.Device, found = d, true
		}
	}
	d := res.Device
	switch {
	case !found:
		return res, apperr.Errorf(apperr.NotFound, "aucun appareil nommé %q (« hub devices » les liste)", name)
	case d.Revoked():
		return res, apperr.Errorf(apperr.Refused, "l'appareil %s a été révoqué le %s : rien ne lui est exporté", d.Name, d.RevokedAt.Local().Format("02/01/2006 à 15:04"))
	}
	if after != nil {
		res.From = *after
	} else if k, ok := h.keptCursor(d.ID); ok && k.Cursor > 0 {
		tag, err := h.Store.LogTag(ctx, k.Cursor)
		if err != nil {
			return res, fmt.Errorf("reading the tag of cursor %d: %w", k.Cursor, err)
		}
		if tag != nil && hex.EncodeToString(tag) == k.Tag {
			res.From, res.Reported = k.Cursor, true
		} else {
			res.Reset = true
		}
	}
	var fromTag []byte
	if res.From > 0 {
		if fromTag, err = h.Store.LogTag(ctx, res.From); err != nil {
			return res, fmt.Errorf("reading the tag of cursor %d: %w", res.From, err)
		}
		if fromTag == nil {
			return res, apperr.Errorf(apperr.Invalid, "le journal du hub n'a pas d'entrée n° %d : exportez depuis le début (--all)", res.From)
		}
	}
	xpub, err := seal.X25519FromEd25519(d.DeviceKey)
	if err != nil {
		return res, fmt.Errorf("the key of device %s: %w", d.Name, err)
	}
	w, err := bundle.NewWriter(bundle.TeamChanges, xpub)
	if err != nil {
		return res, err
	}
	cursor, tag := res.From, fromTag
	for {
		page, err := syncserver.Page(ctx, h.Store, d.Team, d.ID, cursor, pageBytes)
		if err != nil {
			return res, err
		}
		frame, err := wire.Encode(page)
		if err != nil {
			return res, fmt.Errorf("encoding a page: %w", err)
		}
		if err := w.Add(frame); err != nil {
			return res, err
		}
		res.Changes += len(page.Changes)
		cursor, tag = page.Next, page.Tag
		if !page.More {
			break
		}
	}
	res.To = cursor
	m := bundle.Manifest{Device: d.ID, Signer: bundle.SignerHub, Created: h.now().UnixMilli(), Hub: h.Cert,
		From: res.From, FromTag: fromTag, To: cursor, ToTag: tag}
	if _, err := w.Finish(dst, m, func(msg []byte) ([]byte, error) { return tlspin.Sign(h.Signer, msg) }); err != nil {
		return res, err
	}
	h.log().Info("team's changes exported", "device", d.ID, "from", res.From, "to", res.To, "changes", res.Changes)
	return res, nil
}
