package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// consentChunk bounds the ids of one look-up statement, well under
// SQLite's limit on bound values.
const consentChunk = 500

// Consents returns the consents of team's persons in beneficiaries and
// the consents with an id in ids (store.Store.Consents), read through
// consent_subjects, which ApplyBatch keeps beside the records.
func (s *Store) Consents(ctx context.Context, team string, beneficiaries, ids []ident.ID) ([]store.Consent, error) {
	out, _, err := s.ConsentsAt(ctx, team, beneficiaries, ids)
	return out, err
}

// ConsentsAt is Consents with the consent counter as the same read
// transaction saw it (store.ConsentVersioner).
func (s *Store) ConsentsAt(ctx context.Context, team string, beneficiaries, ids []ident.ID) ([]store.Consent, int64, error) {
	// One read transaction: both look-ups and the counter see the same
	// batches applied.
	tx, err := s.sr.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("reading consents: %w", err)
	}
	defer tx.Rollback()
	version, err := consentVersionIn(ctx, tx)
	if err != nil {
		return nil, 0, err
	}
	seen := map[ident.ID]bool{}
	var out []store.Consent
	read := func(q string, pre []any, list []ident.ID) error {
		for len(list) > 0 {
			n := min(len(list), consentChunk)
			args := append(append(make([]any, 0, len(pre)+n), pre...), idArgs(list[:n])...)
			rows, err := tx.QueryContext(ctx, q+strings.TrimSuffix(strings.Repeat("?, ", n), ", ")+")", args...)
			if err != nil {
				return err
			}
			if out, err = scanConsents(rows, seen, out); err != nil {
				return err
			}
			list = list[n:]
		}
		return nil
	}
	if err := read(`SELECT r.id, r.team, r.state FROM consent_subjects c JOIN records r ON r.id = c.id
		WHERE c.team = ? AND c.beneficiary IN (`, []any{team}, beneficiaries); err != nil {
		return nil, 0, fmt.Errorf("reading the consents of %d persons: %w", len(beneficiaries), err)
	}
	if err := read(`SELECT id, team, state FROM records WHERE kind = 'consent' AND id IN (`, nil, ids); err != nil {
		return nil, 0, fmt.Errorf("reading %d consents: %w", len(ids), err)
	}
	return out, version, nil
}

// ConsentVersion returns the counter of writes to consents, which
// triggers move with every write (schema/hub/0009_consent_version.sql).
func (s *Store) ConsentVersion(ctx context.Context) (int64, error) {
	var version int64
	if err := s.sr.QueryRowContext(ctx, `SELECT n FROM consent_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("reading the consents' version: %w", err)
	}
	return version, nil
}

// consentVersionIn returns the counter as transaction tx sees it.
func consentVersionIn(ctx context.Context, tx *sql.Tx) (int64, error) {
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT n FROM consent_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("reading the consents' version: %w", err)
	}
	return version, nil
}

func idArgs(ids []ident.ID) []any {
	out := make([]any, len(ids))
	for i := range ids {
		out[i] = ids[i][:]
	}
	return out
}

// scanConsents appends the consents of rows not seen yet to out, and
// closes rows.
func scanConsents(rows *sql.Rows, seen map[ident.ID]bool, out []store.Consent) ([]store.Consent, error) {
	defer rows.Close()
	for rows.Next() {
		var (
			c     store.Consent
			idb   []byte
			state []byte
		)
		if err := rows.Scan(&idb, &c.Team, &state); err != nil {
			return out, err
		}
		if len(idb) != len(c.ID) {
			return out, fmt.Errorf("consent id of %d bytes", len(idb))
		}
		copy(c.ID[:], idb)
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		var err error
		if c.State, err = merge.Unmarshal(state); err != nil {
			return out, fmt.Errorf("consent %s: %w", c.ID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// putSubjectConflict is what writing the person of a consent already
// recorded does.
const putSubjectConflict = `ON CONFLICT(id) DO UPDATE SET beneficiary = excluded.beneficiary`

// consentPerson returns the person a merged consent is of, or false when
// its state names none (or does not decode: the hub checked its fields
// when they came, so this is a record from before those checks).
func consentPerson(id ident.ID, st *merge.State) (ident.ID, bool) {
	r, err := change.Decode(domain.KindConsent, id, st.Live())
	if err != nil {
		return ident.Nil, false
	}
	b := r.(*domain.Consent).Beneficiaire
	return b, !b.IsZero()
}

// putConsentSubjects records the person of each consent the batch merged,
// in tx: a consent's person is set when it is created and may only be
// rewritten by a later write of that field. The rows go in the prepared
// multi-row statements of putSubjects: one statement prepared per
// consent was most of the time a batch spent on its consents.
func (s *Store) putConsentSubjects(ctx context.Context, tx *sql.Tx, order []*pending) error {
	args := consentSubjectArgs(order)
	if err := s.putSubjects.exec(ctx, tx, args); err != nil {
		return fmt.Errorf("recording the persons of %d consents: %w", len(args)/3, err)
	}
	return nil
}

// consentSubjectArgs returns the consent_subjects rows of the consents of
// order that merged a change and name their person.
func consentSubjectArgs(order []*pending) []any {
	var args []any
	for _, p := range order {
		if !p.dirty || p.kind != domain.KindConsent {
			continue
		}
		if b, ok := consentPerson(p.id, p.st); ok {
			args = append(args, p.id[:], p.team, b[:])
		}
	}
	return args
}

// putConsentSubject records the person of one consent, in tx.
func putConsentSubject(ctx context.Context, tx *sql.Tx, id ident.ID, team string, st *merge.State) error {
	b, ok := consentPerson(id, st)
	if !ok {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO consent_subjects(id, team, beneficiary) VALUES (?, ?, ?) `+putSubjectConflict, id[:], team, b[:]); err != nil {
		return fmt.Errorf("recording the person of consent %s: %w", id, err)
	}
	return nil
}

// backfillConsentSubjects fills consent_subjects from the merged consents
// when the migration that created it found some (facts_meta key
// consent_subjects), in one transaction, then clears the flag. Open calls
// it.
func (s *Store) backfillConsentSubjects(ctx context.Context) error {
	var need int
	err := s.w.QueryRowContext(ctx, `SELECT coalesce((SELECT value FROM facts_meta WHERE key = 'consent_subjects'), 0)`).Scan(&need)
	if err != nil || need == 0 {
		if err != nil {
			return fmt.Errorf("reading consent index state: %w", err)
		}
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("indexing consents: %w", err)
	}
	defer tx.Rollback()
	type rec struct {
		id   ident.ID
		team string
		st   *merge.State
	}
	var recs []rec
	rows, err := tx.QueryContext(ctx, `SELECT id, team, state FROM records WHERE kind = 'consent'`)
	if err != nil {
		return fmt.Errorf("indexing consents: %w", err)
	}
	for rows.Next() {
		var (
			r          rec
			idb, state []byte
		)
		if err := rows.Scan(&idb, &r.team, &state); err != nil {
			rows.Close()
			return fmt.Errorf("indexing consents: %w", err)
		}
		copy(r.id[:], idb)
		if r.st, err = merge.Unmarshal(state); err != nil {
			rows.Close()
			return fmt.Errorf("indexing consent %s: %w", r.id, err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("indexing consents: %w", err)
	}
	for _, r := range recs {
		if err := putConsentSubject(ctx, tx, r.id, r.team, r.st); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM facts_meta WHERE key = 'consent_subjects'`); err != nil {
		return fmt.Errorf("indexing consents: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("indexing consents: %w", err)
	}
	s.log.Info("consents indexed by person", "consents", len(recs))
	return nil
}
