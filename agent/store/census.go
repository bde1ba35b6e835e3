package store

import (
	"database/sql"
	"fmt"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/retention"
)

// The purge's census reads every record of the store (PurgeExpired): on
// `agent sync` of a fresh 100,000-change backlog it took 56 % of the agent
// process's CPU, more than the push itself, and merge.Unmarshal — the
// library decoding the whole stored state, clocks and devices into maps —
// was half of it. The census needs of a record only its live fields
// decoded as change.Decode decodes them, whether it is deleted or erased,
// and its last stamp: peekState reads just that from the stored bytes.
// A state in any other shape than the one merge.State.Marshal writes
// without cleared values (a cleared field, the id among the fields, an
// index out of range, anything unexpected) takes the general path,
// merge.Unmarshal then change.Decode, which gives the same record or the
// same error: the fast path only ever answers when it is sure.

// censusEntry is what the census learns of one stored record.
type censusEntry struct {
	record          domain.Record // nil: it does not decode (err says why)
	err             error
	deleted, erased bool
	touched         time.Time // its last stamp
}

// stateView is a stored state as peekState read it.
type stateView struct {
	fields         []byte // the field map as stored: no cleared value, no id field
	del, era, last uint64 // stamp index + 1; 0: none
	stamps         [][2]uint64
}

// stamp returns the timestamp of stamp index+1 i (0: none).
func (v *stateView) stamp(i uint64) hlc.Timestamp {
	if i == 0 {
		return 0
	}
	return hlc.Timestamp(v.stamps[i-1][0])
}

// emptyMap is the encoding of a map without entries: the fields of a
// state that holds none, as change.Decode encodes them.
var emptyMap = []byte{0xa0}

// censusOf returns what the census needs of record id of kind k, from its
// decrypted state raw: through peekState when the state has the plain
// shape, else through the general path. An error is a state that does
// not decode (the purge stops, as it always did); a record whose fields
// do not decode as its kind comes back with entry.err set.
func censusOf(k domain.Kind, id ident.ID, raw []byte) (censusEntry, error) {
	if v, ok := peekState(raw); ok {
		r := domain.New(k)
		if r != nil && change.Unmarshal(v.fields, r) == nil {
			r.SetRecordID(id)
			return censusEntry{record: r, deleted: v.stamp(v.del) != 0, erased: v.stamp(v.era) != 0,
				touched: v.stamp(v.last).Time()}, nil
		}
	}
	return censusOfState(k, id, raw)
}

// censusOfState is censusOf by the general path: the whole state decoded.
func censusOfState(k domain.Kind, id ident.ID, raw []byte) (censusEntry, error) {
	st, err := merge.Unmarshal(raw)
	if err != nil {
		return censusEntry{}, err
	}
	e := censusEntry{deleted: st.IsDeleted(), erased: st.IsErased(), touched: st.Last.TS.Time()}
	e.record, e.err = change.Decode(k, id, st.Live())
	return e, nil
}

// censusKinds are the kinds that hold personal data or contacts with a
// person: what the census reads.
var censusKinds = map[string]domain.Kind{
	string(domain.KindBeneficiary): domain.KindBeneficiary,
	string(domain.KindConsent):     domain.KindConsent,
	string(domain.KindAssessment):  domain.KindAssessment,
	string(domain.KindActivity):    domain.KindActivity,
}

// censusAll feeds c every record of censusKinds, in one pass over the
// table: records has no index on kind, and a query per kind read it
// whole four times. The plan does not depend on the order records come
// in (retention.Census.Plan sorts every list). The decrypted states go
// through one buffer, wiped at the end.
func (w *writeTx) censusAll(c *retention.Census) error {
	rows, err := w.tx.QueryContext(w.ctx, `SELECT id, kind, body FROM records`)
	if err != nil {
		return fmt.Errorf("listing records: %w", err)
	}
	defer rows.Close()
	var (
		idb, kb, body sql.RawBytes // the driver's, until the next row
		buf           []byte
	)
	defer func() { clear(buf) }()
	for rows.Next() {
		if err := rows.Scan(&idb, &kb, &body); err != nil {
			return fmt.Errorf("listing records: %w", err)
		}
		k, ok := censusKinds[string(kb)] // no string made of kb
		if !ok {
			continue
		}
		var id ident.ID
		copy(id[:], idb)
		raw, err := w.s.key.Open(buf[:0], body, recordAD(k, id))
		if err != nil {
			return fmt.Errorf("decrypting %s %s: %w", k, id, err)
		}
		buf = raw[:0]
		e, err := censusOf(k, id, raw)
		clear(raw)
		if err != nil {
			return err
		}
		if e.err != nil {
			// A record this agent cannot read (a newer one's): it counts
			// for nothing, and is not erased blindly.
			w.s.log.Warn("record left out of the purge: it does not decode", "kind", k, "id", id, "err", e.err)
			continue
		}
		c.Record(e.record, e.deleted, e.erased, e.touched)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing records: %w", err)
	}
	return nil
}

// peekState reads a stored state (merge.State.Marshal's form: a map of
// keys 1 to 7, in order) without decoding its values: the field map as
// it is, and the stamps. ok is false for anything but that plain shape
// with every index in range — as merge.Unmarshal checks them — and no
// cleared value (change.Null) nor id among the fields, which
// change.Decode would drop first. The values' bytes do not alias raw
// beyond the fields.
func peekState(raw []byte) (v stateView, ok bool) {
	n, i, ok := cborHead(raw, 0, 5)
	if !ok || n > 7 {
		return v, false
	}
	var (
		prev     uint64
		devices  uint64
		clocks   []byte
		stampBuf [4][2]uint64
	)
	v.stamps = stampBuf[:0]
	for range n {
		var key uint64
		if key, i, ok = cborHead(raw, i, 0); !ok || key <= prev || key > 7 {
			return v, false
		}
		prev = key
		start := i
		switch key {
		case 1:
			if i, ok = plainFields(raw, i); !ok {
				return v, false
			}
			v.fields = raw[start:i:i]
		case 2:
			if devices, i, ok = cborHead(raw, i, 4); !ok {
				return v, false
			}
			for range devices {
				var l uint64
				if l, i, ok = cborHead(raw, i, 3); !ok || l > uint64(len(raw)-i) {
					return v, false
				}
				i += int(l)
			}
		case 3:
			if v.stamps, i, ok = readStamps(raw, i, v.stamps); !ok {
				return v, false
			}
		case 4:
			if i, ok = skipItem(raw, i, 0); !ok {
				return v, false
			}
			clocks = raw[start:i]
		default:
			var x uint64
			if x, i, ok = cborHead(raw, i, 0); !ok {
				return v, false
			}
			switch key {
			case 5:
				v.del = x
			case 6:
				v.era = x
			case 7:
				v.last = x
			}
		}
	}
	if i != len(raw) {
		return v, false
	}
	if v.fields == nil {
		v.fields = emptyMap
	}
	inRange := func(x uint64) bool { return x < uint64(len(v.stamps)) && v.stamps[x][1] < devices }
	for _, x := range []uint64{v.del, v.era, v.last} {
		if x != 0 && !inRange(x-1) {
			return v, false
		}
	}
	return v, clocksInRange(clocks, inRange)
}

// plainFields returns where the field map at raw[i] ends, and false when
// a value is cleared, the id field is among them, or the keys are not
// unsigned integers in increasing order.
func plainFields(raw []byte, i int) (int, bool) {
	n, i, ok := cborHead(raw, i, 5)
	if !ok {
		return 0, false
	}
	var prev uint64
	for j := range n {
		var key uint64
		if key, i, ok = cborHead(raw, i, 0); !ok || (j > 0 && key <= prev) || key == domain.IDField {
			return 0, false
		}
		prev = key
		if i < len(raw) && raw[i] == change.Null[0] {
			return 0, false
		}
		if i, ok = skipItem(raw, i, 0); !ok {
			return 0, false
		}
	}
	return i, true
}

// readStamps appends to dst the stamps of the array at raw[i], each an
// array of two unsigned integers {hlc, device index}.
func readStamps(raw []byte, i int, dst [][2]uint64) ([][2]uint64, int, bool) {
	n, i, ok := cborHead(raw, i, 4)
	if !ok || n > uint64(len(raw)) {
		return nil, 0, false
	}
	for range n {
		var two, ts, dev uint64
		if two, i, ok = cborHead(raw, i, 4); !ok || two != 2 {
			return nil, 0, false
		}
		if ts, i, ok = cborHead(raw, i, 0); !ok {
			return nil, 0, false
		}
		if dev, i, ok = cborHead(raw, i, 0); !ok {
			return nil, 0, false
		}
		dst = append(dst, [2]uint64{ts, dev})
	}
	return dst, i, true
}

// clocksInRange reports whether the clock map b (field → stamp index;
// nil: none) holds only unsigned integers and indexes in range.
func clocksInRange(b []byte, inRange func(uint64) bool) bool {
	if b == nil {
		return true
	}
	n, i, ok := cborHead(b, 0, 5)
	if !ok {
		return false
	}
	for range n {
		var x uint64
		if _, i, ok = cborHead(b, i, 0); !ok {
			return false
		}
		if x, i, ok = cborHead(b, i, 0); !ok || !inRange(x) {
			return false
		}
	}
	return i == len(b)
}

// cborHead reads the head of a definite-length item of major type major
// at b[i]: its argument and where its content starts.
func cborHead(b []byte, i int, major byte) (uint64, int, bool) {
	if i >= len(b) || b[i]>>5 != major {
		return 0, 0, false
	}
	ai := b[i] & 0x1f
	switch {
	case ai < 24:
		return uint64(ai), i + 1, true
	case ai == 24 && i+2 <= len(b):
		return uint64(b[i+1]), i + 2, true
	case ai == 25 && i+3 <= len(b):
		return uint64(b[i+1])<<8 | uint64(b[i+2]), i + 3, true
	case ai == 26 && i+5 <= len(b):
		return uint64(b[i+1])<<24 | uint64(b[i+2])<<16 | uint64(b[i+3])<<8 | uint64(b[i+4]), i + 5, true
	case ai == 27 && i+9 <= len(b):
		var x uint64
		for _, c := range b[i+1 : i+9] {
			x = x<<8 | uint64(c)
		}
		return x, i + 9, true
	}
	return 0, 0, false
}

// skipItem returns where the well-formed definite-length item at b[i]
// ends: integers, strings, arrays, maps and simple values or floats,
// nested at most 32 deep, no tag (the store writes none).
func skipItem(b []byte, i int, depth int) (int, bool) {
	if i >= len(b) || depth > 32 {
		return 0, false
	}
	major := b[i] >> 5
	if major == 7 {
		switch ai := b[i] & 0x1f; {
		case ai < 24:
			return i + 1, true
		case ai == 24 && i+2 <= len(b):
			return i + 2, true
		case ai == 25 && i+3 <= len(b):
			return i + 3, true
		case ai == 26 && i+5 <= len(b):
			return i + 5, true
		case ai == 27 && i+9 <= len(b):
			return i + 9, true
		}
		return 0, false
	}
	arg, j, ok := cborHead(b, i, major)
	if !ok {
		return 0, false
	}
	switch major {
	case 0, 1:
		return j, true
	case 2, 3:
		if arg > uint64(len(b)-j) {
			return 0, false
		}
		return j + int(arg), true
	case 4, 5:
		n := arg
		if major == 5 {
			n *= 2
		}
		if n > uint64(len(b)-j) {
			return 0, false
		}
		for range n {
			if j, ok = skipItem(b, j, depth+1); !ok {
				return 0, false
			}
		}
		return j, true
	}
	return 0, false // a tag
}
