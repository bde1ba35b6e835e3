package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/plan"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// Planner plans tour stops at the hub: the stops enter the hub's change
// log and reach the team's agents at their next sync (the hub's SQLite
// store implements it, see hub/plan).
type Planner interface {
	// PlanStops creates stops (zero ID) or changes existing ones of the
	// team (a new change to the record, merged field by field with what
	// the laptops wrote: the mediators' "made" stays theirs).
	PlanStops(ctx context.Context, team string, stops []domain.TourStop, now time.Time) ([]domain.TourStop, error)
	CancelStop(ctx context.Context, team string, id ident.ID, now time.Time) error
	PlannedStops(ctx context.Context, f plan.Filter) ([]plan.Stop, error)
}

// Audit actions of planning.
const (
	actionStopPlanned   accounts.Action = "stop_planned"
	actionStopEdited    accounts.Action = "stop_edited"
	actionStopCancelled accounts.Action = "stop_cancelled"
)

// planForm is the "plan a stop" form (or "change a stop" when ID is
// set), kept as typed when refused. Commune is as typed: a name, a name
// with its code ("Épinal (88160)") or an INSEE code.
type planForm struct {
	ID                                              string
	Team, Vehicule, Date, Debut, Fin, Lieu, Commune string
	Problems                                        []string
}

// planView is the planning part of the tournées page.
type planView struct {
	CanPlan bool
	Form    planForm
	Stops   []plan.Stop // the page listed
	Done    string      // flash after a plan, a change or a cancellation
	// Paging of the list: Total stops, First–Last of them on page Page
	// of Pages.
	Total, First, Last, Page, Pages int
	PrevLink, NextLink              string
	// Day is the one day listed (JJ/MM/AAAA), "" for the period; AllLink
	// goes back to the period.
	Day, AllLink string
	// The form's suggestions.
	TeamList, VehicleList []string
}

// editData is the page that changes one stop.
type editData struct {
	Stop                  plan.Stop
	Form                  planForm
	TeamList, VehicleList []string
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

var inParens = regexp.MustCompile(`\(([0-9][0-9AB][0-9]{3})\)\s*$`)

// resolveCommune reads the commune of the plan form as the mediators' UI
// does: an INSEE code, "Nom (code)" as the search proposes it, or a name
// that is exactly one commune's — of the reader's territories first, the
// most populated when several. Anything else is returned as typed, for
// the validation to refuse with its message.
func (s *Server) resolveCommune(u *accounts.User, v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if m := inParens.FindStringSubmatch(strings.ToUpper(v)); m != nil {
		return m[1]
	}
	if _, ok := s.terr.Commune(strings.ToUpper(v)); ok {
		return strings.ToUpper(v)
	}
	n := territoire.Normalize(v)
	outside := ""
	for _, c := range s.terr.Search(v, 50) {
		if territoire.Normalize(c.Nom) != n {
			continue
		}
		if s.communeInScope(u, c.Code) {
			return c.Code
		}
		if outside == "" {
			outside = c.Code
		}
	}
	if outside != "" {
		return outside
	}
	return v
}

// readPlanForm reads the plan form of a request.
func readPlanForm(r *http.Request) planForm {
	return planForm{Team: strings.TrimSpace(r.PostFormValue("team")), Vehicule: strings.TrimSpace(r.PostFormValue("vehicule")),
		Date: strings.TrimSpace(r.PostFormValue("date")), Debut: strings.TrimSpace(r.PostFormValue("debut")), Fin: strings.TrimSpace(r.PostFormValue("fin")),
		Lieu: strings.TrimSpace(r.PostFormValue("lieu")), Commune: strings.TrimSpace(r.PostFormValue("commune"))}
}

// saveStop checks the form's commune against the user's territories and
// plans stop (new when its ID is zero) for team. It returns the stop as
// stored, or the problems to show in the form (code: the status to
// answer with), or an unexpected error.
func (s *Server) saveStop(r *http.Request, u *accounts.User, team string, stop domain.TourStop, f *planForm) (domain.TourStop, int, error) {
	if !s.communeInScope(u, stop.Commune) {
		if _, known := s.terr.Commune(stop.Commune); !known {
			f.Problems = []string{tr("plan_unknown_commune", f.Commune)}
			return stop, http.StatusUnprocessableEntity, nil
		}
		f.Problems = []string{tr("plan_out_of_scope", s.communeField(stop.Commune))}
		return stop, http.StatusForbidden, nil
	}
	saved, err := s.cfg.Plans.PlanStops(r.Context(), team, []domain.TourStop{stop}, s.cfg.Now())
	if err == nil {
		s.choicesCache.clear() // a new vehicle shows in the filters
		return saved[0], http.StatusOK, nil
	}
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		// Joined per stop; one stop here.
		for _, e := range unjoin(err) {
			if errors.As(e, &ve) {
				for _, p := range ve.Problems {
					f.Problems = append(f.Problems, fieldName(p.Field)+" : "+p.Message)
				}
			}
		}
		return stop, http.StatusUnprocessableEntity, nil
	case errors.Is(err, plan.ErrUnknownTeam):
		f.Problems = []string{tr("plan_unknown_team", team)}
		return stop, http.StatusUnprocessableEntity, nil
	case errors.Is(err, plan.ErrCancelled):
		f.Problems = []string{tr("plan_edit_cancelled")}
		return stop, http.StatusConflict, nil
	case errors.Is(err, plan.ErrNotFound):
		f.Problems = []string{tr("plan_edit_unknown")}
		return stop, http.StatusNotFound, nil
	}
	return stop, http.StatusInternalServerError, err
}

// unjoin returns the errors of a join, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// fieldName names a tour stop field as the form's label does.
func fieldName(f string) string {
	switch f {
	case "vehicule":
		return tr("th_vehicle")
	case "date":
		return tr("th_date")
	case "heure_debut":
		return tr("plan_start")
	case "heure_fin":
		return tr("plan_end")
	case "lieu":
		return tr("th_place")
	case "commune":
		return tr("th_commune")
	case "equipe":
		return tr("f_team")
	}
	return f
}

// postPlan plans one stop from the form of the tournées page.
func (s *Server) postPlan(w http.ResponseWriter, r *http.Request) {
	u := &whoOf(r).user
	if s.cfg.Plans == nil || !canPlan(u) {
		s.deny(w, r)
		return
	}
	f := readPlanForm(r)
	stop := domain.TourStop{Vehicule: f.Vehicule, Date: f.Date, HeureDebut: f.Debut, HeureFin: f.Fin,
		Lieu: f.Lieu, Commune: s.resolveCommune(u, f.Commune), Equipe: f.Team}
	saved, status, err := s.saveStop(r, u, f.Team, stop, &f)
	if err != nil {
		s.log.Error("planning a stop from the dashboard failed", "err", err)
		f.Problems = []string{tr("internal_error")}
	}
	if status != http.StatusOK {
		s.showTours(w, r, status, f, "")
		return
	}
	s.audit(r, actionStopPlanned, saved.ID.String()+" "+f.Team+" "+saved.Vehicule+" "+saved.Date+" "+saved.Commune)
	s.showTours(w, r, http.StatusOK, planForm{Team: f.Team, Vehicule: f.Vehicule}, tr("plan_done", saved.Lieu, frDate(saved.Date)))
}

// findStop returns the hub-planned stop of the request's {id} when the
// user may change it: a planner, a stop of their territories. Otherwise
// it has answered (403, audited).
func (s *Server) findStop(w http.ResponseWriter, r *http.Request) (*plan.Stop, bool) {
	u := &whoOf(r).user
	id, err := ident.Parse(r.PathValue("id"))
	if s.cfg.Plans == nil || !canPlan(u) || err != nil {
		s.deny(w, r)
		return nil, false
	}
	all, err := s.cfg.Plans.PlannedStops(r.Context(), plan.Filter{})
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing stops: %w", err))
		return nil, false
	}
	for i := range all {
		if all[i].ID == id && s.communeInScope(u, all[i].Commune) {
			return &all[i], true
		}
	}
	s.deny(w, r)
	return nil, false
}

// stopForm is the form of a stored stop.
func (s *Server) stopForm(st *plan.Stop) planForm {
	return planForm{ID: st.ID.String(), Team: st.Team, Vehicule: st.Vehicule, Date: st.Date, Debut: st.HeureDebut, Fin: st.HeureFin,
		Lieu: st.Lieu, Commune: s.communeField(st.Commune)}
}

func (s *Server) getEditStop(w http.ResponseWriter, r *http.Request) {
	st, ok := s.findStop(w, r)
	if !ok {
		return
	}
	s.showEditStop(w, r, http.StatusOK, st, s.stopForm(st))
}

func (s *Server) showEditStop(w http.ResponseWriter, r *http.Request, status int, st *plan.Stop, f planForm) {
	d := editData{Stop: *st, Form: f}
	d.TeamList, d.VehicleList = s.planLists(r, s.reportPage(r, filterForm{Team: st.Team}))
	p := s.page(r, "title_edit_stop", d)
	p.Title = tr("title_edit_stop", st.Lieu, frDate(st.Date))
	s.render(w, r, status, "stop", p)
}

// postEditStop changes a stop planned at the hub: a new change to the
// tour stop record, in the hub's log like the first one, which the
// team's laptops pull at their next sync. The team stays the stop's (the
// log and the pulls are by team).
func (s *Server) postEditStop(w http.ResponseWriter, r *http.Request) {
	st, ok := s.findStop(w, r)
	if !ok {
		return
	}
	u := &whoOf(r).user
	f := readPlanForm(r)
	f.ID, f.Team = st.ID.String(), st.Team
	stop := domain.TourStop{ID: st.ID, Vehicule: f.Vehicule, Date: f.Date, HeureDebut: f.Debut, HeureFin: f.Fin,
		Lieu: f.Lieu, Commune: s.resolveCommune(u, f.Commune), Equipe: st.Team}
	saved, status, err := s.saveStop(r, u, st.Team, stop, &f)
	if err != nil {
		s.log.Error("changing a stop from the dashboard failed", "err", err)
		f.Problems = []string{tr("internal_error")}
	}
	if status != http.StatusOK {
		s.showEditStop(w, r, status, st, f)
		return
	}
	s.audit(r, actionStopEdited, saved.ID.String()+" "+st.Team+" "+saved.Vehicule+" "+saved.Date+" "+saved.Commune)
	s.showTours(w, r, http.StatusOK, planForm{Team: st.Team, Vehicule: saved.Vehicule}, tr("plan_edited", saved.Lieu, frDate(saved.Date)))
}

// postCancel cancels a planned stop of the user's territories.
func (s *Server) postCancel(w http.ResponseWriter, r *http.Request) {
	found, ok := s.findStop(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Plans.CancelStop(r.Context(), found.Team, found.ID, s.cfg.Now()); err != nil && !errors.Is(err, plan.ErrCancelled) {
		s.fail(w, r, fmt.Errorf("cancelling a stop: %w", err))
		return
	}
	s.audit(r, actionStopCancelled, found.ID.String())
	s.showTours(w, r, http.StatusOK, planForm{}, tr("plan_cancelled", found.Lieu, frDate(found.Date)))
}
