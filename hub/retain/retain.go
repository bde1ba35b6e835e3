// Package retain is retention and the right of access at the hub: the
// periods a coordinator sets (`hub retention set`), served to the agents
// (Handler) and applied by a daily purge of the hub's own copy (Loop),
// and a person's dossier for the data protection officer (`hub access`).
//
// The hub's stores (hub/store/sqlite, hub/store/postgres) implement
// [Store]. What they share beyond their SQL is here: gathering the
// census of a purge (Gather, over a [Reader] in either dialect), the
// check that nothing changed under a plan between its reading and its
// writing (Recheck), and the reading of a dossier (ReadDossier). A purge
// writes erase changes as the hub's own device — the device that writes
// planned stops (hub/plan) —, in the teams' logs: the agents receive
// them at their next pull and erase too, and the merge keeps them
// erased. hub/retain/retaintest is the suite both stores pass.
package retain

import (
	"context"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/access"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
)

// Store is what the hub's stores implement for retention and access.
type Store interface {
	// RetentionPolicy returns the periods set at the hub, the defaults
	// for the kinds never set.
	RetentionPolicy(ctx context.Context) (retention.Policy, error)
	// SetRetentionPolicy records p.
	SetRetentionPolicy(ctx context.Context, p retention.Policy) error
	// PurgeExpired erases, as the hub, what has outlived the stored policy
	// at now (retention.Census.Plan) in every team, and the audit entries
	// older than its journal period.
	PurgeExpired(ctx context.Context, now time.Time) (Purged, error)
	// Dossier gathers what the hub holds about person (ReadDossier).
	Dossier(ctx context.Context, person ident.ID, now time.Time) (*access.Dossier, error)
}

// Purged says what a purge erased: counts, never who.
type Purged struct {
	People      int `json:"people"`      // identities erased
	Assessments int `json:"assessments"` // diagnostics unlinked, comments erased
	Notes       int `json:"notes"`       // activities whose notes were erased
	Records     int `json:"records"`     // records erased in all
	Audit       int `json:"audit"`       // audit entries deleted
}

// Reader runs the read queries of this package in a store's dialect.
// Queries are written with ? placeholders, which a PostgreSQL reader
// numbers.
type Reader interface {
	// Query runs q and returns its rows and the function closing them.
	Query(ctx context.Context, q string, args ...any) (store.Rows, func(), error)
	// BlobContains returns the condition "blob column col holds the
	// bytes of the next argument".
	BlobContains(col string) string
}

// Target is one record a purge erases, and why.
type Target struct {
	Kind domain.Kind
	ID   ident.ID
	// Why: "identite" (a person, or a session of theirs), "diagnostics",
	// "notes".
	Why retention.Kind
}

// EachTarget calls fn for each record pl erases, in the order they are
// to be erased: each person, then their sessions; the assessments; the
// notes.
func EachTarget(pl retention.Plan, fn func(Target) error) error {
	for _, e := range pl.People {
		if err := fn(Target{domain.KindBeneficiary, e.Person, retention.Identite}); err != nil {
			return err
		}
		for _, a := range e.Individuals {
			if err := fn(Target{domain.KindActivity, a, retention.Identite}); err != nil {
				return err
			}
		}
	}
	for _, a := range pl.Assessments {
		if err := fn(Target{domain.KindAssessment, a, retention.Diagnostics}); err != nil {
			return err
		}
	}
	for _, a := range pl.Notes {
		if err := fn(Target{domain.KindActivity, a, retention.Notes}); err != nil {
			return err
		}
	}
	return nil
}

// Count adds t, erased, to p.
func (p *Purged) Count(t Target) {
	p.Records++
	switch {
	case t.Kind == domain.KindBeneficiary:
		p.People++
	case t.Why == retention.Diagnostics:
		p.Assessments++
	case t.Why == retention.Notes:
		p.Notes++
	}
}

// AuditCutoff is the time before which the audit log's entries are
// deleted at now under p.
func AuditCutoff(p retention.Policy, now time.Time) time.Time {
	return now.AddDate(0, -p.Months(retention.Journal), 0)
}

// ChunkRecords is how many records one transaction of a purge erases at
// most: a first purge of a large hub erases hundreds of thousands, and
// the sync's writers wait for each transaction.
const ChunkRecords = 2000

// Chunks cuts pl into plans of about size records each, in its order (a
// person stays with their sessions).
func Chunks(pl retention.Plan, size int) []retention.Plan {
	var out []retention.Plan
	var cur retention.Plan
	n := 0
	flush := func() {
		if !cur.Empty() {
			out = append(out, cur)
		}
		cur, n = retention.Plan{}, 0
	}
	for _, e := range pl.People {
		if n > 0 && n+1+len(e.Individuals) > size {
			flush()
		}
		cur.People = append(cur.People, e)
		n += 1 + len(e.Individuals)
	}
	for _, a := range pl.Assessments {
		if n >= size {
			flush()
		}
		cur.Assessments = append(cur.Assessments, a)
		n++
	}
	for _, a := range pl.Notes {
		if n >= size {
			flush()
		}
		cur.Notes = append(cur.Notes, a)
		n++
	}
	flush()
	return out
}

// Add adds q's counts to p.
func (p *Purged) Add(q Purged) {
	p.People += q.People
	p.Assessments += q.Assessments
	p.Notes += q.Notes
	p.Records += q.Records
	p.Audit += q.Audit
}
