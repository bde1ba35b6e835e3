package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// The checks of each message: what Decode refuses after the CBOR is read,
// and Encode before it writes.

func (m *Hello) check() error {
	if err := checkDevice(m.Device); err != nil {
		return err
	}
	if m.Mode != ModeFull && m.Mode != ModePush {
		return fmt.Errorf("mode %d is neither full (%d) nor push (%d)", m.Mode, ModeFull, ModePush)
	}
	return nil
}

func (m *Challenge) check() error { return checkLen("nonce", m.Nonce, NonceSize) }

func (m *Auth) check() error { return checkLen("signature", m.Sig, SigSize) }

func (m *Welcome) check() error {
	if err := checkTag("last tag", m.LastTag); err != nil {
		return err
	}
	if len(m.Rejected) > MaxWelcomeRejected {
		return fmt.Errorf("%d rejections, the limit is %d", len(m.Rejected), MaxWelcomeRejected)
	}
	if err := checkRejections(m.Rejected); err != nil {
		return err
	}
	if len(m.Retention) > maxRetentionKinds {
		return fmt.Errorf("retention: %d kinds, the limit is %d", len(m.Retention), maxRetentionKinds)
	}
	for k, months := range m.Retention {
		if k == "" || len(k) > maxRetentionName {
			return fmt.Errorf("retention: a kind name of %d bytes (1 to %d)", len(k), maxRetentionName)
		}
		if months == 0 || months > maxRetentionMonths {
			return fmt.Errorf("retention: %d months for %q (1 to %d)", months, k, maxRetentionMonths)
		}
	}
	return nil
}

// Bounds of Welcome.Retention: a few kinds of a short name, a period of at
// most a century. The agent checks each period against its own rules
// (retention.FromPeriods); these only keep nonsense off the wire.
const (
	maxRetentionKinds  = 32
	maxRetentionName   = 32
	maxRetentionMonths = 1200
)

func (m *Push) check() error { return m.checkPush(true) }

// checkPush is check; without fields, it leaves out the check of each
// change's Fields, already made by fastPush (fastFields).
func (m *Push) checkPush(fields bool) error {
	if len(m.Changes) > MaxChanges {
		return fmt.Errorf("%d changes, the limit is %d", len(m.Changes), MaxChanges)
	}
	if len(m.Keys) > MaxMapPairs {
		return fmt.Errorf("%d keys, the limit is %d", len(m.Keys), MaxMapPairs)
	}
	for id, k := range m.Keys {
		if err := checkLen(fmt.Sprintf("keys[%d]", id), k, KeySize); err != nil {
			return err
		}
	}
	for i := range m.Changes {
		c := &m.Changes[i]
		err := c.checkHead()
		if err == nil && fields && len(c.Fields) > 0 {
			err = checkFields(c.Fields)
		}
		switch {
		case err != nil:
		case c.Device != "":
			err = errors.New("device is set in a push (the session's device is the origin)")
		case c.HubSeq != 0:
			err = errors.New("hub seq is set in a push")
		case len(c.Sealed) > 0 && len(m.Keys[c.KeyID]) == 0:
			err = fmt.Errorf("sealed with key %d, which the push's keys lack", c.KeyID)
		}
		if err != nil {
			return fmt.Errorf("changes[%d] (seq %d): %w", i, c.Seq, err)
		}
	}
	return nil
}

// MaxReason is the longest Rejection.Reason, in bytes.
const MaxReason = 200

func (m *Ack) check() error {
	if len(m.Rejected) > MaxChanges {
		return fmt.Errorf("%d rejections, the limit is %d", len(m.Rejected), MaxChanges)
	}
	return checkRejections(m.Rejected)
}

// checkRejections checks the refusals an Ack or a Welcome tells.
func checkRejections(rs []Rejection) error {
	for _, r := range rs {
		if r.Seq == 0 {
			return fmt.Errorf("rejection without a seq")
		}
		if len(r.Code) == 0 || len(r.Code) > 32 {
			return fmt.Errorf("rejection of change %d: code of %d bytes", r.Seq, len(r.Code))
		}
		if len(r.Reason) > MaxReason {
			return fmt.Errorf("rejection of change %d: reason of %d bytes, the limit is %d", r.Seq, len(r.Reason), MaxReason)
		}
	}
	return nil
}

func (m *Pull) check() error { return checkTag("tag", m.Tag) }

func (m *Changes) check() error {
	if err := checkTag("tag", m.Tag); err != nil {
		return err
	}
	if len(m.Changes) > MaxChanges {
		return fmt.Errorf("%d changes, the limit is %d", len(m.Changes), MaxChanges)
	}
	for i := range m.Changes {
		c := &m.Changes[i]
		err := c.check()
		switch {
		case err != nil:
		case len(c.Sealed) > 0:
			err = errors.New("sealed fields in a pull reply")
		case c.Device == "":
			err = errors.New("no origin device")
		case c.HubSeq == 0:
			err = errors.New("no hub seq")
		}
		if err != nil {
			return fmt.Errorf("changes[%d] (hub seq %d): %w", i, c.HubSeq, err)
		}
	}
	return nil
}

func (m *Error) check() error {
	if m.Code == "" {
		return errors.New("error without a code")
	}
	return nil
}

func (m *Enroll) check() error {
	if len(m.Token) == 0 {
		return errors.New("no token")
	}
	if err := checkDevice(m.Device); err != nil {
		return err
	}
	if err := checkLen("device key", m.DeviceKey, KeySize); err != nil {
		return err
	}
	return checkLen("push key", m.PushKey, KeySize)
}

func (m *Enrolled) check() error { return checkLen("hub key", m.HubKey, KeySize) }

// check validates one change: what ToChange would refuse, less the
// decoding of the field values.
func (c *Change) check() error {
	if err := c.checkHead(); err != nil {
		return err
	}
	if len(c.Fields) > 0 {
		return checkFields(c.Fields)
	}
	return nil
}

// checkFields checks a field map without decoding its values: one
// well-formed map within the limits, whose keys are field numbers, none
// repeated, none the id's.
func checkFields(b []byte) error {
	_, err := scanFields(b, false)
	return err
}

// scanFields checks the field map b as checkFields does and, if collect,
// returns its fields (values are slices of b).
func scanFields(b []byte, collect bool) (change.Fields, error) {
	if out, ok := fastScan(b, collect); ok {
		return out, nil
	}
	return walkFields(b, collect)
}

// walkFields is scanFields by the library's well-formedness check, then a
// walk of the map: the path of any field map fastScan does not take, and
// of every error.
func walkFields(b []byte, collect bool) (change.Fields, error) {
	if len(b) == 0 {
		return nil, errors.New("fields: empty")
	}
	if major := b[0] >> 5; major != 5 {
		return nil, fmt.Errorf("fields are %s, not a map", majorNames[major])
	}
	if err := fieldsDM.Wellformed(b); err != nil {
		return nil, fmt.Errorf("fields: %w", err)
	}
	// Well-formed under fieldsDM: definite lengths, no tags, every length
	// within b, nesting bounded. The walk below relies on it.
	n, i := cborHead(b, 0)
	var out change.Fields
	if collect {
		out = make(change.Fields, n)
	}
	var buf [32]uint64
	keys := buf[:0]
	sorted := true
	for range n {
		if major := b[i] >> 5; major != 0 {
			return nil, fmt.Errorf("fields: a key is %s, not a field number", majorNames[major])
		}
		var k uint64
		k, i = cborHead(b, i)
		if k == domain.IDField {
			return nil, errors.New("field number 1 (the id) among the fields: it is carried apart")
		}
		if len(keys) > 0 && k <= keys[len(keys)-1] {
			sorted = false
		}
		keys = append(keys, k)
		j := skipItem(b, i)
		if collect {
			out[k] = b[i:j:j]
		}
		i = j
	}
	if !sorted {
		slices.Sort(keys)
		for j := 1; j < len(keys); j++ {
			if keys[j] == keys[j-1] {
				return nil, fmt.Errorf("fields: field number %d repeated", keys[j])
			}
		}
	}
	return out, nil
}

// cborHead reads the head of the well-formed item at b[i]: its argument
// and where what follows the head starts.
func cborHead(b []byte, i int) (uint64, int) {
	switch ai := b[i] & 0x1f; ai {
	case 24:
		return uint64(b[i+1]), i + 2
	case 25:
		return uint64(binary.BigEndian.Uint16(b[i+1:])), i + 3
	case 26:
		return uint64(binary.BigEndian.Uint32(b[i+1:])), i + 5
	case 27:
		return binary.BigEndian.Uint64(b[i+1:]), i + 9
	default: // < 24: the argument is in the head
		return uint64(ai), i + 1
	}
}

// skipItem returns where the well-formed item at b[i] ends.
func skipItem(b []byte, i int) int {
	major := b[i] >> 5
	arg, j := cborHead(b, i)
	switch major {
	case 2, 3: // byte and text strings
		return j + int(arg)
	case 4: // array
		for range arg {
			j = skipItem(b, j)
		}
	case 5: // map
		for range 2 * arg {
			j = skipItem(b, j)
		}
	}
	return j
}

// checkHead checks everything but the content of Fields.
func (c *Change) checkHead() error {
	if _, ok := KindOf(c.Kind); !ok {
		return fmt.Errorf("unknown kind %d", c.Kind)
	}
	if c.ID.IsZero() {
		return errors.New("nil id")
	}
	if !opValid(c.Op) {
		return fmt.Errorf("op %d is not upsert (1), delete (2) or erase (3)", c.Op)
	}
	if c.HLC == 0 {
		return errors.New("no HLC timestamp")
	}
	if len(c.Fields) > 0 && len(c.Sealed) > 0 {
		return errors.New("both fields and sealed fields")
	}
	if len(c.Sealed) == 0 && c.KeyID != 0 {
		return errors.New("key id without sealed fields")
	}
	return nil
}

func checkLen(what string, b []byte, want int) error {
	if len(b) != want {
		return fmt.Errorf("%s has %d bytes, want %d", what, len(b), want)
	}
	return nil
}

// checkDevice accepts a device id in the canonical text form of a UUID
// only, so that one device never goes by two spellings.
func checkDevice(s string) error {
	id, err := ident.Parse(s)
	if err != nil || id.String() != s {
		return fmt.Errorf("device %q is not a UUID in canonical lower-case form", clip(s))
	}
	return nil
}

// The normalizations: absent and empty are one value.

func (m *Hello) normalize()     {}
func (m *Challenge) normalize() { m.Nonce = nilIfEmpty(m.Nonce) }
func (m *Auth) normalize()      { m.Sig = nilIfEmpty(m.Sig) }
func (m *Welcome) normalize() {
	if len(m.Retention) == 0 {
		m.Retention = nil
	}
	if len(m.Rejected) == 0 {
		m.Rejected = nil
	}
}
func (m *Push) normalize() {
	if len(m.Keys) == 0 {
		m.Keys = nil
	}
	for id, k := range m.Keys {
		m.Keys[id] = nilIfEmpty(k)
	}
	m.Changes = normChanges(m.Changes)
}
func (m *Ack) normalize()     {}
func (m *Pull) normalize()    {}
func (m *Changes) normalize() { m.Changes = normChanges(m.Changes) }
func (m *Error) normalize()   {}
func (m *Enroll) normalize() {
	m.Token, m.DeviceKey, m.PushKey = nilIfEmpty(m.Token), nilIfEmpty(m.DeviceKey), nilIfEmpty(m.PushKey)
}
func (m *Enrolled) normalize() { m.HubKey = nilIfEmpty(m.HubKey) }

func normChanges(cs []Change) []Change {
	if len(cs) == 0 {
		return nil
	}
	for i := range cs {
		cs[i].Fields = nilIfEmpty(cs[i].Fields)
		cs[i].Sealed = nilIfEmpty(cs[i].Sealed)
	}
	return cs
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
