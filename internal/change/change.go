// Package change defines the unit of replication: a field-level change to
// one record, and the conversions between domain records and field maps.
//
// A change names only the fields it sets, so two mediators editing
// different fields of one record never overwrite each other: the merge
// (internal/merge) keeps, per field, the value with the latest stamp.
package change

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/cborx"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// Op is what a change does.
type Op uint8

// The operations.
const (
	// OpUpsert sets the fields it carries (creating the record if new).
	OpUpsert Op = 1
	// OpDelete makes the record a tombstone; deletion is final.
	OpDelete Op = 2
	// OpErase strips the record's personal fields, now and for any
	// later or concurrent write: erasure wins over every edit.
	OpErase Op = 3
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	case OpErase:
		return "erase"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Valid reports whether o is a known operation.
func (o Op) Valid() bool { return o >= OpUpsert && o <= OpErase }

// Fields maps field numbers to CBOR-encoded values. A CBOR null means the
// field was cleared (the clear itself is a write that must win or lose by
// its stamp, so it is kept, not dropped).
type Fields map[uint64]cbor.RawMessage

// Null is the CBOR encoding of null: a cleared field.
var Null = cbor.RawMessage{0xf6}

// Change is one write to one record, as logged in the outbox and sent to
// the hub.
type Change struct {
	Kind   domain.Kind
	ID     ident.ID
	Op     Op
	Fields Fields
	HLC    hlc.Timestamp
	Device string // the device that made the change
	Seq    uint64 // that device's sequence number, without gaps

	// encoded is the encoding Fields came in (SetEncoded), nil when
	// unknown: only a hint, checked before use (Encoded).
	encoded []byte
}

// SetEncoded records b as the encoding c.Fields were read from (a pushed
// change's field map): when b is exactly what Fields.Encode gives, which
// Encoded checks, it is used as it is, not encoded again. Fields changed
// since make the hint fail that check, never give stale bytes.
func (c *Change) SetEncoded(b []byte) { c.encoded = b }

// Encoded returns the encoding of c.Fields that c came with (SetEncoded)
// when it is byte for byte what Fields.Encode gives, ok false otherwise
// (no hint, or one that does not match: encode c.Fields then). The check
// is a walk of b's keys, without encoding anything: b must be a map of
// len(c.Fields) entries in increasing key order, every head in its
// shortest form, each value the very bytes (same memory, same length)
// c.Fields holds for its key — then b is Encode's concatenation of heads
// and values, in Encode's order.
func (c *Change) Encoded() ([]byte, bool) {
	b := c.encoded
	if len(b) == 0 || b[0]>>5 != 5 {
		return nil, false
	}
	n, i, err := head(b, 0)
	if err != nil || i != cborx.HeadSize(n) || n != uint64(len(c.Fields)) {
		return nil, false
	}
	var last uint64
	for e := range n {
		if i >= len(b) || b[i]>>5 != 0 {
			return nil, false
		}
		k, j, err := head(b, i)
		if err != nil || j-i != cborx.HeadSize(k) || (e > 0 && k <= last) {
			return nil, false
		}
		v, ok := c.Fields[k]
		if !ok || len(v) == 0 || len(v) > len(b)-j || &v[0] != &b[j] {
			return nil, false
		}
		last, i = k, j+len(v)
	}
	if i != len(b) {
		return nil, false
	}
	return b, true
}

// Stamp returns the change's position in the total order.
func (c *Change) Stamp() hlc.Stamp { return hlc.Stamp{TS: c.HLC, Device: c.Device} }

var (
	encMode cbor.EncMode
	// Field maps come from our own store or from the wire decoder, which
	// applies the limits on untrusted input first.
	decMode = cborx.Trusted()
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v with Core Deterministic Encoding: equal values give
// equal bytes, which field-level diffs rely on. Field maps take a
// hand-written path (the hot one).
func Marshal(v any) ([]byte, error) {
	if f, ok := v.(Fields); ok {
		return f.Encode(), nil
	}
	return encMode.Marshal(v)
}

// Unmarshal decodes CBOR data into v.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }

// Encode turns a record into its field map (without the id).
func Encode(r domain.Record) (Fields, error) {
	b, err := encMode.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", r.Kind(), err)
	}
	f, err := splitMap(b, domain.IDField)
	if err != nil {
		return nil, fmt.Errorf("splitting %s into fields: %w", r.Kind(), err)
	}
	return f, nil
}

// Decode builds a record of kind k with id from a field map. Null fields
// decode as empty. The values agents write take a hand-written decoder
// (decode.go); anything else, the library's, whose errors are the ones
// told.
func Decode(k domain.Kind, id ident.ID, f Fields) (domain.Record, error) {
	if r, ok := decodeFast(k, f); ok {
		r.SetRecordID(id)
		return r, nil
	}
	return decodeLibrary(k, id, f)
}

// decodeLibrary is Decode with the library's reflection: the reference
// the fast decoder is tested against.
func decodeLibrary(k domain.Kind, id ident.ID, f Fields) (domain.Record, error) {
	r := domain.New(k)
	if r == nil {
		return nil, fmt.Errorf("unknown kind %q", k)
	}
	b := f.Encode()
	if _, ok := f[domain.IDField]; ok {
		m := maps.Clone(f)
		delete(m, domain.IDField)
		b = m.Encode()
	}
	if err := decMode.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", k, id, err)
	}
	r.SetRecordID(id)
	return r, nil
}

// CheckFields checks that an upsert's fields are fields of its kind, with
// values of the right types: what both the hub (on a push) and an agent
// (on a pull) check before merging a change from another device, so that
// no laptop ends up holding a record it cannot open. It does not check
// the domain rules that need the whole record.
func (c *Change) CheckFields() error {
	_, err := c.decodeChecked()
	return err
}

// CheckValues checks the values an upsert sets against the domain's rules
// for one field (codes from their lists, dates, ranges, formats), with the
// record's own Validate: one implementation, on the agent at save and on
// the hub at push. Rules that need the whole record (required fields,
// rules between fields, references, consent) are left out: a change
// carries only the fields it modifies, and two valid edits merged may
// break a rule between fields that neither broke; refusing one of them
// would leave its sender apart from its team for good. The error names
// fields and rules, never values (they may be personal). Call it after
// CheckFields.
func (c *Change) CheckValues() error {
	if c.Op != OpUpsert || len(c.Fields) == 0 {
		return nil
	}
	r, err := Decode(c.Kind, c.ID, c.Fields)
	if err != nil {
		return err
	}
	return c.checkValues(r)
}

// Check is CheckFields then CheckValues, the record decoded once: the
// hub checks every pushed change, and decoding is most of the cost. It
// returns the decoded record (nil for a change that sets no field), so
// that what else needs its values (the hub's consent rules) does not
// decode it again.
func (c *Change) Check() (domain.Record, error) {
	r, err := c.decodeChecked()
	if err != nil || r == nil {
		return nil, err
	}
	return r, c.checkValues(r)
}

// decodeChecked checks the field numbers of an upsert and decodes it
// (CheckFields); nil for a change that sets no field.
func (c *Change) decodeChecked() (domain.Record, error) {
	if c.Op != OpUpsert || len(c.Fields) == 0 {
		return nil, nil
	}
	for n := range c.Fields {
		if _, ok := domain.FieldByNum(c.Kind, n); !ok || n == domain.IDField {
			return nil, fmt.Errorf("%s has no field %d", c.Kind, n)
		}
	}
	return Decode(c.Kind, c.ID, c.Fields)
}

// checkValues is CheckValues on r, the record c's fields decode to.
func (c *Change) checkValues(r domain.Record) error {
	err := r.Validate(nil)
	if err == nil {
		// Nearly every change: ve, which escapes through errors.As,
		// is allocated only for the others.
		return nil
	}
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	// The fields the change sets, for the problems' sake only: most
	// changes have none to report.
	set := map[string]bool{}
	for n, v := range c.Fields {
		if f, ok := domain.FieldByNum(c.Kind, n); ok && !bytes.Equal(v, Null) {
			set[f.Name] = true
		}
	}
	var bad []string
	for _, p := range ve.Problems {
		top, _, _ := strings.Cut(p.Field, ".")
		if (p.Code == domain.ProblemInvalid || p.Code == domain.ProblemUnknownCode) && set[top] {
			bad = append(bad, p.Field+": "+p.Message)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", c.Kind, strings.Join(slices.Compact(bad), " ; "))
}

// Diff returns the fields of next that differ from prev, with Null for
// fields prev had and next lacks. An empty result means no change.
func Diff(prev, next Fields) Fields {
	d := Fields{}
	for n, v := range next {
		if pv, ok := prev[n]; !ok || !bytes.Equal(pv, v) {
			d[n] = v
		}
	}
	for n, pv := range prev {
		if _, ok := next[n]; !ok && !bytes.Equal(pv, Null) {
			d[n] = Null
		}
	}
	return d
}

// Nums returns the field numbers of f in increasing order.
func (f Fields) Nums() []uint64 {
	out := make([]uint64, 0, len(f))
	for n := range f {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
