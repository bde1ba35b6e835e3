// Package wire defines the sync protocol between agent and hub: the
// messages, their CBOR encoding and the one decoder that reads bytes from
// an untrusted peer.
//
// Every websocket frame is one binary message holding one CBOR item: a map
// whose key 0 is the message [Type] and whose other keys, small integers,
// are the message's fields. Output uses Core Deterministic Encoding, so
// equal messages give equal bytes. schema/sync.cddl is the specification
// of every message; the struct tags here must match it key for key (the
// golden fixtures in testdata/ catch an accidental change).
//
// The flow of a connection:
//
//	Enroll → Enrolled                      first contact, with a one-time token
//	Hello → Challenge → Auth → Welcome     every later connection
//	Push* ⇄ Ack*, Pull ⇄ Changes           then, any number of times
//	Error                                  either way, then the connection closes
//
// Wire types are not domain types (STYLE.md §4): [Change] carries a kind
// code, raw field bytes and sealed bodies; [FromChange] and
// [Change.ToChange] are the only conversions to and from change.Change.
//
// Compatibility: Hello and Enroll are frozen. Decode rejects unknown keys,
// so a newer agent must keep sending the version 1 shape of these two
// messages (it announces its version in Proto, and the hub answers with
// [CodeProtocolTooOld] or a welcome); any other message may change once
// both sides have agreed on a [ProtocolVersion].
package wire

import (
	"fmt"

	"numeribus/internal/ident"
)

// ProtocolVersion is the version of the protocol this package speaks. It is
// bumped on any incompatible change.
//
// Version 2 adds the divergence checks (docs/PROTOCOL.md, "A store that
// went back in time"): Welcome.LastTag, Pull.Tag and Pull.Own,
// Changes.Tag and Changes.Reset. A version 1 agent decodes none of them,
// so the hub sends them only in sessions opened with Proto ≥ 2.
//
// Version 3 adds Ack.Rejected (docs/PROTOCOL.md, "A change the hub
// refuses"): a version 2 agent would refuse the key, so an older session
// is closed on a refused change instead, as before.
//
// Version 4 adds Error.RetryAfter with [CodeBusy] (docs/PROTOCOL.md, "A
// busy hub"): an older agent is told the same in the message alone, and
// retries on its own backoff.
//
// Version 5 opens a session in the upgrade request, with the first frames
// right behind it ([Open], open.go), and adds Welcome.Early. Hello stays
// for older agents and for connections without TLS. It also adds
// compressed frames ([Deflated], deflate.go), Pull.Deflate and
// Welcome.Retention (the retention policy, so that a sync needs one
// connection only).
//
// Version 6 adds Welcome.Rejected: the refusals of changes whose acks
// the agent lost in a cut after the hub committed them, which it would
// otherwise take for acceptances. A version 5 agent would refuse the key:
// the hub sends it only in sessions of Proto ≥ [RefusalsProtocol].
const ProtocolVersion = 6

// RefusalsProtocol is the first protocol whose Welcome tells refusals
// (Welcome.Rejected).
const RefusalsProtocol = 6

// MinProtocol is the oldest agent protocol a hub still serves.
const MinProtocol = 1

// TagSize is the size of a change tag (see [ChangeTag], [LogTag]).
const TagSize = 16

// MaxFrame is the largest frame in bytes, for either side. The websocket
// read limit uses it too.
const MaxFrame = 4 << 20

// MaxChanges is the most changes one Push or Changes frame may carry (and
// the most elements of any CBOR array in a frame). A sender cuts its
// batches at MaxChanges changes or MaxFrame bytes, whichever comes first.
const MaxChanges = 10000

// MaxMapPairs is the most entries of any CBOR map in a frame: fields of a
// change, keys of a push, counts of a workshop.
const MaxMapPairs = 1024

// FieldsDepth is how deep a change's Fields may nest, the Fields map itself
// counted: the domain uses 3 (Fields → participants → counts by genre).
const FieldsDepth = 4

// KeySize is the size of the X25519 and Ed25519 public keys on the wire.
const KeySize = 32

// NonceSize is the size of the challenge nonce.
const NonceSize = 32

// SigSize is the size of an Ed25519 signature.
const SigSize = 64

// Type is a message type: the value at key 0 of every frame.
type Type uint8

// The message types. Numbers are the wire identity: never reuse one.
const (
	TypeHello     Type = 1
	TypeChallenge Type = 2
	TypeAuth      Type = 3
	TypeWelcome   Type = 4
	TypePush      Type = 5
	TypeAck       Type = 6
	TypePull      Type = 7
	TypeChanges   Type = 8
	TypeError     Type = 9
	TypeEnroll    Type = 10
	TypeEnrolled  Type = 11
	TypeOpen      Type = 12 // the first frame behind a protocol 5 upgrade request (open.go)
	TypeDeflated  Type = 13 // another frame, compressed (deflate.go)
)

var typeNames = [...]string{
	TypeHello: "hello", TypeChallenge: "challenge", TypeAuth: "auth", TypeWelcome: "welcome",
	TypePush: "push", TypeAck: "ack", TypePull: "pull", TypeChanges: "changes",
	TypeError: "error", TypeEnroll: "enroll", TypeEnrolled: "enrolled", TypeOpen: "open",
	TypeDeflated: "deflated",
}

// Valid reports whether t is a known message type.
func (t Type) Valid() bool { return int(t) < len(typeNames) && typeNames[t] != "" }

func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Message is implemented by every message struct (pointer receivers).
type Message interface{ Type() Type }

// Session modes the agent asks for in Hello.
const (
	ModeFull = 1 // push and pull: needs the device key (unlocked agent)
	ModePush = 2 // push only: the push key, usable while the agent is locked
)

// Stable error codes for Error.Code and websocket close reasons.
const (
	CodeProtocolTooOld = "protocol_too_old" // the agent's Proto is no longer served
	CodeMalformed      = "malformed"        // a frame did not decode (ErrMalformed, ErrUnknownType)
	CodeTooLarge       = "too_large"        // a frame exceeded MaxFrame
	CodeUnauthorized   = "unauthorized"     // bad signature, or a message before authentication
	CodeRevoked        = "revoked"          // the device was revoked at the hub
	CodeUnknownDevice  = "unknown_device"   // no such device at the hub: enroll first
	CodeBadToken       = "bad_token"        // enrollment token unknown
	CodeTokenUsed      = "token_used"       // enrollment token already used
	CodeTokenExpired   = "token_expired"    // enrollment token expired
	CodeReplay         = "replay"           // a change seq at or below the hub's high-water mark, with other content
	CodeOutOfOrder     = "out_of_order"     // a gap in the device's change seqs
	CodeInternal       = "internal"         // the hub failed; try again later
	CodeInvalid        = "invalid"          // a change's content does not decode as its kind (Rejection)
	CodeClockAhead     = "clock_ahead"      // a change stamped beyond the hub's clock + hlc.MaxAhead (Rejection)
	CodeNoConsent      = "no_consent"       // identifying data or an assessment of a person without their active consent (Rejection)
	CodeForbidden      = "forbidden"        // not allowed in this session (e.g. pull on a push-only session)
	CodeBusy           = "busy"             // the hub is saturated: nothing of the frame was applied, try again after Error.RetryAfter
)

// Hello opens a connection: agent → hub, first frame.
type Hello struct {
	Proto        uint32 `cbor:"1,keyasint,omitempty"` // ProtocolVersion of the agent
	AgentVersion string `cbor:"2,keyasint,omitempty"`
	Device       string `cbor:"3,keyasint,omitempty"` // device id (UUID text, canonical lower case)
	AgentTime    int64  `cbor:"4,keyasint,omitempty"` // agent wall clock, Unix ms (skew measurement)
	Mode         uint8  `cbor:"5,keyasint,omitempty"` // ModeFull or ModePush
}

// Challenge asks the agent to prove its key: hub → agent.
type Challenge struct {
	Nonce   []byte `cbor:"1,keyasint,omitempty"` // NonceSize random bytes
	HubTime int64  `cbor:"2,keyasint,omitempty"` // Unix ms
}

// Auth answers a Challenge: agent → hub.
type Auth struct {
	Sig []byte `cbor:"1,keyasint,omitempty"` // Ed25519 signature of AuthMessage(...)
}

// Welcome accepts the session: hub → agent, after a valid Auth.
type Welcome struct {
	HWM         uint64 `cbor:"1,keyasint,omitempty"` // highest device seq the hub holds for this device
	HubTime     int64  `cbor:"2,keyasint,omitempty"` // Unix ms
	ClockOffset int64  `cbor:"3,keyasint,omitempty"` // hub time − agent time, ms, as measured by the hub
	Team        string `cbor:"4,keyasint,omitempty"`
	Name        string `cbor:"5,keyasint,omitempty"` // device name at the hub
	// LastTag is ChangeTag of the device's change at HWM as the hub holds
	// it (absent when HWM is 0): the agent compares it with its own change
	// at that seq to tell whether its store went back in time.
	LastTag []byte `cbor:"6,keyasint,omitempty"`
	// Early says the hub took the frames sent with an Open (protocol 5);
	// false, it read and dropped them: the agent reconciles and sends
	// them again.
	Early bool `cbor:"7,keyasint,omitempty"`
	// Retention is the hub's retention policy (protocol 5): months by
	// kind of personal data, every kind given (internal/retention,
	// Policy.Periods). An agent that finds it here needs no second
	// connection to the hub's /retention; absent (older hubs), it reads
	// that as before.
	Retention map[string]uint32 `cbor:"8,keyasint,omitempty"`
	// RetentionSame says Retention is left out because the hub's policy
	// is the one the agent holds (Open.Retention): 43 bytes fewer on
	// the way of the sync's third round trip, on nearly every sync.
	RetentionSame bool `cbor:"9,keyasint,omitempty"`
	// Rejected are the refusals the hub recorded for the device's changes
	// after the Open's Acked mark — in a Hello session, which does not
	// say it, among the last WelcomeRejectedSpan changes — up to HWM, in
	// seq order, the latest MaxWelcomeRejected (protocol 6): the Ack that
	// told them may have been lost in a cut after the hub committed. The
	// agent records those after its own mark before it takes the changes
	// out of its outbox.
	Rejected []Rejection `cbor:"10,keyasint,omitempty"`
}

// MaxWelcomeRejected bounds Welcome.Rejected: an agent that lost the acks
// of more refused changes than this (a copy restored from long ago) is
// told the latest.
const MaxWelcomeRejected = 1000

// WelcomeRejectedSpan is how far below the hub's mark a Hello session's
// Welcome looks for refusals: more than the changes an agent has in
// flight (4 batches of at most 2,000 by default).
const WelcomeRejectedSpan = MaxChanges

// Push sends a batch of the device's own changes: agent → hub. Pushed
// changes carry neither Device (the session's device is the origin) nor
// HubSeq. A push is self-contained: every sealed change's KeyID names an
// entry of Keys.
type Push struct {
	Batch   uint64            `cbor:"1,keyasint,omitempty"` // batch number on this connection (for acks)
	Keys    map[uint64][]byte `cbor:"2,keyasint,omitempty"` // envelope public keys (X25519, KeySize bytes) referenced by Change.KeyID; may be empty
	Changes []Change          `cbor:"3,keyasint,omitempty"`
}

// Ack acknowledges a Push: hub → agent.
type Ack struct {
	Batch   uint64 `cbor:"1,keyasint,omitempty"`
	HWM     uint64 `cbor:"2,keyasint,omitempty"` // the device's high-water mark after applying the batch
	Applied uint32 `cbor:"3,keyasint,omitempty"` // changes newly applied (not duplicates)
	// Rejected lists the changes of the batch the hub refused (protocol
	// 3): counted in HWM, neither applied nor forwarded. The agent keeps
	// them, with the reason, out of its outbox.
	Rejected []Rejection `cbor:"4,keyasint,omitempty"`
}

// Rejection is one change the hub refused, with why.
type Rejection struct {
	Seq    uint64 `cbor:"1,keyasint,omitempty"` // the change's seq
	Code   string `cbor:"2,keyasint,omitempty"` // CodeInvalid, CodeClockAhead or CodeNoConsent
	Reason string `cbor:"3,keyasint,omitempty"` // one line, no record values
	// Ahead is, for CodeClockAhead, how far the change's stamp was ahead
	// of the hub's clock, in ms.
	Ahead uint64 `cbor:"4,keyasint,omitempty"`
}

// Pull asks for the changes the agent lacks: agent → hub.
type Pull struct {
	Cursor uint64 `cbor:"1,keyasint,omitempty"` // last hub seq the agent holds
	Budget uint32 `cbor:"2,keyasint,omitempty"` // max bytes of changes in the reply (the hub also stays within MaxFrame and MaxChanges)
	Tag    []byte `cbor:"3,keyasint,omitempty"` // Changes.Tag the hub gave with Cursor: proves the cursor is still in the hub's log
	Own    bool   `cbor:"4,keyasint,omitempty"` // include this device's own changes (recovery after a restore)
	// Deflate asks for the reply compressed (a Deflated frame) when that
	// makes it smaller: the agent's link is slow (protocol 5).
	Deflate bool `cbor:"5,keyasint,omitempty"`
}

// Changes answers a Pull: hub → agent. Every change carries its origin
// Device and its HubSeq, and no sealed body.
type Changes struct {
	Changes []Change `cbor:"1,keyasint,omitempty"`
	Next    uint64   `cbor:"2,keyasint,omitempty"` // cursor to ask from next
	More    bool     `cbor:"3,keyasint,omitempty"`
	Tag     []byte   `cbor:"4,keyasint,omitempty"` // LogTag of the hub log entry at Next (absent when Next is 0)
	// Reset says the Pull's cursor is not in the hub's log (the hub was
	// restored from a backup): this page starts again from cursor 0, and
	// Next may be lower than the cursor asked from.
	Reset bool `cbor:"5,keyasint,omitempty"`
}

// Error reports a failure, either way; the connection then closes.
type Error struct {
	Code    string `cbor:"1,keyasint,omitempty"` // stable machine code, see the Code* constants
	Message string `cbor:"2,keyasint,omitempty"` // human, French or English
	// RetryAfter is, with CodeBusy, how long the agent should wait before
	// connecting again, in ms, before its own jitter (protocol 4).
	RetryAfter uint32 `cbor:"3,keyasint,omitempty"`
}

// Error implements error, so a received Error can be returned as one.
func (e *Error) Error() string {
	if e.Message == "" {
		return "hub: " + e.Code
	}
	return e.Code + ": " + e.Message
}

// Enroll registers a new device: agent → hub, instead of Hello, on first
// contact.
type Enroll struct {
	Proto        uint32 `cbor:"1,keyasint,omitempty"`
	Token        []byte `cbor:"2,keyasint,omitempty"`
	Device       string `cbor:"3,keyasint,omitempty"` // device id (UUID text, canonical lower case)
	DeviceKey    []byte `cbor:"4,keyasint,omitempty"` // Ed25519 public key, KeySize bytes (full sessions)
	PushKey      []byte `cbor:"5,keyasint,omitempty"` // Ed25519 public key, KeySize bytes (push-only sessions)
	AgentVersion string `cbor:"6,keyasint,omitempty"`
}

// Enrolled accepts an Enroll: hub → agent.
type Enrolled struct {
	Name   string `cbor:"1,keyasint,omitempty"`
	Team   string `cbor:"2,keyasint,omitempty"`
	HubKey []byte `cbor:"3,keyasint,omitempty"` // hub's X25519 public key (KeySize bytes) for sealing outbox bodies
}

// Change is one field-level change on the wire.
//
// ID is an ident.ID, whose underlying type is [16]byte: it encodes as a
// 16-byte CBOR byte string, and its binary unmarshaler refuses any other
// length (a plain [16]byte would silently take a 15-byte string,
// zero-filled).
type Change struct {
	Kind   uint8    `cbor:"1,keyasint,omitempty"`  // KindCode: 1 activity, 2 beneficiary, 3 consent, 4 assessment, 5 tourstop
	ID     ident.ID `cbor:"2,keyasint"`            // 16-byte byte string
	Op     uint8    `cbor:"3,keyasint,omitempty"`  // change.Op
	HLC    uint64   `cbor:"4,keyasint,omitempty"`  // hlc.Timestamp, never 0
	Seq    uint64   `cbor:"5,keyasint,omitempty"`  // device seq (push), also kept on pulled changes
	Fields RawCBOR  `cbor:"6,keyasint,omitempty"`  // CBOR map field number → value, inline (change.Fields encoded); absent when Sealed is set
	Sealed []byte   `cbor:"7,keyasint,omitempty"`  // Fields sealed to the hub's key (opaque here)
	KeyID  uint64   `cbor:"8,keyasint,omitempty"`  // which Push.Keys entry Sealed uses
	Device string   `cbor:"9,keyasint,omitempty"`  // origin device (pulled changes only)
	HubSeq uint64   `cbor:"10,keyasint,omitempty"` // hub sequence number (pulled changes only)
}

// The message types of the structs.
func (*Hello) Type() Type     { return TypeHello }
func (*Challenge) Type() Type { return TypeChallenge }
func (*Auth) Type() Type      { return TypeAuth }
func (*Welcome) Type() Type   { return TypeWelcome }
func (*Push) Type() Type      { return TypePush }
func (*Ack) Type() Type       { return TypeAck }
func (*Pull) Type() Type      { return TypePull }
func (*Changes) Type() Type   { return TypeChanges }
func (*Error) Type() Type     { return TypeError }
func (*Enroll) Type() Type    { return TypeEnroll }
func (*Enrolled) Type() Type  { return TypeEnrolled }
