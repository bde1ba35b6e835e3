package store

import (
	"context"
	"fmt"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// EraseBeneficiary erases a person at their request (shared/DOMAIN.md):
// their identifying fields, their assessments' comments and link to them,
// and the notes of their individual activities are stripped — from the
// records and from every change still in the log — while the anonymous
// record and the activities' statistics stay. Each stripped record gets an
// erase change, so the hub and the team's other agents erase too.
func (s *Store) EraseBeneficiary(ctx context.Context, id ident.ID) (Result, error) {
	return s.write(ctx, func(w *writeTx) error {
		if err := w.eraseBeneficiary(id, true, true); err != nil {
			return err
		}
		return w.scrubLog()
	})
}

// WithdrawConsent withdraws purposes of a consent (all when finalites is
// empty) on date, and erases what they covered and no other consent of the
// person still gives: the identity for suivi_nominatif, the assessments for
// diagnostic.
func (s *Store) WithdrawConsent(ctx context.Context, consentID ident.ID, finalites []string, date string) (domain.Effects, error) {
	var eff domain.Effects
	_, err := s.write(ctx, func(w *writeTx) error {
		st, k, found, err := w.load(consentID)
		if err != nil {
			return err
		}
		if !found || k != domain.KindConsent || st.IsDeleted() {
			return fmt.Errorf("consent %s: %w", consentID, ErrNotFound)
		}
		r, err := change.Decode(k, consentID, st.Live())
		if err != nil {
			return err
		}
		c := r.(*domain.Consent)
		for _, f := range finalites {
			if !domain.Finalites.Has(f) {
				return &domain.ValidationError{Kind: domain.KindConsent, ID: consentID.String(), Problems: []domain.Problem{{
					Field: "finalites", Value: f, Code: domain.ProblemUnknownCode,
					Message: "code inconnu", Allowed: domain.Finalites.Allowed()}}}
			}
		}
		idx, err := w.consentIndex()
		if err != nil {
			return err
		}
		eff = c.Withdraw(finalites, date, idx.active(c.Beneficiaire, c.ID))
		if err := w.put(c); err != nil {
			return err
		}
		if err := c.Validate(w); err != nil {
			return err
		}
		if err := w.eraseBeneficiary(c.Beneficiaire, eff.EraseIdentity, eff.EraseAssessments); err != nil {
			return err
		}
		return w.scrubLog()
	})
	return eff, err
}

// erase strips the personal fields of one record with an erase change.
func (w *writeTx) erase(k domain.Kind, id ident.ID, st *merge.State) error {
	w.erased = append(w.erased, id)
	w.kinds[id] = k
	if st.IsErased() {
		return nil // already erased: its log is scrubbed again below
	}
	w.res.Updated++
	return w.apply(st, &change.Change{Kind: k, ID: id, Op: change.OpErase})
}

func (w *writeTx) eraseBeneficiary(id ident.ID, identity, assessments bool) error {
	st, k, found, err := w.load(id)
	if err != nil {
		return err
	}
	if !found || k != domain.KindBeneficiary {
		return fmt.Errorf("beneficiary %s: %w", id, ErrNotFound)
	}
	if identity {
		if err := w.erase(k, id, st); err != nil {
			return err
		}
		if err := w.dropDraftsOf(id); err != nil {
			return err
		}
	}
	type target struct {
		k  domain.Kind
		id ident.ID
		st *merge.State
	}
	var targets []target
	if assessments {
		err := w.s.scanKind(w.ctx, w.tx, domain.KindAssessment, func(aid ident.ID, ast *merge.State) error {
			r, err := change.Decode(domain.KindAssessment, aid, ast.Live())
			if err != nil {
				return err
			}
			if r.(*domain.Assessment).Beneficiaire == id {
				targets = append(targets, target{domain.KindAssessment, aid, ast})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if identity {
		err := w.s.scanKind(w.ctx, w.tx, domain.KindActivity, func(aid ident.ID, ast *merge.State) error {
			r, err := change.Decode(domain.KindActivity, aid, ast.Live())
			if err != nil {
				return err
			}
			if b := r.(*domain.Activity).Beneficiaire; b != nil && *b == id {
				targets = append(targets, target{domain.KindActivity, aid, ast})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, t := range targets {
		if err := w.erase(t.k, t.id, t.st); err != nil {
			return err
		}
	}
	return nil
}

// scrubLog removes the personal fields of the erased records from every
// change of theirs in the log, re-sealing what remains, so that erasure
// leaves nothing behind even in sealed form. The log has no index by
// record: one pass over it serves every record erased, however many (a
// retention purge erases thousands at once).
func (w *writeTx) scrubLog() error {
	if len(w.erased) == 0 {
		return nil
	}
	erased := make(map[ident.ID]bool, len(w.erased))
	for _, id := range w.erased {
		erased[id] = true
	}
	rows, err := w.tx.QueryContext(w.ctx, `SELECT seq, kind, record_id, body FROM changes WHERE op = ?`, int(change.OpUpsert))
	if err != nil {
		return fmt.Errorf("scrubbing the log: %w", err)
	}
	type upd struct {
		seq   uint64
		body  []byte
		hbody []byte
		hkey  any
	}
	var upds []upd
	for rows.Next() {
		var (
			seq  uint64
			k    domain.Kind
			idb  []byte
			body []byte
		)
		if err := rows.Scan(&seq, &k, &idb, &body); err != nil {
			rows.Close()
			return fmt.Errorf("scrubbing the log: %w", err)
		}
		id := ident.ID(idb)
		if len(idb) != len(id) || !erased[id] {
			continue
		}
		raw, err := w.s.key.Open(nil, body, changeAD(k, id, seq))
		if err != nil {
			rows.Close()
			return fmt.Errorf("scrubbing change %d: %w", seq, err)
		}
		raw, dropped, err := change.WithoutPersonalEncoded(k, raw)
		if err != nil {
			rows.Close()
			return fmt.Errorf("scrubbing change %d: %w", seq, err)
		}
		if !dropped {
			continue
		}
		sealed, err := w.s.key.Seal(nil, raw, changeAD(k, id, seq))
		if err != nil {
			rows.Close()
			return err
		}
		hb, hk, err := w.sealForHub(k, id, seq, raw)
		if err != nil {
			rows.Close()
			return err
		}
		upds = append(upds, upd{seq, sealed, hb, hk})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scrubbing the log: %w", err)
	}
	for _, u := range upds {
		if _, err := w.tx.ExecContext(w.ctx, `UPDATE changes SET body = ?, hub_body = ?, hub_key = ? WHERE seq = ?`, u.body, u.hbody, u.hkey, u.seq); err != nil {
			return fmt.Errorf("scrubbing change %d: %w", u.seq, err)
		}
	}
	return nil
}
