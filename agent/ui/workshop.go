package ui

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// A workshop counts its participants; those who are followed can be named
// among them, from their own page: « Présent(e) à cet atelier ». The
// others stay anonymous head counts.

// workshopView is one of today's workshops on a person's page.
type workshopView struct {
	ID       string
	Label    string // time, place, themes
	Attended bool
}

// attendedBy reports whether b is a followed participant of workshop a.
func attendedBy(a *domain.Activity, b ident.ID) bool {
	return a.Type == "collectif" && a.Participants != nil && slices.Contains(a.Participants.Beneficiaires, b)
}

// todaysWorkshops lists the workshops recorded today, read by id range
// (store.ListRecent), with whether b took part.
func (s *Server) todaysWorkshops(ctx context.Context, b ident.ID) ([]workshopView, error) {
	today := s.today()
	var out []workshopView
	err := s.cfg.Store.ListRecent(ctx, domain.KindActivity, s.cfg.Now().Add(-36*time.Hour), func(it store.Item) error {
		a, ok := it.Record.(*domain.Activity)
		if !ok || a.Type != "collectif" || a.Date != today {
			return nil
		}
		label := a.ID.Time().In(time.Local).Format("15:04")
		if c := s.communeName(a.Commune); c != "" {
			label += " — " + c
		}
		if len(a.Thematiques) > 0 {
			label += " — " + domain.Thematiques.Label(a.Thematiques[0])
		}
		out = append(out, workshopView{ID: a.ID.String(), Label: label, Attended: attendedBy(a, b)})
		return nil
	})
	return out, err
}

// postWorkshopParticipant names a followed person among the participants
// of a workshop: the head count stays, grown if it was short.
func (s *Server) postWorkshopParticipant(w http.ResponseWriter, r *http.Request) {
	wid, err1 := ident.Parse(r.PathValue("id"))
	bid, err2 := ident.Parse(r.PostFormValue("beneficiaire"))
	if err1 != nil || err2 != nil {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := saveContext(r)
	defer cancel()
	it, err := s.cfg.Store.Get(ctx, wid)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if s.lockedErr(w, r, err) {
		return
	}
	a, ok := it.Record.(*domain.Activity)
	if !ok || it.Deleted || a.Type != "collectif" {
		http.NotFound(w, r)
		return
	}
	back := "/beneficiaires/" + bid.String()
	if attendedBy(a, bid) {
		s.setFlash(sessionOf(r), tr("workshop_already"))
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	p := domain.Participants{}
	if a.Participants != nil {
		p = *a.Participants
	}
	p.Beneficiaires = append(slices.Clone(p.Beneficiaires), bid)
	p.Total = max(p.Total, len(p.Beneficiaires))
	a.Participants = &p
	if _, err := s.cfg.Store.Save(ctx, a); err != nil {
		var ve *domain.ValidationError
		if errors.As(err, &ve) {
			s.setFlash(sessionOf(r), tr("workshop_refused", ve.Error()))
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		if msg, ok := diskRefused(err); ok {
			s.setFlash(sessionOf(r), msg)
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		if s.lockedErr(w, r, err) {
			return
		}
	}
	s.setFlash(sessionOf(r), tr("workshop_added"))
	http.Redirect(w, r, back, http.StatusSeeOther)
}
