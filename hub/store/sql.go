package store

import (
	"fmt"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// What the SQL stores (hub/store/sqlite, hub/store/postgres) share beyond
// their SQL and driver calls.

// Rows is what the shared code needs of a query's result: *sql.Rows and
// pgx.Rows both have it (their Close differs, and stays with the caller).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScrubLog removes the personal fields of an erased record (kind, id)
// from every change of it in the log. read returns the (hseq, fields)
// rows of its upserts and a function closing them; write stores the new
// fields of change hseq. The rows are closed before the first write.
func ScrubLog(kind domain.Kind, id ident.ID, read func() (Rows, func(), error), write func(hseq int64, fields []byte) error) error {
	if len(domain.PersonalFields(kind)) == 0 {
		return nil
	}
	rows, closeRows, err := read()
	if err != nil {
		return fmt.Errorf("scrubbing log of %s: %w", id, err)
	}
	type upd struct {
		hseq   int64
		fields []byte
	}
	var upds []upd
	for rows.Next() {
		var (
			hseq int64
			raw  []byte
		)
		if err := rows.Scan(&hseq, &raw); err != nil {
			closeRows()
			return fmt.Errorf("scrubbing log of %s: %w", id, err)
		}
		raw, dropped, err := change.WithoutPersonalEncoded(kind, raw)
		if err != nil {
			closeRows()
			return fmt.Errorf("scrubbing change %d: %w", hseq, err)
		}
		if dropped {
			upds = append(upds, upd{hseq, raw})
		}
	}
	closeRows()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scrubbing log of %s: %w", id, err)
	}
	for _, u := range upds {
		if err := write(u.hseq, u.fields); err != nil {
			return fmt.Errorf("scrubbing change %d: %w", u.hseq, err)
		}
	}
	return nil
}

// ChangeOverhead is what a change costs beside its fields, for the page
// size of ChangesSince: id, kind, op, stamp, device and sequence numbers.
const ChangeOverhead = 40

// PageLimit is the most rows a ChangesSince query for maxBytes reads: one
// more than can fit tells whether more remain. A page never holds more
// changes than the agent's decoder takes (wire.MaxChanges): one-field
// edits are small, and a page of them cut by bytes alone failed to
// encode, which blocked the team's pulls for good.
func PageLimit(maxBytes int) int {
	return min(max(maxBytes, 0)/ChangeOverhead+2, wire.MaxChanges+1)
}

// ScanPage reads a page of ChangesSince after cursor from rows of (hseq,
// kind, record_id, op, hlc, device id, dseq, fields) in hub order, at most
// PageLimit(maxBytes) of them: up to about maxBytes of fields plus
// ChangeOverhead bytes per change, and always at least one when any. The
// fields stay as stored (Logged.Raw): the pull sends them as they are.
func ScanPage(rows Rows, cursor uint64, maxBytes int) (cs []Logged, next uint64, more bool, err error) {
	next = cursor
	size := 0
	for rows.Next() {
		var (
			l           Logged
			hseq, h, ds int64
			kind        string
			id, fields  []byte
			op          int
		)
		if err := rows.Scan(&hseq, &kind, &id, &op, &h, &l.Device, &ds, &fields); err != nil {
			return nil, cursor, false, fmt.Errorf("reading changes: %w", err)
		}
		if size += len(fields) + ChangeOverhead; (size > maxBytes || len(cs) == wire.MaxChanges) && len(cs) > 0 {
			more = true
			break
		}
		if len(id) != len(l.ID) {
			return nil, cursor, false, fmt.Errorf("change %d: record id of %d bytes", hseq, len(id))
		}
		copy(l.ID[:], id)
		l.Kind, l.Op, l.HLC, l.Seq, l.HubSeq = domain.Kind(kind), change.Op(op), hlc.Timestamp(h), uint64(ds), uint64(hseq)
		l.Raw = fields
		cs = append(cs, l)
		next = l.HubSeq
	}
	if err := rows.Err(); err != nil {
		return nil, cursor, false, fmt.Errorf("reading changes: %w", err)
	}
	return cs, next, more, nil
}

// ScanIDs reads rows of one text column, device ids.
func ScanIDs(rows Rows) ([]string, error) {
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// CountRecords adds to st's record counts the rows of (kind, team, origin
// device name, count) of live records.
func CountRecords(rows Rows, st *Stats) error {
	add := func(m map[string]map[domain.Kind]int, key string, k domain.Kind, n int) {
		if m[key] == nil {
			m[key] = map[domain.Kind]int{}
		}
		m[key][k] += n
	}
	for rows.Next() {
		var (
			k, team, name string
			n             int
		)
		if err := rows.Scan(&k, &team, &name, &n); err != nil {
			return err
		}
		st.Records[domain.Kind(k)] += n
		add(st.ByTeam, team, domain.Kind(k), n)
		add(st.ByDevice, name, domain.Kind(k), n)
	}
	return rows.Err()
}

// ScanRejected reads refusals from rows of (dseq, hlc, kind, record_id,
// op, code, reason, at in Unix ms), as both stores keep them.
func ScanRejected(rows Rows) ([]Rejected, error) {
	var out []Rejected
	for rows.Next() {
		var (
			r               Rejected
			seq, stamp, at  int64
			kind, code, why string
			id              []byte
			op              int64
		)
		if err := rows.Scan(&seq, &stamp, &kind, &id, &op, &code, &why, &at); err != nil {
			return nil, fmt.Errorf("reading refusals: %w", err)
		}
		if len(id) != len(r.ID) {
			return nil, fmt.Errorf("refusal of change %d: record id of %d bytes", seq, len(id))
		}
		r.Seq, r.HLC, r.Kind, r.Op = uint64(seq), hlc.Timestamp(stamp), domain.Kind(kind), change.Op(op)
		r.Code, r.Reason, r.At = code, why, time.UnixMilli(at).UTC()
		copy(r.ID[:], id)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading refusals: %w", err)
	}
	return out, nil
}
