package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
)

// Retention: the hub sets how long each kind of personal data is kept
// (internal/retention) and the agent reads it after its sync rounds
// (syncclient); until it has, the defaults apply. A purge erases what has
// outlived its period with the erasure's own machinery — an erase change
// per record, the log scrubbed, the WAL folded into the file — so that it
// reaches the hub and the team's other laptops at the next sync, and no
// later change brings the data back (merge keeps an erasure sticky).

// Meta keys of retention, in clear: periods and a date are no personal
// data.
const (
	metaRetention = "retention_policy"    // retention.Policy as JSON
	metaPurgedAt  = "retention_purged_at" // RFC 3339: the last purge
	metaReadAt    = "retention_read_at"   // RFC 3339: when the hub's policy was last read
)

// PurgeEvery is how often a purge runs (PurgeDue): periods are in months,
// a day late is nothing, and a purge decrypts every record.
const PurgeEvery = 24 * time.Hour

// Retention returns the retention policy the hub last gave, or the
// default one. It works while locked.
func (s *Store) Retention(ctx context.Context) (retention.Policy, error) {
	var b []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaRetention).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return retention.Default(), nil
	}
	if err != nil {
		return retention.Default(), fmt.Errorf("reading the retention policy: %w", err)
	}
	var p retention.Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return retention.Default(), fmt.Errorf("reading the retention policy: %w", err)
	}
	return p, nil
}

// SetRetention records the policy the hub gave at (read then), and
// reports whether it differs from the one held: a new policy makes the
// next purge due at once. It works while locked.
func (s *Store) SetRetention(ctx context.Context, p retention.Policy, at time.Time) (changed bool, err error) {
	old, err := s.Retention(ctx)
	if err != nil {
		s.log.Warn("replacing an unreadable retention policy", "err", err)
	}
	changed = err != nil || !old.Equal(p)
	b, err := json.Marshal(p)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return false, err
	}
	kv := map[string]any{metaReadAt: at.UTC().Format(time.RFC3339)}
	if changed {
		// The last purge is forgotten: the next one applies the new periods.
		if _, err := w.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, metaPurgedAt); err != nil {
			return false, fmt.Errorf("recording the retention policy: %w", err)
		}
		kv[metaRetention] = string(b)
	}
	return changed, setMeta(ctx, w, kv)
}

// RetentionReadAt returns when the hub's policy was last read (zero:
// never): the sync client reads it again after PolicyEvery, whichever
// process (`agent sync`, `agent serve`) read it last.
func (s *Store) RetentionReadAt(ctx context.Context) (time.Time, error) {
	var at string
	err := s.r.QueryRowContext(ctx, `SELECT CAST(value AS TEXT) FROM meta WHERE key = ?`, metaReadAt).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reading when the retention policy was read: %w", err)
	}
	t, _ := time.Parse(time.RFC3339, at)
	return t, nil
}

// PurgeDue reports whether a purge is due at now: none yet, a new policy
// since the last, or the last PurgeEvery ago.
func (s *Store) PurgeDue(ctx context.Context, now time.Time) (bool, error) {
	var at string
	err := s.r.QueryRowContext(ctx, `SELECT CAST(value AS TEXT) FROM meta WHERE key = ?`, metaPurgedAt).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the last purge: %w", err)
	}
	t, err := time.Parse(time.RFC3339, at)
	return err != nil || now.Sub(t) >= PurgeEvery || now.Before(t), nil
}

// Purged says what a purge erased: counts only, never who.
type Purged struct {
	People      int `json:"people"`      // identities erased
	Assessments int `json:"assessments"` // diagnostics unlinked and their comments erased
	Notes       int `json:"notes"`       // activities whose notes were erased
	Records     int `json:"records"`     // records erased in all (a person's sessions included)
}

// PurgeExpired erases the personal data that has outlived the retention
// policy at now (retention.Census.Plan), in one transaction, and records
// the purge. The store must be unlocked: every record is read, decrypted,
// to know each person's last contact. Anonymous fields and activities
// stay: the statistics do not change.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (Purged, error) {
	p, err := s.Retention(ctx)
	if err != nil {
		return Purged{}, err
	}
	var out Purged
	_, err = s.write(ctx, func(w *writeTx) error {
		out = Purged{} // a retried transaction counts again
		c := retention.NewCensus(p, now)
		if err := w.censusAll(c); err != nil {
			return err
		}
		plan := c.Plan()
		for _, e := range plan.People {
			if err := w.eraseOne(domain.KindBeneficiary, e.Person); err != nil {
				return err
			}
			for _, a := range e.Individuals {
				if err := w.eraseOne(domain.KindActivity, a); err != nil {
					return err
				}
			}
			if err := w.dropDraftsOf(e.Person); err != nil {
				return err
			}
		}
		for _, a := range plan.Assessments {
			if err := w.eraseOne(domain.KindAssessment, a); err != nil {
				return err
			}
		}
		for _, a := range plan.Notes {
			if err := w.eraseOne(domain.KindActivity, a); err != nil {
				return err
			}
		}
		if err := w.scrubLog(); err != nil {
			return err
		}
		out = Purged{People: len(plan.People), Assessments: len(plan.Assessments), Notes: len(plan.Notes), Records: plan.Records()}
		return setMeta(w.ctx, w.tx, map[string]any{metaPurgedAt: now.UTC().Format(time.RFC3339)})
	})
	if err != nil {
		return Purged{}, fmt.Errorf("purging expired personal data: %w", err)
	}
	if out.Records > 0 {
		s.log.Info("expired personal data erased", "people", out.People, "assessments", out.Assessments,
			"notes", out.Notes, "records", out.Records)
	}
	return out, nil
}

// eraseOne erases record id of kind k, as an erasure does (erase).
func (w *writeTx) eraseOne(k domain.Kind, id ident.ID) error {
	st, stored, found, err := w.load(id)
	if err != nil {
		return err
	}
	if !found || stored != k {
		return fmt.Errorf("erasing %s %s: %w", k, id, ErrNotFound)
	}
	return w.erase(k, id, st)
}

// dropDraftsOf deletes the forms kept at a lock that were about person
// (their page's forms name them in their address): what was typed about
// someone erased goes with them.
func (w *writeTx) dropDraftsOf(person ident.ID) error {
	if _, err := w.tx.ExecContext(w.ctx, `DELETE FROM drafts WHERE instr(form, ?) > 0`, person.String()); err != nil {
		return fmt.Errorf("deleting the drafts about %s: %w", person, err)
	}
	return nil
}
