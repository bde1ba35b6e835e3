// Package store defines what the hub keeps: devices and their enrollment,
// the merged state of every record, and the hub's change log that agents
// pull from. The interface is about what the sync needs, not about SQL,
// so that a PostgreSQL implementation can follow the SQLite one without
// touching the sync code; both must pass the same conformance suite.
package store

import (
	"context"
	"fmt"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// Device is one enrolled laptop.
type Device struct {
	ID        string // the agent's device id (UUID text)
	Name      string // unique, chosen at enrollment ("bus-3")
	Team      string
	DeviceKey []byte // Ed25519 public key for full sessions
	PushKey   []byte // Ed25519 public key for push-only sessions
	// EnvelopeKeyID names the hub X25519 key the device seals to.
	EnrolledAt time.Time
	RevokedAt  time.Time // zero: active

	LastSeen        time.Time // last contact: handshake, round, keepalive pong
	LastSync        time.Time // last time the device was fully pushed and pulled
	HWM             uint64    // highest device seq applied
	AgentVersion    string
	ClockOffsetMs   int64 // hub time − agent time at the last connection
	BytesReceived   int64
	ChangesReceived int64
}

// Revoked reports whether the device has been cut off.
func (d *Device) Revoked() bool { return !d.RevokedAt.IsZero() }

// Enrollment is a pending single-use enrollment token. Only the token's
// SHA-256 is stored.
type Enrollment struct {
	TokenHash [32]byte
	Name      string
	Team      string
	ExpiresAt time.Time
}

// Logged is a change as the hub logged it, with its hub sequence number.
//
// ChangesSince leaves Fields nil and gives Raw, the fields as stored: every
// path that logs a change stores change.Fields.Encode, the encoding that
// wire.EncodeFields produces, so a pull serves these bytes as they are
// instead of decoding and encoding again every change of every page.
// Who needs the fields decoded calls DecodeLogged.
type Logged struct {
	change.Change
	HubSeq uint64
	Raw    []byte // the stored field map (change.Fields.Encode)
}

// DecodeLogged decodes the stored fields (Raw) of each change of ls into
// its Fields.
func DecodeLogged(ls []Logged) error {
	for i := range ls {
		l := &ls[i]
		l.Fields = nil
		if err := change.Unmarshal(l.Raw, &l.Fields); err != nil {
			return fmt.Errorf("decoding change %d: %w", l.HubSeq, err)
		}
	}
	return nil
}

// Rejected is a change the hub refused: who made it is the device, what it
// is the identity of the change (not its fields), why Code and Reason.
type Rejected struct {
	Seq    uint64
	HLC    hlc.Timestamp
	Kind   domain.Kind
	ID     ident.ID
	Op     change.Op
	Code   string // wire.CodeInvalid, wire.CodeClockAhead, wire.CodeNoConsent
	Reason string // one line, without record values
	At     time.Time
}

// Consent is a consent record as the hub merged it: the sync reads what
// it gives (domain.Consent.Active) before taking identifying data or an
// assessment of its person.
type Consent struct {
	ID    ident.ID
	Team  string
	State *merge.State // tombstones included: IsDeleted
	// Stored is the state as the store holds it, when the store pins
	// what a batch's consent rules read (ConsentPinner); nil otherwise.
	Stored []byte
}

// Seen is what the hub learns at each authenticated connection.
type Seen struct {
	At            time.Time
	AgentVersion  string
	ClockOffsetMs int64
}

// Stats are consolidated counts for `hub stats` and scripts.
type Stats struct {
	Records map[domain.Kind]int            `json:"records"`
	ByTeam  map[string]map[domain.Kind]int `json:"by_team"`
	// ByDevice counts records by the device that created them.
	ByDevice map[string]map[domain.Kind]int `json:"by_device"`
	Changes  uint64                         `json:"changes"`
	Devices  int                            `json:"devices"`
}

// Errors the sync maps to protocol error codes.
var (
	ErrBadToken     = apperr.New(apperr.Refused, "unknown enrollment token")
	ErrTokenUsed    = apperr.New(apperr.Refused, "enrollment token already used")
	ErrTokenExpired = apperr.New(apperr.Refused, "enrollment token expired")
	ErrNameTaken    = apperr.New(apperr.State, "device name already enrolled")
	ErrNoDevice     = apperr.New(apperr.NotFound, "unknown device")
	ErrGap          = apperr.New(apperr.Invalid, "changes out of order: a gap after the device's high-water mark")
	ErrForeign      = apperr.New(apperr.Forbidden, "change to a record of another team")
	// ErrConsentsMoved is a batch applied at a consent counter
	// (ConsentVersioner.ApplyAt) that found, in its transaction, a
	// consent written since its consent rules were read: it wrote
	// nothing, and the rules must be read again.
	ErrConsentsMoved = apperr.New(apperr.State, "a consent was written since the batch's consent rules were read")
)

// Store is the hub's storage. Implementations are safe for concurrent use.
type Store interface {
	// CreateEnrollment records a pending enrollment.
	CreateEnrollment(ctx context.Context, e Enrollment) error
	// Enroll consumes the token whose hash is given and registers d
	// under the enrollment's name and team; it returns the stored device.
	Enroll(ctx context.Context, tokenHash [32]byte, d Device, now time.Time) (Device, error)
	// Device returns the device with id, or ErrNoDevice.
	Device(ctx context.Context, id string) (Device, error)
	// Devices lists every device, by name.
	Devices(ctx context.Context) ([]Device, error)
	// Revoke cuts a device off by name.
	Revoke(ctx context.Context, name string, now time.Time) error
	// RevokedDevices returns the ids of every revoked device: what the
	// server's revocation watch asks, once a tick for all its live
	// connections (revocations happen in another process, `hub revoke`,
	// or through another instance). Every revoked device rather than
	// those among the connected ones: revocations are rare, so the answer
	// is short and the query takes no argument, while the set of live
	// connections is the one that grows (a thousand agents).
	RevokedDevices(ctx context.Context) ([]string, error)
	// MarkSeen records an authenticated connection.
	MarkSeen(ctx context.Context, deviceID string, s Seen) error
	// MarkSynced records a complete round (everything pushed and pulled),
	// which is a contact too: last seen moves forward to at.
	MarkSynced(ctx context.Context, deviceID string, at time.Time) error
	// MarkContacts records the contacts of devices on open connections
	// (keepalive pongs, rounds) in one write for many devices, so that a
	// connection kept open for hours does not show its handshake's time:
	// each device's last seen moves forward to its time, never back.
	// Unknown devices are skipped.
	MarkContacts(ctx context.Context, seen map[string]time.Time) error

	// ApplyBatch merges changes from one device in one transaction.
	// Changes at or below the device's high-water mark are skipped (a
	// retry); the others must follow it without gap (ErrGap). Each
	// applied change gets a hub sequence number. bytes is the wire size,
	// for the device's counters. It returns the new high-water mark and
	// how many changes were newly applied.
	ApplyBatch(ctx context.Context, deviceID string, changes []change.Change, bytes int) (hwm uint64, applied int, err error)
	// Reject records changes of the device that the hub refused, in seq
	// order: each counts in the high-water mark like an applied change
	// (those at or below it are skipped, a retry; the others must follow
	// it without gap, ErrGap), and is neither merged, logged nor
	// forwarded. It returns the new high-water mark.
	Reject(ctx context.Context, deviceID string, rs []Rejected) (hwm uint64, err error)
	// NoteRefused records refusals of the device's changes that are taken
	// in part (a person's change without its identifying fields, for want
	// of a consent), before their runs are applied: the change is logged
	// too, and the mark moves with it. A seq already recorded is kept.
	NoteRefused(ctx context.Context, deviceID string, rs []Rejected) error
	// Refusals returns the refusals recorded for the device's changes with
	// after < seq <= upTo, in seq order, the last max of them: what the
	// Welcome tells an agent whose ack may have been lost.
	Refusals(ctx context.Context, deviceID string, after, upTo uint64, max int) ([]Rejected, error)
	// Consents returns, each once, the consents merged in team whose
	// person is one of beneficiaries, and the consents whose id is one of
	// ids, whatever their team (the caller tells a foreign one by its
	// Team): what a batch needs to know which persons it may identify,
	// its own consent changes merged in. One call per batch, whatever
	// the number of persons.
	Consents(ctx context.Context, team string, beneficiaries, ids []ident.ID) ([]Consent, error)
	// ChangesSince returns, in hub order, the changes after cursor that
	// team may see, except those made by excludeDevice, up to about
	// maxBytes of fields (at least one change when any), their fields as
	// stored (Logged.Raw, not decoded). next is the cursor to ask from
	// next; more says whether more remain.
	ChangesSince(ctx context.Context, team, excludeDevice string, cursor uint64, maxBytes int) (cs []Logged, next uint64, more bool, err error)
	// DeviceChangeTag returns wire.ChangeTag of the change the device
	// logged (or that the hub refused) with seq, or nil when the hub
	// holds none: the agent compares
	// it with its own at the handshake (docs/PROTOCOL.md, divergence).
	DeviceChangeTag(ctx context.Context, deviceID string, seq uint64) ([]byte, error)
	// LogTag returns wire.LogTag of the hub log entry hubSeq, or nil when
	// the log holds none: a pull cursor is checked against it.
	LogTag(ctx context.Context, hubSeq uint64) ([]byte, error)
	// Stats returns consolidated counts.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the store.
	Close() error
}

// Preparer is a Store that can do ahead of a batch's turn at the writer
// the part of ApplyBatch that needs no database: merging each change into
// an empty state, as if every record the batch touches were new (what a
// backlog is), and encoding the rows to insert. The sync calls
// PrepareBatch in the connection's reader, beside the writer busy with
// the batches before, so that the writer's turn — which bounds a
// device's push — only inserts. A store without it (PostgreSQL) is given
// ApplyBatch; it is optional, checked with a type assertion.
type Preparer interface {
	// PrepareBatch prepares changes, made by deviceID of team, for
	// ApplyPrepared. It reads nothing, may run beside any other call,
	// and does not modify changes. nil when there is nothing it can
	// prepare (a malformed batch: ApplyBatch will say why).
	PrepareBatch(deviceID, team string, changes []change.Change) Prepared
	// ApplyPrepared is ApplyBatch of changes, the slice p was prepared
	// from, unmodified since: the same rules, the same results. It uses
	// p when the device's mark and team are still those p assumed and
	// every record is still new, and applies the batch the general way
	// otherwise (a retry, a record stored meanwhile); a nil p, or one
	// prepared from another slice, is ignored.
	ApplyPrepared(ctx context.Context, deviceID string, changes []change.Change, p Prepared, bytes int) (hwm uint64, applied int, err error)
}

// ConsentPinner is a Store whose batches of several devices are applied
// at once (PostgreSQL): a batch's consent rules read the stored consents
// just before its transaction, and a withdrawal committed by another
// batch in between would let identifying fields in after it. ApplyPinned
// is ApplyBatch that first checks, in the batch's transaction, that the
// consents the rules read (their Stored states) are still so, and holds
// them until it commits (a withdrawal then waits for it); a consent
// changed or gone fails it with ErrConsentsMoved, nothing written. A
// consent that appeared since only grants more: not checked. Optional,
// checked with a type assertion; SQLite, with one writer, counts instead
// (ConsentVersioner).
type ConsentPinner interface {
	ApplyPinned(ctx context.Context, pinned []Consent, deviceID string, changes []change.Change, bytes int) (hwm uint64, applied int, err error)
}

// Prepared is a batch a Preparer prepared, opaque to the caller.
type Prepared interface {
	// PreparedChanges is how many changes it was prepared from.
	PreparedChanges() int
}

// ConsentVersioner is a Store that can tell whether any consent was
// written between two moments: a counter that moves with every write to
// a consent (a batch's, an erasure's, a purge's, another process's). The
// sync reads a batch's consents in the connection's reader, ahead of the
// batch's turn at the writer, and uses that read in the turn only if the
// counter has not moved since: the turn — which bounds every device's
// push — then skips the look-up. A store without it (PostgreSQL, whose
// look-up is one round trip either way) looks up in the turn; it is
// optional, checked with a type assertion.
type ConsentVersioner interface {
	// ConsentsAt is Consents, with the counter as the same read saw it.
	ConsentsAt(ctx context.Context, team string, beneficiaries, ids []ident.ID) ([]Consent, int64, error)
	// ConsentVersion returns the counter as it stands.
	ConsentVersion(ctx context.Context) (int64, error)
	// ApplyAt is ApplyPrepared (p may be nil) of a batch whose consent
	// rules were read at the counter *version: it applies the batch only
	// if its transaction still finds the counter there — else it writes
	// nothing and fails with ErrConsentsMoved — and leaves in *version
	// the counter after its own writes (the batch's consents move it),
	// for the next run of the same batch. Checked outside the
	// transaction, a consent withdrawn in between (by a `hub` command
	// beside the server, while the host pauses for it) let identifying
	// fields back in after the withdrawal erased them.
	ApplyAt(ctx context.Context, version *int64, deviceID string, changes []change.Change, p Prepared, bytes int) (hwm uint64, applied int, err error)
}
