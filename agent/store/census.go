package store

import (
	"database/sql"
	"fmt"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/retention"
)

// The purge's census reads every record of the store (PurgeExpired): on
// `agent sync` of a fresh 100,000-change backlog it took 56 % of the agent
// process's CPU, more than the push itself, and decoding the whole stored
// state, clocks and devices into maps, was half of it. The census needs
// of a record only its live fields decoded as change.Decode decodes them,
// whether it is deleted or erased, and its last stamp: merge.Peek reads
// just that from the stored bytes. A state that Peek does not read, or
// that is not plain (a cleared field, the id among the fields), takes the
// general path, merge.Unmarshal then change.Decode, which gives the same
// record or the same error: the fast path only ever answers when it is
// sure.

// censusEntry is what the census learns of one stored record.
type censusEntry struct {
	record          domain.Record // nil: it does not decode (err says why)
	err             error
	deleted, erased bool
	touched         time.Time // its last stamp
}

// emptyMap is the encoding of a map without entries: the fields of a
// state that holds none, as change.Decode encodes them.
var emptyMap = []byte{0xa0}

// plainView returns what merge.Peek reads of raw, ok only when the census
// may decode the fields as they are stored: no cleared value, no id.
func plainView(raw []byte) (merge.View, bool) {
	v, ok := merge.Peek(raw)
	return v, ok && v.Plain
}

// censusOf returns what the census needs of record id of kind k, from its
// decrypted state raw: through plainView when the state has the plain
// shape, else through the general path. An error is a state that does
// not decode (the purge stops, as it always did); a record whose fields
// do not decode as its kind comes back with entry.err set.
func censusOf(k domain.Kind, id ident.ID, raw []byte) (censusEntry, error) {
	if v, ok := plainView(raw); ok {
		fields := v.Fields
		if fields == nil {
			fields = emptyMap
		}
		r := domain.New(k)
		if r != nil && change.Unmarshal(fields, r) == nil {
			r.SetRecordID(id)
			return censusEntry{record: r, deleted: v.Deleted != 0, erased: v.Erased != 0, touched: v.Last.Time()}, nil
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
// through one buffer, each wiped once read.
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
