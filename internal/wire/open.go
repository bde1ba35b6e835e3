package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"numeribus/internal/ident"
)

// A sync in three round trips (protocol 5): TCP, TLS, and one exchange.
// The agent authenticates in the same flight as its websocket upgrade
// request — an [Open], the first frame right behind the request, signed
// over a value bound to this TLS session — and sends its first batches
// and its Pull behind it, without waiting for an answer. The hub answers
// the upgrade, a [Welcome], the acks and the first page in one flight.
//
// The Open travelled first in a request header, as base64: 33% more
// bytes, and a header's name, on the way of the third round trip. As a
// frame it is its CBOR and 6 bytes of framing, 64 bytes fewer.
//
// The binding is RFC 9266's tls-exporter: both ends derive
// [ExporterSize] bytes from the session's secrets with [ExporterLabel].
// A signature made for one TLS session is worth nothing in any other, so
// it can be neither replayed nor relayed through an interceptor (who
// holds two sessions with two exporters).
//
// The frames sent early were cut before the agent heard the hub's mark:
// the hub takes them only when the agent's view of its own history is
// the hub's — Open.Acked is the hub's high-water mark for the device,
// Open.AckedTag the tag of its change there, and the agent's clock, as
// corrected, is within ClockTolerance of the hub's. Otherwise the hub
// reads and drops them, says so in Welcome.Early, and the agent goes
// through its usual reconciliation and sends them again: a restored
// store, a restored hub or a clock that jumped costs two more round trips,
// never a change.

// OpenHeader is the header of the hub's answer to every upgrade request
// that says it reads an Open (its value: the hub's protocol version). An
// agent whose Open is answered without it talks to a hub older than
// protocol 5, which read the Open as a bad first frame: it falls back to
// a Hello.
const OpenHeader = "Numeribus-Open"

// ExporterLabel and ExporterSize are RFC 9266's tls-exporter channel
// binding (TLS 1.3: no context).
const (
	ExporterLabel = "EXPORTER-Channel-Binding"
	ExporterSize  = 32
)

// OpenProtocol is the first protocol version that opens sessions with an
// Open.
const OpenProtocol = 5

// ClockTolerance is how far an agent's corrected clock may be from the
// hub's before its stamps are corrected (the agent restamps its unsent
// changes): early frames of an agent beyond it are not taken.
const ClockTolerance = 120_000 // ms

// Open authenticates a session, the first frame behind the upgrade
// request: agent → hub.
type Open struct {
	Proto        uint32      `cbor:"1,keyasint,omitempty"`
	AgentVersion string      `cbor:"2,keyasint,omitempty"`
	Device       DeviceBytes `cbor:"3,keyasint,omitempty"`
	AgentTime    int64       `cbor:"4,keyasint,omitempty"` // agent wall clock, Unix ms
	Mode         uint8       `cbor:"5,keyasint,omitempty"`
	// Acked is the agent's acknowledged mark — what it believes the hub
	// holds of its changes — and AckedTag the ChangeTag of its change
	// there (absent when Acked is 0).
	Acked    uint64 `cbor:"6,keyasint,omitempty"`
	AckedTag []byte `cbor:"7,keyasint,omitempty"`
	// Offset is the correction the agent applies to its clock (hub time −
	// agent time, ms, as last measured).
	Offset int64 `cbor:"8,keyasint,omitempty"`
	// Early is how many frames follow the request before the agent heard
	// the Welcome.
	Early uint32 `cbor:"9,keyasint,omitempty"`
	Sig   []byte `cbor:"10,keyasint,omitempty"` // Ed25519 over OpenMessage
	// Retention is the RetentionTag of the retention policy the agent
	// holds: the hub leaves its policy out of the Welcome when it is the
	// same (Welcome.RetentionSame).
	Retention []byte `cbor:"11,keyasint,omitempty"`
}

func (*Open) Type() Type { return TypeOpen }

// DeviceBytes is a device id that travels as its 16 bytes, not as its
// 36 characters of text: 21 bytes fewer in an Open, on the way of the
// sync's third round trip. In Go it is the canonical text, as elsewhere.
type DeviceBytes string

func (d DeviceBytes) MarshalCBOR() ([]byte, error) {
	id, err := ident.Parse(string(d))
	if err != nil || id.String() != string(d) {
		return nil, fmt.Errorf("device %q is not a UUID in canonical lower-case form", clip(string(d)))
	}
	return encMode.Marshal(id[:])
}

func (d *DeviceBytes) UnmarshalCBOR(b []byte) error {
	var raw []byte
	if err := frameDM.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != len(ident.ID{}) {
		return fmt.Errorf("device id of %d bytes, want %d", len(raw), len(ident.ID{}))
	}
	*d = DeviceBytes(ident.ID(raw).String())
	return nil
}

func (m *Open) check() error {
	if err := checkDevice(string(m.Device)); err != nil {
		return err
	}
	if m.Mode != ModeFull && m.Mode != ModePush {
		return fmt.Errorf("mode %d is neither full (%d) nor push (%d)", m.Mode, ModeFull, ModePush)
	}
	if err := checkTag("acked tag", m.AckedTag); err != nil {
		return err
	}
	if m.Early > 2*MaxWindow+1 {
		return fmt.Errorf("%d early frames, the limit is %d", m.Early, 2*MaxWindow+1)
	}
	if m.Retention != nil {
		if err := checkLen("retention tag", m.Retention, RetentionTagSize); err != nil {
			return err
		}
	}
	if m.Sig != nil {
		return checkLen("signature", m.Sig, SigSize)
	}
	return nil
}

func (m *Open) normalize() {
	m.AckedTag, m.Sig, m.Retention = nilIfEmpty(m.AckedTag), nilIfEmpty(m.Sig), nilIfEmpty(m.Retention)
}

// RetentionTagSize is the length of a RetentionTag: 64 bits tell two
// policies apart; the tag authenticates nothing (the Open is signed).
const RetentionTagSize = 8

// RetentionTag identifies a retention policy, as a Welcome carries it
// (months by kind): a hash of its deterministic encoding. Agent and hub
// compute it alike; a policy with a kind one of them does not know gives
// another tag, and the Welcome then carries the policy.
func RetentionTag(periods map[string]uint32) []byte {
	b, err := encMode.Marshal(periods) // sorted keys: one encoding per policy
	if err != nil {
		return nil
	}
	h := sha256.New()
	h.Write([]byte("numeribus-retention-v1"))
	h.Write(b)
	return h.Sum(nil)[:RetentionTagSize]
}

// MaxWindow bounds the batches an agent keeps in flight, early ones
// included.
const MaxWindow = 8

// openDomain separates the Open signature from every other use of the
// device key.
const openDomain = "numeribus-sync-open-v1"

// OpenMessage returns what the agent signs: the domain-separation prefix,
// the session's exporter, then the Open without its signature, each part
// prefixed with its length.
func OpenMessage(exporter []byte, o *Open) ([]byte, error) {
	unsigned := *o
	unsigned.Sig = nil
	b, err := Encode(&unsigned)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 3*8+len(openDomain)+len(exporter)+len(b))
	for _, p := range [...][]byte{[]byte(openDomain), exporter, b} {
		out = binary.BigEndian.AppendUint64(out, uint64(len(p)))
		out = append(out, p...)
	}
	return out, nil
}
