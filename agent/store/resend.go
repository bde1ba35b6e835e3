package store

import (
	"context"
	"fmt"
	"slices"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// ResendConsented writes again, as a new change at the end of the outbox,
// each record whose change the hub refused for want of a consent
// (wire.CodeNoConsent) when this laptop holds an active consent of the
// person for that purpose whose last change here came after the refused
// one: the consent had not reached the hub yet (a push batch ended
// between the person and their consent, an import listed the person
// first). The new change carries the record's current fields and goes
// out after the consent, which the hub then holds; its refusal is
// forgotten. Refusals without such a consent stay, shown to the mediator
// like the others.
//
// It cannot loop: a change written here comes after every consent change
// of the laptop, so if the hub refuses it too (the consent was refused,
// or belongs to another team), nothing is sent again until the mediator
// saves the consent anew. It returns the seqs of the refused changes it
// sent again. The store must be unlocked (the record is read and a change
// sealed); with nothing to send again it writes nothing.
func (s *Store) ResendConsented(ctx context.Context) ([]uint64, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM rejected WHERE code = ?`, wire.CodeNoConsent).Scan(&n); err != nil {
		return nil, fmt.Errorf("reading refused changes: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	var resent []uint64
	_, err := s.write(ctx, func(w *writeTx) error {
		resent = resent[:0]
		refused, err := w.refusedForConsent()
		if err != nil {
			return err
		}
		last, err := w.consentsLastSeq()
		if err != nil {
			return err
		}
		for _, r := range refused {
			ok, err := w.resendConsented(r.seq, r.id, last)
			if err != nil {
				return err
			}
			if ok {
				resent = append(resent, r.seq)
			}
		}
		return nil
	})
	return resent, err
}

type refusedChange struct {
	seq uint64
	id  ident.ID
}

// refusedForConsent lists the changes refused for want of a consent.
func (w *writeTx) refusedForConsent() ([]refusedChange, error) {
	rows, err := w.tx.QueryContext(w.ctx, `SELECT r.seq, c.record_id FROM rejected r JOIN changes c ON c.seq = r.seq
		WHERE r.code = ? ORDER BY r.seq`, wire.CodeNoConsent)
	if err != nil {
		return nil, fmt.Errorf("reading refused changes: %w", err)
	}
	defer rows.Close()
	var out []refusedChange
	for rows.Next() {
		var (
			r   refusedChange
			idb []byte
		)
		if err := rows.Scan(&r.seq, &idb); err != nil {
			return nil, fmt.Errorf("reading refused changes: %w", err)
		}
		copy(r.id[:], idb)
		out = append(out, r)
	}
	return out, rows.Err()
}

// resendConsented sends record id again if its change seq was refused
// before a consent of its person reached the hub (ResendConsented), and
// reports whether it did.
// last holds the last seq of each consent in the log.
func (w *writeTx) resendConsented(seq uint64, id ident.ID, last map[ident.ID]uint64) (bool, error) {
	st, k, found, err := w.load(id)
	if err != nil || !found || st.IsDeleted() {
		return false, err
	}
	r, err := change.Decode(k, id, st.Live())
	if err != nil {
		return false, err
	}
	var person ident.ID
	var finalite string
	switch r := r.(type) {
	case *domain.Beneficiary:
		person, finalite = id, domain.FinaliteSuivi
	case *domain.Assessment:
		person, finalite = r.Beneficiaire, domain.FinaliteDiagnostic
	default:
		return false, nil
	}
	later, err := w.consentAfter(person, finalite, seq, last)
	if err != nil || !later {
		return false, err
	}
	fields := st.Live()
	if k == domain.KindBeneficiary {
		// The hub took the person's other fields and refused only the
		// identifying ones (hub/syncserver withoutIdentity): send those
		// alone, lest a new stamp on the others undo a teammate's later
		// edit of them.
		fields = personalOnly(k, fields)
		if len(fields) == 0 {
			return false, nil
		}
	}
	if err := w.apply(st, &change.Change{Kind: k, ID: id, Op: change.OpUpsert, Fields: fields}); err != nil {
		return false, err
	}
	w.res.Updated++
	if _, err := w.tx.ExecContext(w.ctx, `DELETE FROM rejected WHERE seq = ?`, int64(seq)); err != nil {
		return false, fmt.Errorf("forgetting the refusal of change %d: %w", seq, err)
	}
	return true, nil
}

// consentAfter reports whether person has a consent giving finalite whose
// last change in this laptop's log (last) is after seq. A consent pulled
// from the team is not in the log: the hub had it already.
func (w *writeTx) consentAfter(person ident.ID, finalite string, seq uint64, last map[ident.ID]uint64) (bool, error) {
	idx, err := w.consentIndex()
	if err != nil {
		return false, err
	}
	for cid, active := range idx.by[person] {
		if slices.Contains(active, finalite) && last[cid] > seq {
			return true, nil
		}
	}
	return false, nil
}

// consentsLastSeq returns the last seq of each consent in the log: one
// pass over the log, however many refusals there are.
func (w *writeTx) consentsLastSeq() (map[ident.ID]uint64, error) {
	rows, err := w.tx.QueryContext(w.ctx, `SELECT record_id, max(seq) FROM changes WHERE kind = ? GROUP BY record_id`, string(domain.KindConsent))
	if err != nil {
		return nil, fmt.Errorf("reading the changes of consents: %w", err)
	}
	defer rows.Close()
	out := map[ident.ID]uint64{}
	for rows.Next() {
		var (
			idb []byte
			seq int64
			id  ident.ID
		)
		if err := rows.Scan(&idb, &seq); err != nil {
			return nil, fmt.Errorf("reading the changes of consents: %w", err)
		}
		copy(id[:], idb)
		out[id] = uint64(seq)
	}
	return out, rows.Err()
}

// personalOnly returns the personal fields of f.
func personalOnly(k domain.Kind, f change.Fields) change.Fields {
	out := change.Fields{}
	for _, n := range domain.PersonalFields(k) {
		if v, ok := f[n]; ok {
			out[n] = v
		}
	}
	return out
}
