package retain

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"numeribus/hub/report"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/retention"
)

// notesField is Activity.Notes's field number, peeked without decoding a
// whole activity.
var notesField = func() uint64 {
	for _, f := range domain.Fields(domain.KindActivity) {
		if f.Name == "notes" {
			return f.Num
		}
	}
	panic("retain: activities have no notes field")
}()

// Gather reads what the hub holds into a census for a purge at now under
// p, through r (one read transaction, the facts brought up to the log's
// end first by the caller). Beneficiaries, consents and assessments are
// read from their merged states; live activities, which are most of the
// records, from the fact tables (their day and people), their notes
// peeked only for those old enough. It returns the census and the hub
// seq the fact tables cover, from which Recheck looks for changes made
// since.
func Gather(ctx context.Context, r Reader, p retention.Policy, now time.Time) (*retention.Census, int64, error) {
	c := retention.NewCensus(p, now)
	var at int64
	err := each(ctx, r, func(rows scanner) error { return rows.Scan(&at) },
		`SELECT coalesce((SELECT value FROM facts_meta WHERE key = 'hseq'), 0)`)
	if err != nil {
		return nil, 0, fmt.Errorf("reading how far the facts are: %w", err)
	}
	// Records decoded whole: people, consents, assessments still linked,
	// and deleted activities (no facts, maybe notes).
	err = each(ctx, r, func(rows scanner) error {
		var (
			idb, state []byte
			kind       string
		)
		if err := rows.Scan(&idb, &kind, &state); err != nil {
			return err
		}
		id := ident.ID(idb)
		st, err := merge.Unmarshal(state)
		if err != nil {
			return fmt.Errorf("record %s: %w", id, err)
		}
		rec, err := change.Decode(domain.Kind(kind), id, st.Live())
		if err != nil {
			return nil // not this program's to judge: left alone
		}
		c.Record(rec, st.IsDeleted(), st.IsErased(), st.Last.TS.Time())
		return nil
	}, `SELECT id, kind, state FROM records WHERE kind = 'beneficiary'
		OR (kind = 'consent' AND NOT deleted) OR (kind = 'assessment' AND NOT erased)
		OR (kind = 'activity' AND deleted AND NOT erased)`)
	if err != nil {
		return nil, 0, fmt.Errorf("reading records: %w", err)
	}
	// Live activities, by their facts: contacts, and the individual
	// sessions an identity's erasure takes along, unless erased already.
	erased := map[ident.ID]bool{}
	err = each(ctx, r, func(rows scanner) error {
		var idb []byte
		if err := rows.Scan(&idb); err != nil {
			return err
		}
		erased[ident.ID(idb)] = true
		return nil
	}, `SELECT id FROM records WHERE kind = 'activity' AND erased`)
	if err != nil {
		return nil, 0, fmt.Errorf("reading erased activities: %w", err)
	}
	err = each(ctx, r, func(rows scanner) error {
		var (
			idb, ben, suivis []byte
			day              int
			typ              string
		)
		if err := rows.Scan(&idb, &day, &typ, &ben, &suivis); err != nil {
			return err
		}
		id, d := ident.ID(idb), report.DayTime(day)
		if len(ben) == len(id) {
			c.Contact(ident.ID(ben), d)
			if typ != "collectif" && !erased[id] {
				c.Individual(id, ident.ID(ben))
			}
		}
		for ; len(suivis) >= len(id); suivis = suivis[len(id):] {
			c.Contact(ident.ID(suivis[:len(id)]), d)
		}
		return nil
	}, `SELECT id, day, type, beneficiaire, suivis FROM activity_facts WHERE beneficiaire IS NOT NULL OR suivis IS NOT NULL`)
	if err != nil {
		return nil, 0, fmt.Errorf("reading activity facts: %w", err)
	}
	// Notes: only sessions old enough to be due are opened.
	cutoff := report.DayOf(p.Cutoff(retention.Notes, now))
	vals := make([][]byte, 1)
	err = each(ctx, r, func(rows scanner) error {
		var (
			idb, state []byte
			day        int
		)
		if err := rows.Scan(&idb, &day, &state); err != nil {
			return err
		}
		if _, err := merge.PeekFields(state, []uint64{notesField}, vals); err != nil {
			return nil
		}
		if vals[0] != nil && !bytes.Equal(vals[0], change.Null) && len(vals[0]) > 1 {
			c.ActivityNotes(ident.ID(idb), report.DayTime(day))
		}
		return nil
	}, `SELECT f.id, f.day, r.state FROM activity_facts f JOIN records r ON r.id = f.id WHERE f.day <= ? AND NOT r.erased`, cutoff)
	if err != nil {
		return nil, 0, fmt.Errorf("reading notes: %w", err)
	}
	return c, at, nil
}

// Recheck takes out of pl what a change logged after the hub seq at (what
// the census read) may have made wrong: a person one of those changes
// refers to (a new session, a consent, an edit) and their assessments,
// and any record those changes touched. They are left for the next purge,
// which sees them. r reads in the purge's write transaction.
func Recheck(ctx context.Context, r Reader, at int64, pl retention.Plan) (retention.Plan, error) {
	return NewRechecker(at).Check(ctx, r, pl)
}

// A Rechecker rechecks the chunks of one purge (Recheck), each reading
// only the changes logged since the one before: a purge of a large hub
// runs in many transactions, and reading from the census each time made
// it quadratic. The hub's own changes (the purge's earlier chunks, the
// coordinators' plans) are no contact with anyone.
type Rechecker struct {
	at              int64
	touched, people map[ident.ID]bool
}

// NewRechecker returns a rechecker of a census that read the log up to
// the hub seq at.
func NewRechecker(at int64) *Rechecker {
	return &Rechecker{at: at, touched: map[ident.ID]bool{}, people: map[ident.ID]bool{}}
}

// Check returns pl without what the changes logged since the census
// touch, those read by earlier checks included.
func (rc *Rechecker) Check(ctx context.Context, r Reader, pl retention.Plan) (retention.Plan, error) {
	var end int64
	if err := each(ctx, r, func(rows scanner) error { return rows.Scan(&end) }, `SELECT coalesce(max(hseq), 0) FROM changes`); err != nil {
		return pl, fmt.Errorf("reading the log's end: %w", err)
	}
	if end > rc.at {
		err := each(ctx, r, func(rows scanner) error {
			var (
				idb, state []byte
				kind       string
			)
			if err := rows.Scan(&idb, &kind, &state); err != nil {
				return err
			}
			id := ident.ID(idb)
			rc.touched[id] = true
			st, err := merge.Unmarshal(state)
			if err != nil {
				return nil
			}
			rec, err := change.Decode(domain.Kind(kind), id, st.Live())
			if err != nil {
				return nil
			}
			for _, p := range peopleOf(rec) {
				rc.people[p] = true
			}
			return nil
		}, `SELECT id, kind, state FROM records WHERE id IN (SELECT record_id FROM changes WHERE hseq > ? AND hseq <= ?
			AND device NOT IN (SELECT num FROM devices WHERE team = ''))`, rc.at, end)
		if err != nil {
			return pl, fmt.Errorf("reading the changes made since the purge's census: %w", err)
		}
		rc.at = end
	}
	if len(rc.touched) == 0 {
		return pl, nil
	}
	touched, people := rc.touched, rc.people
	var out retention.Plan
	for _, e := range pl.People {
		if people[e.Person] || touched[e.Person] || slices.ContainsFunc(e.Individuals, func(a ident.ID) bool { return touched[a] }) {
			continue
		}
		out.People = append(out.People, e)
	}
	for _, a := range pl.Assessments {
		if touched[a] {
			continue
		}
		var person ident.ID
		err := each(ctx, r, func(rows scanner) error {
			var state []byte
			if err := rows.Scan(&state); err != nil {
				return err
			}
			if st, err := merge.Unmarshal(state); err == nil {
				if rec, err := change.Decode(domain.KindAssessment, a, st.Live()); err == nil {
					person = rec.(*domain.Assessment).Beneficiaire
				}
			}
			return nil
		}, `SELECT state FROM records WHERE id = ?`, a[:])
		if err != nil {
			return pl, err
		}
		if !people[person] {
			out.Assessments = append(out.Assessments, a)
		}
	}
	for _, a := range pl.Notes {
		if !touched[a] {
			out.Notes = append(out.Notes, a)
		}
	}
	return out, nil
}

// peopleOf returns the persons a record is, or refers to.
func peopleOf(r domain.Record) []ident.ID {
	switch v := r.(type) {
	case *domain.Beneficiary:
		return []ident.ID{v.ID}
	case *domain.Consent:
		return []ident.ID{v.Beneficiaire}
	case *domain.Assessment:
		return []ident.ID{v.Beneficiaire}
	case *domain.Activity:
		var out []ident.ID
		if v.Beneficiaire != nil {
			out = append(out, *v.Beneficiaire)
		}
		if v.Participants != nil {
			out = append(out, v.Participants.Beneficiaires...)
		}
		return out
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// each runs q and calls fn for each row.
func each(ctx context.Context, r Reader, fn func(scanner) error, q string, args ...any) error {
	rows, done, err := r.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer done()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
