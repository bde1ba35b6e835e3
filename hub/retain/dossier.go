package retain

import (
	"context"
	"fmt"
	"slices"
	"time"

	"numeribus/internal/access"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// Holder is how the hub names itself in a dossier.
const Holder = "le hub de coordination"

// ReadDossier gathers, through r (one read transaction, the facts brought
// up to the log's end first by the caller), what the hub holds about
// person: their record; their consents (consent_subjects); the
// assessments and live activities about them (by the fact tables' links,
// each checked against its record), and the deleted ones (read whole,
// they have no facts); the hub's log of every write of each, with the
// name of the device that made it; the changes about them the hub
// refused. An assessment erased with its person, which the statistics
// still link to the person's anonymous record, is listed as erased.
func ReadDossier(ctx context.Context, r Reader, person ident.ID, now time.Time) (*access.Dossier, error) {
	d := &access.Dossier{Person: person, Made: now, Holder: Holder}
	ids := map[ident.ID]bool{person: true}
	add := func(q string, args ...any) error {
		return each(ctx, r, func(rows scanner) error {
			var idb []byte
			if err := rows.Scan(&idb); err != nil {
				return err
			}
			ids[ident.ID(idb)] = true
			return nil
		}, q, args...)
	}
	p := person[:]
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT id FROM consent_subjects WHERE beneficiary = ?`, []any{p}},
		{`SELECT id FROM assessment_facts WHERE beneficiaire = ?`, []any{p}},
		{`SELECT id FROM activity_facts WHERE beneficiaire = ? OR ` + r.BlobContains("suivis"), []any{p, p}},
	} {
		if err := add(q.sql, q.args...); err != nil {
			return nil, fmt.Errorf("finding the records about %s: %w", person, err)
		}
	}
	linked := map[ident.ID]bool{} // by the facts: an erased assessment's link
	for id := range ids {
		linked[id] = true
	}
	type held struct {
		kind domain.Kind
		rec  domain.Record
		st   *merge.State
	}
	var recs []held
	keep := func(rows scanner) error {
		var (
			idb, state []byte
			kind       string
		)
		if err := rows.Scan(&idb, &kind, &state); err != nil {
			return err
		}
		id, k := ident.ID(idb), domain.Kind(kind)
		st, err := merge.Unmarshal(state)
		if err != nil {
			return fmt.Errorf("record %s: %w", id, err)
		}
		rec, err := change.Decode(k, id, st.Live())
		if err != nil {
			return fmt.Errorf("record %s: %w", id, err)
		}
		if about(rec, person) || linked[id] && k == domain.KindAssessment && st.IsErased() {
			recs = append(recs, held{k, rec, st})
		}
		return nil
	}
	list := make([]any, 0, len(ids))
	for id := range ids {
		list = append(list, id[:])
	}
	for chunk := range slices.Chunk(list, 500) {
		if err := each(ctx, r, keep, `SELECT id, kind, state FROM records WHERE id IN (`+marks(len(chunk))+`)`, chunk...); err != nil {
			return nil, fmt.Errorf("reading the records about %s: %w", person, err)
		}
	}
	// Deleted assessments and activities have no facts: read whole.
	if err := each(ctx, r, keep, `SELECT id, kind, state FROM records WHERE kind IN ('assessment', 'activity') AND deleted`); err != nil {
		return nil, fmt.Errorf("reading deleted records: %w", err)
	}
	slices.SortFunc(recs, func(a, b held) int { return compareIDs(a.rec.RecordID(), b.rec.RecordID()) })
	recs = slices.CompactFunc(recs, func(a, b held) bool { return a.rec.RecordID() == b.rec.RecordID() })
	found := map[ident.ID]bool{}
	for _, h := range recs {
		id := h.rec.RecordID()
		found[id] = true
		e := access.Entry{Record: h.rec, Deleted: h.st.IsDeleted(), Erased: h.st.IsErased(), Updated: h.st.Last.TS.Time()}
		err := each(ctx, r, func(rows scanner) error {
			var (
				at     int64
				op     int
				fields []byte
				device string
			)
			if err := rows.Scan(&at, &op, &fields, &device); err != nil {
				return err
			}
			st := access.Step{At: hlc.Timestamp(at).Time(), Device: device, Op: change.Op(op)}
			if err := change.Unmarshal(fields, &st.Fields); err != nil {
				return fmt.Errorf("change of %s: %w", id, err)
			}
			e.History = append(e.History, st)
			return nil
		}, `SELECT c.hlc, c.op, c.fields, d.name FROM changes c JOIN devices d ON d.num = c.device WHERE c.record_id = ? ORDER BY c.hseq`, id[:])
		if err != nil {
			return nil, fmt.Errorf("reading the history of %s: %w", id, err)
		}
		switch h.kind {
		case domain.KindBeneficiary:
			d.Beneficiary = &e
		case domain.KindConsent:
			d.Consents = append(d.Consents, e)
		case domain.KindAssessment:
			d.Assessments = append(d.Assessments, e)
		case domain.KindActivity:
			d.Activities = append(d.Activities, e)
		}
	}
	err := each(ctx, r, func(rows scanner) error {
		var (
			at           int64
			kind         string
			idb          []byte
			code, reason string
		)
		if err := rows.Scan(&at, &kind, &idb, &code, &reason); err != nil {
			return err
		}
		if id := ident.ID(idb); found[id] || id == person {
			d.Refused = append(d.Refused, access.Refusal{At: time.UnixMilli(at), Kind: domain.Kind(kind), ID: id, Code: code, Reason: reason})
		}
		return nil
	}, `SELECT at, kind, record_id, code, reason FROM rejected ORDER BY at`)
	if err != nil {
		return nil, fmt.Errorf("reading refused changes: %w", err)
	}
	return d, nil
}

// about reports whether r is person's record or about them.
func about(r domain.Record, person ident.ID) bool {
	return slices.Contains(peopleOf(r), person)
}

func marks(n int) string {
	b := make([]byte, 0, 2*n)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}

func compareIDs(a, b ident.ID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}
