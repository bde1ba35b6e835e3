package store

import (
	"context"
	"fmt"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// Rejected is a change of this device that the hub refused: kept in the
// log (the record keeps its local state), out of the outbox, and shown to
// the mediator until the record is corrected.
type Rejected struct {
	Seq    uint64        `json:"seq"`
	Kind   domain.Kind   `json:"kind"`
	ID     ident.ID      `json:"record_id"`
	Code   string        `json:"code"` // wire.CodeInvalid, wire.CodeClockAhead, wire.CodeNoConsent
	Reason string        `json:"reason"`
	Ahead  time.Duration `json:"ahead_ns,omitempty"` // CodeClockAhead: how far ahead of the hub
	At     string        `json:"at"`                 // RFC 3339
}

// Reject records the hub's refusals of changes of this device. It needs
// no passphrase (a locked agent pushes too) and no more room than a few
// small rows; a refusal seen again (a retried batch) replaces the first.
func (s *Store) Reject(ctx context.Context, rs []wire.Rejection, at time.Time) error {
	if len(rs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording refused changes: %w", err)
	}
	defer tx.Rollback()
	when := at.UTC().Format(time.RFC3339)
	for _, r := range rs {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO rejected(seq, code, reason, ahead_ms, at) VALUES (?, ?, ?, ?, ?)`,
			int64(r.Seq), r.Code, r.Reason, int64(min(r.Ahead, 1<<62)), when); err != nil {
			return fmt.Errorf("recording refused change %d: %w", r.Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording refused changes: %w", err)
	}
	return nil
}

// RejectedChanges lists the changes the hub refused, in seq order. It
// needs no passphrase: it reads no record content.
func (s *Store) RejectedChanges(ctx context.Context) ([]Rejected, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.seq, coalesce(c.kind, ''), coalesce(c.record_id, x''), r.code, r.reason, r.ahead_ms, r.at
		FROM rejected r LEFT JOIN changes c ON c.seq = r.seq ORDER BY r.seq`)
	if err != nil {
		return nil, fmt.Errorf("reading refused changes: %w", err)
	}
	defer rows.Close()
	var out []Rejected
	for rows.Next() {
		var r Rejected
		var id []byte
		var ahead int64
		if err := rows.Scan(&r.Seq, &r.Kind, &id, &r.Code, &r.Reason, &ahead, &r.At); err != nil {
			return nil, fmt.Errorf("reading refused changes: %w", err)
		}
		copy(r.ID[:], id)
		r.Ahead = time.Duration(min(ahead, int64(1<<63-1)/int64(time.Millisecond))) * time.Millisecond
		out = append(out, r)
	}
	return out, rows.Err()
}

// Explain says in French, for the mediator, why the hub refused r and
// what to do.
func (r Rejected) Explain() string {
	switch r.Code {
	case wire.CodeClockAhead:
		return fmt.Sprintf("l'horloge de ce poste est en avance de %s : réglez la date et l'heure de l'ordinateur, puis modifiez de nouveau la fiche", frenchDuration(r.Ahead))
	case wire.CodeNoConsent:
		return "le hub n'a reçu aucun consentement de la personne pour ces données (" + r.Reason + ") : enregistrez son consentement, puis modifiez de nouveau la fiche"
	case wire.CodeInvalid:
		return "contenu refusé par le hub (" + r.Reason + ") : corrigez la fiche puis enregistrez-la de nouveau"
	}
	return "refusé par le hub : " + r.Reason
}

// frenchDuration writes d as days, hours and minutes: « 2 j 3 h 10 min ».
func frenchDuration(d time.Duration) string {
	if d < time.Minute {
		return "moins d'une minute"
	}
	days, rest := d/(24*time.Hour), d%(24*time.Hour)
	h, m := rest/time.Hour, (rest%time.Hour)/time.Minute
	out := ""
	if days > 0 {
		out += fmt.Sprintf("%d j ", days)
	}
	if h > 0 || days > 0 {
		out += fmt.Sprintf("%d h ", h)
	}
	if days == 0 {
		out += fmt.Sprintf("%d min ", m)
	}
	return out[:len(out)-1]
}
