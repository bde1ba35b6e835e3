package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/plan"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// Planner plans tour stops at the hub: the stops enter the hub's change
// log and reach the team's agents at their next sync (the hub's SQLite
// store implements it, see hub/plan).
type Planner interface {
	PlanStops(ctx context.Context, team string, stops []domain.TourStop, now time.Time) ([]domain.TourStop, error)
	CancelStop(ctx context.Context, team string, id ident.ID, now time.Time) error
	PlannedStops(ctx context.Context, f plan.Filter) ([]plan.Stop, error)
}

// Audit actions of planning.
const (
	actionStopPlanned   accounts.Action = "stop_planned"
	actionStopCancelled accounts.Action = "stop_cancelled"
)

// planForm is the "plan a stop" form, kept as typed when refused.
type planForm struct {
	Team, Vehicule, Date, Debut, Fin, Lieu, Commune string
	Problems                                        []string
}

// planView is the planning part of the tournées page.
type planView struct {
	CanPlan bool
	Form    planForm
	Stops   []plan.Stop
	Done    string // flash after a plan or a cancellation
}

// canPlan: administrators and coordinators plan; viewers only read.
func canPlan(u *accounts.User) bool { return u.Role.SeesPersonalData() }

// communeInScope says whether a coordinator's territories hold the
// commune (always for an administrator).
func (s *Server) communeInScope(u *accounts.User, code string) bool {
	if !u.Territorial() {
		return true
	}
	c, ok := s.terr.Commune(code)
	if !ok {
		return false
	}
	for _, t := range u.Territories {
		if t = strings.ToUpper(t); t == c.Code || t == c.Departement || t == c.EPCI {
			return true
		}
	}
	return false
}

// plannedStops lists the stops of the period the user may see.
func (s *Server) plannedStops(r *http.Request, from, to, team, vehicle string) ([]plan.Stop, error) {
	if s.cfg.Plans == nil {
		return nil, nil
	}
	all, err := s.cfg.Plans.PlannedStops(r.Context(), plan.Filter{Team: team, Vehicle: vehicle, From: from, To: to})
	if err != nil {
		return nil, err
	}
	u := &whoOf(r).user
	out := all[:0]
	for _, st := range all {
		if s.communeInScope(u, st.Commune) {
			out = append(out, st)
		}
	}
	return out, nil
}

// postPlan plans one stop from the form of the tournées page.
func (s *Server) postPlan(w http.ResponseWriter, r *http.Request) {
	u := &whoOf(r).user
	if s.cfg.Plans == nil || !canPlan(u) {
		s.deny(w, r)
		return
	}
	f := planForm{Team: strings.TrimSpace(r.PostFormValue("team")), Vehicule: strings.TrimSpace(r.PostFormValue("vehicule")),
		Date: r.PostFormValue("date"), Debut: r.PostFormValue("debut"), Fin: r.PostFormValue("fin"),
		Lieu: strings.TrimSpace(r.PostFormValue("lieu")), Commune: strings.TrimSpace(r.PostFormValue("commune"))}
	if !s.communeInScope(u, f.Commune) {
		f.Problems = []string{tr("plan_out_of_scope", f.Commune)}
		s.showTours(w, r, http.StatusForbidden, f, "")
		return
	}
	stop := domain.TourStop{Vehicule: f.Vehicule, Date: f.Date, HeureDebut: f.Debut, HeureFin: f.Fin,
		Lieu: f.Lieu, Commune: f.Commune, Equipe: f.Team}
	saved, err := s.cfg.Plans.PlanStops(r.Context(), f.Team, []domain.TourStop{stop}, s.cfg.Now())
	if err != nil {
		var ve *domain.ValidationError
		switch {
		case errors.As(err, &ve):
			for _, p := range ve.Problems {
				f.Problems = append(f.Problems, p.Message)
			}
		case errors.Is(err, plan.ErrUnknownTeam):
			f.Problems = []string{tr("plan_unknown_team", f.Team)}
		default:
			s.log.Error("planning a stop from the dashboard failed", "err", err)
			f.Problems = []string{tr("internal_error")}
			s.showTours(w, r, http.StatusInternalServerError, f, "")
			return
		}
		s.showTours(w, r, http.StatusUnprocessableEntity, f, "")
		return
	}
	s.audit(r, actionStopPlanned, saved[0].ID.String()+" "+f.Team+" "+f.Vehicule+" "+f.Date+" "+f.Commune)
	s.showTours(w, r, http.StatusOK, planForm{Team: f.Team, Vehicule: f.Vehicule}, tr("plan_done", f.Lieu, frDate(f.Date)))
}

// postCancel cancels a planned stop of the user's territories.
func (s *Server) postCancel(w http.ResponseWriter, r *http.Request) {
	u := &whoOf(r).user
	id, err := ident.Parse(r.PathValue("id"))
	if s.cfg.Plans == nil || !canPlan(u) || err != nil {
		s.deny(w, r)
		return
	}
	var found *plan.Stop
	all, err := s.cfg.Plans.PlannedStops(r.Context(), plan.Filter{})
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing stops: %w", err))
		return
	}
	for i := range all {
		if all[i].ID == id {
			found = &all[i]
		}
	}
	if found == nil || !s.communeInScope(u, found.Commune) {
		s.deny(w, r)
		return
	}
	if err := s.cfg.Plans.CancelStop(r.Context(), found.Team, id, s.cfg.Now()); err != nil && !errors.Is(err, plan.ErrCancelled) {
		s.fail(w, r, fmt.Errorf("cancelling a stop: %w", err))
		return
	}
	s.audit(r, actionStopCancelled, id.String())
	s.showTours(w, r, http.StatusOK, planForm{}, tr("plan_cancelled", found.Lieu, frDate(found.Date)))
}
