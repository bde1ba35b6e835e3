package wire

import (
	"errors"
	"fmt"

	"numeribus/internal/cborx"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
)

// kindCodes are the wire codes of the kinds: never reuse one.
var kindCodes = [...]domain.Kind{
	1: domain.KindActivity,
	2: domain.KindBeneficiary,
	3: domain.KindConsent,
	4: domain.KindAssessment,
	5: domain.KindTourStop,
}

// KindCode returns the wire code of kind k, 0 for an unknown kind.
func KindCode(k domain.Kind) uint8 {
	for code, kk := range kindCodes {
		if kk == k && k != "" {
			return uint8(code)
		}
	}
	return 0
}

// KindOf returns the kind of a wire code.
func KindOf(code uint8) (domain.Kind, bool) {
	if int(code) >= len(kindCodes) || kindCodes[code] == "" {
		return "", false
	}
	return kindCodes[code], true
}

func opValid(op uint8) bool { return change.Op(op).Valid() }

// FromChange returns the wire form of c, ready for a Push: Fields encoded
// with change.Marshal (deterministic), Device and HubSeq left empty. The
// hub serving a change in a Changes reply sets Device and HubSeq itself.
func FromChange(c *change.Change) (Change, error) {
	w := Change{
		Kind: KindCode(c.Kind),
		ID:   c.ID,
		Op:   uint8(c.Op),
		HLC:  uint64(c.HLC),
		Seq:  c.Seq,
	}
	if len(c.Fields) > 0 {
		b, err := EncodeFields(c.Fields)
		if err != nil {
			return Change{}, fmt.Errorf("wire: change %s %s: %w", c.Kind, c.ID, err)
		}
		w.Fields = b
	}
	if w.Kind == 0 {
		return Change{}, fmt.Errorf("wire: change %s: unknown kind %q", c.ID, c.Kind)
	}
	if err := w.checkHead(); err != nil {
		return Change{}, fmt.Errorf("wire: change %s %s: %w", c.Kind, c.ID, err)
	}
	return w, nil
}

// ToChange validates w and returns it as a change: known kind, valid op,
// a timestamp, Fields decoding (with the limits of Decode) to a field map
// without the id field. Device is copied; change.Change has no place for
// HubSeq, which the caller reads from w. A sealed change comes back with
// nil Fields: the hub opens Sealed and reads it with DecodeFields.
func (w *Change) ToChange() (change.Change, error) {
	if err := w.checkHead(); err != nil {
		return change.Change{}, fmt.Errorf("%w: change %s: %w", ErrMalformed, w.ID, err)
	}
	k, _ := KindOf(w.Kind)
	c := change.Change{
		Kind:   k,
		ID:     w.ID,
		Op:     change.Op(w.Op),
		HLC:    hlc.Timestamp(w.HLC),
		Device: w.Device,
		Seq:    w.Seq,
	}
	if len(w.Fields) > 0 {
		f, err := DecodeFields(w.Fields)
		if err != nil {
			return change.Change{}, fmt.Errorf("%w: %s %s: %w", ErrMalformed, k, w.ID, err)
		}
		c.Fields = f
	}
	return c, nil
}

// DecodeFields reads a field map (a change's Fields, or an opened sealed
// body) from untrusted bytes, with the limits of Decode: one well-formed
// map whose keys are field numbers, none repeated, none the id's. The
// values are not decoded (the store does it, into a record) and share b's
// memory. Errors wrap ErrMalformed.
func DecodeFields(b []byte) (change.Fields, error) {
	f, err := scanFields(b, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return f, nil
}

// EncodeFields encodes a field map for a change's Fields or for sealing:
// deterministic, without the id field.
func EncodeFields(f change.Fields) ([]byte, error) {
	if _, ok := f[domain.IDField]; ok {
		return nil, errors.New("field number 1 (the id) among the fields: it is carried apart")
	}
	// The values are copied as they are: check that the result is a
	// well-formed field map before it goes on the wire.
	b := f.Encode()
	if err := checkFields(b); err != nil {
		return nil, err
	}
	return b, nil
}

// EncodedSize returns the exact number of bytes c takes in a frame (as an
// element of the Changes array), without encoding it, for cutting batches
// (encoding each change took 90 times as long: BenchmarkEncodedSize):
// a Push of n changes is len(Encode of the Push without them) + 1 (the
// key) + ArrayHeadSize(n) + the sum of EncodedSize; likewise a Changes.
func EncodedSize(c *Change) int {
	n, pairs := 0, 0
	uint := func(v uint64) {
		if v != 0 {
			n += 1 + cborx.HeadSize(v)
			pairs++
		}
	}
	bytes := func(l int) {
		if l > 0 {
			n += 1 + cborx.HeadSize(uint64(l)) + l
			pairs++
		}
	}
	uint(uint64(c.Kind))
	n, pairs = n+1+1+len(c.ID), pairs+1 // always present
	uint(uint64(c.Op))
	uint(c.HLC)
	uint(c.Seq)
	if len(c.Fields) > 0 {
		n, pairs = n+1+len(c.Fields), pairs+1
	}
	bytes(len(c.Sealed))
	uint(c.KeyID)
	bytes(len(c.Device))
	uint(c.HubSeq)
	return cborx.HeadSize(uint64(pairs)) + n
}

// ArrayHeadSize returns the size of the header of a CBOR array of n
// elements.
func ArrayHeadSize(n int) int { return cborx.HeadSize(uint64(n)) }
