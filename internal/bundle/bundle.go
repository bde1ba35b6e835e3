// Package bundle is the format of the files a USB stick carries between a
// laptop out of coverage and its hub (schema/bundle.cddl): a device's
// changes for the hub, the hub's receipt of them, and the team's changes
// for one device. It does no I/O of its own: it reads and writes streams.
//
// A bundle is sealed to its recipient — the hub's X25519 envelope key, or
// the device's, converted from its Ed25519 device key (seal.FromEd25519) —
// so that a lost stick reveals nothing, not even record ids; and signed —
// by the device's key (or its push key, while locked), or by the hub's
// TLS certificate key — so that a forged or altered one is refused. Its
// parts are frames of the sync protocol (internal/wire: Push for a
// device's changes, Changes for the team's), decoded by wire.Decode with
// the protocol's limits, so that a bundle goes through the very path of a
// live sync. A receipt is signed, not sealed: it holds sequence numbers,
// tags, counts and refusal codes, no record value.
//
// The file is a CBOR sequence of byte strings (RFC 8742): a head in clear
// (what the file is and for whom), a sealed manifest (who made it, what it
// follows, the SHA-256 of every part, the signature), then the sealed
// parts. A reader checks everything — every part's seal and hash, their
// count — before its caller applies anything (Reader.Check), then reads
// the parts again, each checked once more against the signed manifest.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/apperr"
	"numeribus/internal/cborx"
	"numeribus/internal/wire"
)

// Version is the format's version (head key 1).
const Version = 1

// Magic is head key 0: what says a file is one of ours.
const Magic = "numeribus"

// Kind says what a file holds (head key 2).
type Kind uint8

// The kinds of files. Numbers are the format's: never reuse one.
const (
	DeviceChanges Kind = 1 // a device's changes for its hub (agent export)
	TeamChanges   Kind = 2 // the team's changes for one device (hub export)
	ReceiptFile   Kind = 3 // the hub's receipt of a device's bundle (hub import)
)

// Signer says which key signed a manifest (manifest key 2).
type Signer uint8

// The signers.
const (
	SignerDevice Signer = 1 // the device key (an unlocked agent)
	SignerPush   Signer = 2 // the push key (a locked agent: changes sealed at write time)
	SignerHub    Signer = 3 // the key of the hub's TLS certificate, carried in the manifest
)

// Limits of what a reader takes.
const (
	// MaxParts is the most parts of one bundle (at most wire.MaxFrame
	// each).
	MaxParts = 65536
	// MaxRejected is the most refused changes one receipt lists.
	MaxRejected = 1 << 20
	maxHead     = 1 << 10
	maxManifest = 4 << 20
	maxPart     = wire.MaxFrame + 64 // a frame, sealed
	maxReceipt  = 256 << 20
	maxCert     = 64 << 10
	// RecipientSize is the size of a recipient's id in the head.
	RecipientSize = 16
)

// Head is what a file says in clear.
type Head struct {
	Magic     string `cbor:"0,keyasint"`
	Version   uint64 `cbor:"1,keyasint,omitempty"`
	Kind      Kind   `cbor:"2,keyasint,omitempty"`
	Recipient []byte `cbor:"3,keyasint,omitempty"` // bundles: RecipientID of the key sealed to
	EPK       []byte `cbor:"4,keyasint,omitempty"` // bundles: the envelope's ephemeral X25519 public key
}

// Manifest says who made a bundle, what it follows and what its parts
// are; it is sealed with them, and signed.
type Manifest struct {
	// Device is the device the changes come from (DeviceChanges) or go to
	// (TeamChanges).
	Device  string `cbor:"1,keyasint,omitempty"`
	Signer  Signer `cbor:"2,keyasint,omitempty"`
	Created int64  `cbor:"3,keyasint,omitempty"` // Unix ms, the maker's clock
	// Hub is, in DeviceChanges, the hub's X25519 envelope public key the
	// bundle is sealed to; in TeamChanges, the hub's TLS certificate
	// (DER), whose key signed.
	Hub []byte `cbor:"4,keyasint,omitempty"`
	// From and FromTag: in DeviceChanges, the device's acknowledged mark
	// the changes follow and wire.ChangeTag of its change there; in
	// TeamChanges, the pull cursor the pages follow and wire.LogTag of
	// the log entry there.
	From    uint64 `cbor:"5,keyasint,omitempty"`
	FromTag []byte `cbor:"6,keyasint,omitempty"`
	// To and ToTag: the last change's seq (DeviceChanges), or the cursor
	// after the last page and its tag (TeamChanges).
	To    uint64 `cbor:"7,keyasint,omitempty"`
	ToTag []byte `cbor:"8,keyasint,omitempty"`
	// Cursor and CursorTag, in DeviceChanges: the device's pull cursor
	// and its tag, so that the hub's export for it starts there.
	Cursor    uint64 `cbor:"9,keyasint,omitempty"`
	CursorTag []byte `cbor:"10,keyasint,omitempty"`
	// Parts are the SHA-256 of each part's frame, in order.
	Parts [][]byte `cbor:"11,keyasint,omitempty"`
	Sig   []byte   `cbor:"15,keyasint,omitempty"`
}

// Receipt is the hub's answer to a device's bundle: what it now holds of
// the device, and what it refused.
type Receipt struct {
	Device string `cbor:"1,keyasint,omitempty"`
	// Bundle is the ID of the bundle imported (Reader.ID).
	Bundle []byte `cbor:"2,keyasint,omitempty"`
	// HWM is the device's high-water mark at the hub after the import;
	// Tag is wire.ChangeTag of the device's change there, as the hub
	// holds it: the agent acks up to HWM only if its own change there
	// has this tag.
	HWM     uint64 `cbor:"3,keyasint,omitempty"`
	Tag     []byte `cbor:"4,keyasint,omitempty"`
	Applied uint64 `cbor:"5,keyasint,omitempty"` // changes newly applied
	// Rejected are the changes the hub refused, as a live Ack lists them.
	Rejected []wire.Rejection `cbor:"6,keyasint,omitempty"`
	Created  int64            `cbor:"7,keyasint,omitempty"` // Unix ms, the hub's clock
	Cert     []byte           `cbor:"8,keyasint,omitempty"` // the hub's TLS certificate (DER), whose key signed
	Sig      []byte           `cbor:"15,keyasint,omitempty"`
}

// Errors of the readers, said in French for the mediator and the
// coordinator who handle the stick; each is apperr.Invalid: nothing was
// applied.
var (
	ErrNotOurs   = apperr.New(apperr.Invalid, "ce fichier n'est ni un paquet ni un reçu Numéribus")
	ErrTooNew    = apperr.New(apperr.Invalid, "ce fichier a été écrit par une version plus récente : mettez à jour le programme")
	ErrTampered  = apperr.New(apperr.Invalid, "fichier altéré ou incomplet (un octet modifié, une copie interrompue ?) : il ne s'ouvre pas, rien n'a été importé")
	ErrIsReceipt = apperr.New(apperr.Invalid, "ce fichier est un reçu du hub, pas un paquet : « agent import-receipt FICHIER »")
	ErrIsBundle  = apperr.New(apperr.Invalid, "ce fichier est un paquet, pas un reçu du hub")
	ErrNotForYou = apperr.New(apperr.Invalid, "ce paquet est destiné à un autre destinataire")
)

var (
	encMode    = must(cbor.CoreDetEncOptions().EncMode())
	headDM     = cborx.Untrusted(cborx.Limits{Depth: 4, Elements: 16, Pairs: 16, StrictKeys: true})
	manifestDM = cborx.Untrusted(cborx.Limits{Depth: 4, Elements: MaxParts, Pairs: 16, StrictKeys: true})
	receiptDM  = cborx.Untrusted(cborx.Limits{Depth: 4, Elements: MaxRejected, Pairs: 16, StrictKeys: true})
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// RecipientID is what a head says of the key a bundle is sealed to: the
// first bytes of the SHA-256 of its X25519 public key, enough for the
// recipient to tell a bundle meant for another.
func RecipientID(pub []byte) []byte {
	s := sha256.Sum256(pub)
	return s[:RecipientSize]
}

// lp appends b to dst with its length, as 8 bytes big endian, first.
func lp(dst, b []byte) []byte {
	return append(binary.BigEndian.AppendUint64(dst, uint64(len(b))), b...)
}

// Signed messages: a context string, the head as written, the manifest or
// receipt encoded without its signature.
const (
	manifestContext = "numeribus-bundle-v1"
	receiptContext  = "numeribus-receipt-v1"
)

func signedMessage(context string, head []byte, v any) ([]byte, error) {
	body, err := encMode.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := lp(nil, []byte(context))
	m = lp(m, head)
	return lp(m, body), nil
}

// ad is the associated data of the sealed item i of a bundle (0 the
// manifest, then the parts): the head as written and the item's place,
// so that no item moves to another place or another file.
func ad(head []byte, i uint64) []byte {
	b := lp(nil, []byte(manifestContext))
	b = lp(b, head)
	return binary.BigEndian.AppendUint64(b, i)
}

// readHead reads the head of a file.
func readHead(r *counter) (Head, []byte, error) {
	raw, err := r.item(maxHead)
	if err != nil {
		return Head{}, nil, ErrNotOurs
	}
	var h Head
	if err := headDM.Unmarshal(raw, &h); err != nil || h.Magic != Magic {
		return Head{}, nil, ErrNotOurs
	}
	if h.Version != Version {
		if h.Version > Version {
			return h, nil, ErrTooNew
		}
		return h, nil, ErrNotOurs
	}
	switch h.Kind {
	case DeviceChanges, TeamChanges:
		if len(h.Recipient) != RecipientSize || len(h.EPK) != 32 {
			return h, nil, fmt.Errorf("%w: en-tête de paquet incomplet", ErrTampered)
		}
	case ReceiptFile:
		if len(h.Recipient) != 0 || len(h.EPK) != 0 {
			return h, nil, fmt.Errorf("%w: en-tête de reçu inattendu", ErrTampered)
		}
	default:
		return h, nil, ErrTooNew
	}
	return h, raw, nil
}

func checkTag(t []byte) error {
	if len(t) != 0 && len(t) != wire.TagSize {
		return fmt.Errorf("a tag of %d bytes, %d expected", len(t), wire.TagSize)
	}
	return nil
}

func (m *Manifest) check(k Kind) error {
	switch {
	case m.Device == "":
		return errors.New("no device")
	case k == DeviceChanges && m.Signer != SignerDevice && m.Signer != SignerPush,
		k == TeamChanges && m.Signer != SignerHub:
		return fmt.Errorf("signer %d in a bundle of kind %d", m.Signer, k)
	case k == DeviceChanges && len(m.Hub) != 32, k == TeamChanges && (len(m.Hub) == 0 || len(m.Hub) > maxCert):
		return fmt.Errorf("hub key or certificate of %d bytes", len(m.Hub))
	case m.To < m.From:
		return fmt.Errorf("ends at %d before its start %d", m.To, m.From)
	case len(m.Sig) == 0:
		return errors.New("no signature")
	}
	for _, t := range [][]byte{m.FromTag, m.ToTag, m.CursorTag} {
		if err := checkTag(t); err != nil {
			return err
		}
	}
	for _, p := range m.Parts {
		if len(p) != sha256.Size {
			return fmt.Errorf("a part's hash of %d bytes", len(p))
		}
	}
	return nil
}

func (r *Receipt) check() error {
	switch {
	case r.Device == "":
		return errors.New("no device")
	case len(r.Bundle) != sha256.Size:
		return errors.New("no bundle id")
	case len(r.Cert) == 0 || len(r.Cert) > maxCert:
		return fmt.Errorf("certificate of %d bytes", len(r.Cert))
	case len(r.Sig) == 0:
		return errors.New("no signature")
	case r.HWM > 0 && len(r.Tag) != wire.TagSize:
		return errors.New("a mark without its tag")
	}
	if err := checkTag(r.Tag); err != nil {
		return err
	}
	for _, x := range r.Rejected {
		if x.Seq == 0 || x.Seq > r.HWM {
			return fmt.Errorf("refused change %d beyond the mark %d", x.Seq, r.HWM)
		}
		switch x.Code {
		case wire.CodeInvalid, wire.CodeClockAhead, wire.CodeNoConsent:
		default:
			return fmt.Errorf("refusal code %q", x.Code)
		}
		if len(x.Reason) > wire.MaxReason {
			return errors.New("refusal reason too long")
		}
	}
	return nil
}

// sameBytes reports whether a and b are equal (public values: no need for
// constant time).
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
