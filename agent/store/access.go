package store

import (
	"context"
	"errors"
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

// Dossier gathers everything this store holds about person, for their
// right of access (internal/access): their record, the consents,
// assessments and activities about them — deleted ones included, whose
// fields are still held — with the writes of each that this device
// logged, and the changes about them the hub refused. It reads every
// record once: an export is rare, and a person's deleted records are not
// in the lookup index. The store must be unlocked.
func (s *Store) Dossier(ctx context.Context, person ident.ID, now time.Time) (*access.Dossier, error) {
	d := &access.Dossier{Person: person, Made: now,
		Partial: "Ce poste ne garde l'historique que des enregistrements qu'il a faits lui-même ; le hub de coordination garde celui de toute l'équipe."}
	me := s.Device()
	h, err := s.Hub(ctx)
	switch {
	case err == nil:
		d.Holder = fmt.Sprintf("le poste de médiation « %s » (équipe %s)", h.DeviceName, h.Team)
		me = h.DeviceName
	case errors.Is(err, ErrNotEnrolled):
		d.Holder = "le poste de médiation " + me
	default:
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return nil, ErrLocked
	}
	kinds := map[ident.ID]domain.Kind{}
	for _, k := range []domain.Kind{domain.KindBeneficiary, domain.KindConsent, domain.KindAssessment, domain.KindActivity} {
		err := s.scanKind(ctx, s.r, k, func(id ident.ID, st *merge.State) error {
			r, err := change.Decode(k, id, st.Live())
			if err != nil {
				if id == person {
					return err
				}
				s.log.Warn("record left out of an access export: it does not decode", "kind", k, "id", id, "err", err)
				return nil
			}
			if !about(r, person) {
				return nil
			}
			e := access.Entry{Record: r, Deleted: st.IsDeleted(), Erased: st.IsErased(), Updated: st.Last.TS.Time()}
			if e.History, err = s.history(ctx, k, id, me); err != nil {
				return err
			}
			kinds[id] = k
			switch k {
			case domain.KindBeneficiary:
				d.Beneficiary = &e
			case domain.KindConsent:
				d.Consents = append(d.Consents, e)
			case domain.KindAssessment:
				d.Assessments = append(d.Assessments, e)
			case domain.KindActivity:
				d.Activities = append(d.Activities, e)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("gathering the data about %s: %w", person, err)
		}
	}
	rs, err := s.RejectedChanges(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if _, ok := kinds[r.ID]; ok {
			at, _ := time.Parse(time.RFC3339, r.At)
			d.Refused = append(d.Refused, access.Refusal{At: at, Kind: r.Kind, ID: r.ID, Code: r.Code, Reason: r.Reason})
		}
	}
	p, err := s.Retention(ctx)
	if err != nil {
		return nil, err
	}
	d.Policy = &p
	return d, nil
}

// about reports whether r is person's record or about them.
func about(r domain.Record, person ident.ID) bool {
	switch v := r.(type) {
	case *domain.Beneficiary:
		return v.ID == person
	case *domain.Consent:
		return v.Beneficiaire == person
	case *domain.Assessment:
		return v.Beneficiaire == person
	case *domain.Activity:
		return v.Beneficiaire != nil && *v.Beneficiaire == person ||
			v.Participants != nil && slices.Contains(v.Participants.Beneficiaires, person)
	}
	return false
}

// history returns the writes of record id this device (named device)
// logged, oldest first, opened. s.mu is held and the key present.
func (s *Store) history(ctx context.Context, k domain.Kind, id ident.ID, device string) ([]access.Step, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, hlc, op, body FROM changes WHERE record_id = ? ORDER BY seq`, id[:])
	if err != nil {
		return nil, fmt.Errorf("reading the history of %s: %w", id, err)
	}
	defer rows.Close()
	var out []access.Step
	for rows.Next() {
		var (
			seq, h int64
			op     int
			body   []byte
		)
		if err := rows.Scan(&seq, &h, &op, &body); err != nil {
			return nil, fmt.Errorf("reading the history of %s: %w", id, err)
		}
		st := access.Step{At: hlc.Timestamp(h).Time(), Device: device, Op: change.Op(op)}
		raw, err := s.key.Open(nil, body, changeAD(k, id, uint64(seq)))
		if err != nil {
			return nil, fmt.Errorf("opening change %d: %w", seq, err)
		}
		if err := change.Unmarshal(raw, &st.Fields); err != nil {
			return nil, fmt.Errorf("reading change %d: %w", seq, err)
		}
		clear(raw)
		out = append(out, st)
	}
	return out, rows.Err()
}
