package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
	"numeribus/internal/apperr"
)

// reportRoutes mounts the indicator pages (overview, coverage, tournées,
// exports) and their read-only JSON API, all built on hub/report so that
// a filter gives the same numbers on a page, in its API answer and in
// its CSV.
func (s *Server) reportRoutes(mux *http.ServeMux) {
	mux.Handle("GET /apercu", s.authed(s.getOverview))
	mux.Handle("GET /api/overview", s.authed(s.apiOverview))
	mux.Handle("GET /couverture", s.authed(s.getCoverage))
	mux.Handle("GET /api/coverage", s.authed(s.apiCoverage))
	s.tourRoutes(mux)
	mux.Handle("GET /rapport", s.authed(s.getPrintReport))
	mux.Handle("GET /exports", s.authed(s.getExports))
	mux.Handle("GET /exports/{file}", s.authed(s.getExport))
	s.mapRoutes(mux)
}

// filterForm is the filter as typed, to show it again.
type filterForm struct {
	From, To, Territory, Team, Vehicle, Mediateur string
}

// Query returns the filter as a query string, for links to the same
// selection on another page or in a CSV.
func (f filterForm) Query() string {
	v := url.Values{}
	for k, x := range map[string]string{"du": f.From, "au": f.To, "territoire": f.Territory, "equipe": f.Team, "vehicule": f.Vehicle, "mediateur": f.Mediateur} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// errFilter is a filter the user must correct (apperr.Usage) or may not
// ask (apperr.Forbidden); its message is French.
type errFilter struct {
	code apperr.Code
	msg  string
}

func (e *errFilter) Error() string { return e.msg }

func (e *errFilter) ErrorCode() apperr.Code { return e.code }

// readFilter reads the filter of a report request. A viewer may not
// filter by mediator: a mediator's activity is personal data about them.
func (s *Server) readFilter(r *http.Request) (report.Filter, filterForm, error) {
	q := r.URL.Query()
	ff := filterForm{From: strings.TrimSpace(q.Get("du")), To: strings.TrimSpace(q.Get("au")), Territory: strings.TrimSpace(q.Get("territoire")),
		Team: strings.TrimSpace(q.Get("equipe")), Vehicle: strings.TrimSpace(q.Get("vehicule")), Mediateur: strings.TrimSpace(q.Get("mediateur"))}
	var f report.Filter
	for _, d := range []struct {
		in  string
		out *time.Time
	}{{ff.From, &f.From}, {ff.To, &f.To}} {
		if d.in == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", d.in)
		if err != nil {
			return f, ff, &errFilter{apperr.Usage, tr("filter_bad_date", d.in)}
		}
		*d.out = t
	}
	if ff.Territory != "" {
		t, err := report.ParseTerritory(ff.Territory)
		if err != nil {
			return f, ff, &errFilter{apperr.Usage, tr("filter_bad_territory", ff.Territory)}
		}
		f.Territory = t
	}
	f.Team, f.Vehicle, f.Mediateur = ff.Team, ff.Vehicle, ff.Mediateur
	if f.Mediateur != "" && !whoOf(r).user.Role.SeesPersonalData() {
		return f, ff, &errFilter{apperr.Forbidden, tr("filter_no_mediator")}
	}
	return f, ff, nil
}

// scopeOf is what the user may see, as report.Scope: an admin
// everything; a coordinator, and a viewer given territories, those
// territories only.
func scopeOf(u *accounts.User) (report.Scope, error) {
	if !u.Territorial() {
		return report.Scope{}, nil
	}
	sc, err := report.ParseScope(u.Territories, nil)
	if err != nil {
		return sc, err
	}
	if len(sc.Territories) == 0 {
		// Never "everything" by accident: a territorial user without a
		// readable territory sees nothing.
		return sc, &errFilter{apperr.Forbidden, tr("scope_empty")}
	}
	return sc, nil
}

// reportError turns the errors of a report into a status, from apperr's
// table, and a French message; an unexpected error is logged and shown as
// internal. A refusal is audited.
func (s *Server) reportError(r *http.Request, err error) (apperr.Code, string) {
	code := apperr.CodeOf(err)
	if code == apperr.Forbidden {
		s.audit(r, accounts.ActionDenied, r.URL.RequestURI())
	}
	var ef *errFilter
	switch {
	case errors.As(err, &ef):
		return code, ef.msg
	case errors.Is(err, report.ErrOutOfScope):
		return code, tr("filter_out_of_scope")
	case errors.Is(err, report.ErrUnknownTerritory):
		return code, tr("filter_bad_territory", r.URL.Query().Get("territoire"))
	case errors.Is(err, report.ErrBadFilter):
		return code, tr("filter_bad_period")
	}
	s.log.Error("report failed", "path", r.URL.Path, "err", err)
	return apperr.Internal, tr("internal_error")
}

// auditReport records a report read that touches personal data: a
// filter on a mediator.
func (s *Server) auditReport(r *http.Request, f report.Filter) {
	if f.Mediateur != "" {
		s.audit(r, accounts.ActionPersonalRead, r.URL.RequestURI())
	}
}

func (s *Server) options() report.Options { return report.Options{Now: s.cfg.Now} }

// reportPage is what every report page gets besides its report.
type reportPage struct {
	Filter     filterForm
	Applied    report.Applied
	Scope      []string // the user's territories, named
	Mediators  bool     // whether the mediator filter is offered
	Problem    string
	ExportLink string
	// The filters' lists (choices.go).
	Teams, Vehicles, MediatorList []option
}

func (s *Server) reportPage(r *http.Request, ff filterForm) reportPage {
	u := &whoOf(r).user
	rp := reportPage{Filter: ff, Mediators: u.Role.SeesPersonalData()}
	c := s.choices(r)
	rp.Teams = options(c.Equipes, ff.Team, tr("all_teams"))
	rp.Vehicles = options(c.Vehicules, ff.Vehicle, tr("all_vehicles"))
	if rp.Mediators {
		rp.MediatorList = options(c.Mediateurs, ff.Mediateur, tr("all_mediators"))
	}
	if u.Territorial() {
		for _, c := range u.Territories {
			if t, err := report.ParseTerritory(c); err == nil {
				rp.Scope = append(rp.Scope, t.Name()+" ("+t.String()+")")
			}
		}
	}
	return rp
}

// withApplied fills the form's empty dates with the period the report
// used, so that the reader sees which dates the defaults meant.
func (rp *reportPage) withApplied(a report.Applied) {
	rp.Applied = a
	if rp.Filter.From == "" {
		rp.Filter.From = a.From
	}
	if rp.Filter.To == "" {
		rp.Filter.To = a.To
	}
}

// reportsReady answers 503 when the hub's store cannot compute reports.
func (s *Server) reportsReady(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Reports != nil {
		return true
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeAPIError(w, apperr.Unreachable, tr("reports_unavailable"))
	} else {
		s.errorPage(w, r, http.StatusServiceUnavailable, tr("reports_unavailable"))
	}
	return false
}

type coverageData struct {
	reportPage
	C      *report.Coverage
	Groups Chart
}

// report runs one of the report package's computations with the
// request's filter and the user's scope.
func runReport[T any](s *Server, r *http.Request, compute func(*http.Request, report.Filter, report.Scope) (T, error)) (T, report.Filter, filterForm, error) {
	var zero T
	f, ff, err := s.readFilter(r)
	if err != nil {
		return zero, f, ff, err
	}
	sc, err := scopeOf(&whoOf(r).user)
	if err != nil {
		return zero, f, ff, err
	}
	v, err := compute(r, f, sc)
	return v, f, ff, err
}

func (s *Server) coverage(r *http.Request, f report.Filter, sc report.Scope) (*report.Coverage, error) {
	return report.ComputeCoverage(r.Context(), s.cfg.Reports, f, sc, s.options())
}

func (s *Server) getCoverage(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	c, f, ff, err := runReport(s, r, s.coverage)
	d := coverageData{reportPage: s.reportPage(r, ff)}
	p := s.page(r, "title_coverage", &d)
	if err != nil {
		code, msg := s.reportError(r, err)
		status := code.Status()
		d.Problem = msg
		s.render(w, r, status, "coverage", p)
		return
	}
	s.auditReport(r, f)
	d.withApplied(c.Filter)
	d.C = c
	title := tr("chart_cover_epci")
	if c.NiveauGroupes == "commune" {
		title = tr("chart_cover_commune")
	}
	d.Groups = Chart{Title: title, Desc: tr("chart_cover_desc"), Format: func(v float64) string { return frPct(v) }}
	for _, g := range c.Groupes {
		d.Groups.Bars = append(d.Groups.Bars, Bar{Label: g.Label, Value: g.Part, Note: tr("cover_note", g.Visitees, g.Communes)})
	}
	s.render(w, r, http.StatusOK, "coverage", p)
}

func (s *Server) apiCoverage(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	c, f, _, err := runReport(s, r, s.coverage)
	if err != nil {
		code, msg := s.reportError(r, err)
		writeAPIError(w, code, msg)
		return
	}
	s.auditReport(r, f)
	writeJSON(w, http.StatusOK, c)
}
