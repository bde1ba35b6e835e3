package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// Consents returns the consents of team's persons in beneficiaries and
// the consents with an id in ids (store.Store.Consents), in one
// repeatable-read transaction so that both look-ups see the same batches.
func (s *Store) Consents(ctx context.Context, team string, beneficiaries, ids []ident.ID) ([]store.Consent, error) {
	var out []store.Consent
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT r.id, r.team, r.state FROM consent_subjects c JOIN records r ON r.id = c.id
			WHERE c.team = $1 AND c.beneficiary = ANY($2)
			UNION SELECT id, team, state FROM records WHERE kind = 'consent' AND id = ANY($3)`,
			team, idBytes(beneficiaries), idBytes(ids))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanConsent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading consents: %w", err)
	}
	return out, nil
}

func scanConsent(r pgx.CollectableRow) (store.Consent, error) {
	var (
		c          store.Consent
		idb, state []byte
	)
	if err := r.Scan(&idb, &c.Team, &state); err != nil {
		return c, err
	}
	if len(idb) != len(c.ID) {
		return c, fmt.Errorf("consent id of %d bytes", len(idb))
	}
	copy(c.ID[:], idb)
	c.Stored = state // for ApplyPinned (pgx gives each row its own bytes)
	var err error
	if c.State, err = merge.Unmarshal(state); err != nil {
		return c, fmt.Errorf("consent %s: %w", c.ID, err)
	}
	return c, nil
}

func idBytes(ids []ident.ID) [][]byte {
	out := make([][]byte, len(ids))
	for i := range ids {
		out[i] = ids[i][:]
	}
	return out
}

// queueConsentSubject queues in b the record of whose consent p is,
// when its state names a person.
func queueConsentSubject(b *pgx.Batch, p *pending) {
	r, err := change.Decode(domain.KindConsent, p.id, p.st.Live())
	if err != nil {
		return // checked when it came: a record from before those checks
	}
	bn := r.(*domain.Consent).Beneficiaire
	if bn.IsZero() {
		return
	}
	b.Queue(`INSERT INTO consent_subjects(id, team, beneficiary) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET beneficiary = excluded.beneficiary`, p.id[:], p.team, bn[:])
}
