package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/plan"
	"numeribus/hub/report"
)

// The tournées page (/tournees): vehicles and mediators over the period,
// a month's calendar of stops planned and made, the planned stops a page
// at a time, and, for those who plan, the form to plan a stop (commune
// found by its name, as on the mediators' laptops) or to change one
// (plan.go).

func (s *Server) tourRoutes(mux *http.ServeMux) {
	mux.Handle("GET /tournees", s.authed(s.getTours))
	mux.Handle("POST /tournees/planifier", s.authed(s.postPlan))
	mux.Handle("GET /tournees/{id}/modifier", s.authed(s.getEditStop))
	mux.Handle("POST /tournees/{id}/modifier", s.authed(s.postEditStop))
	mux.Handle("POST /tournees/{id}/annuler", s.authed(s.postCancel))
	mux.Handle("GET /api/vehicles", s.authed(s.apiVehicles))
	mux.Handle("GET /api/communes", s.authed(s.apiCommunes))
}

// stopsPerPage is how many planned stops the page lists at a time.
const stopsPerPage = 50

type toursData struct {
	reportPage
	V      *report.Vehicles
	Stops  Chart
	Viewer bool
	Plan   planView
	Cal    *calendar
}

// vehicles computes the vehicles report; a viewer's has no mediators
// (names of people), a reader with them is audited.
func (s *Server) vehicles(r *http.Request, f report.Filter, sc report.Scope) (*report.Vehicles, error) {
	v, err := report.ComputeVehicles(r.Context(), s.cfg.Reports, f, sc, s.options())
	if err != nil {
		return nil, err
	}
	if !whoOf(r).user.Role.SeesPersonalData() {
		v.Mediateurs = nil
	} else if len(v.Mediateurs) > 0 {
		s.audit(r, accounts.ActionPersonalRead, "mediateurs "+r.URL.RequestURI())
	}
	return v, nil
}

func (s *Server) getTours(w http.ResponseWriter, r *http.Request) {
	// The map's white zones link here with the commune to plan a stop in
	// (?commune=INSEE): the form opens with it.
	f := planForm{Commune: s.communeField(strings.TrimSpace(r.URL.Query().Get("commune")))}
	s.showTours(w, r, http.StatusOK, f, "")
}

// showTours renders the tournées page: vehicles and mediators over the
// filter's period, the calendar of a month (?mois=AAAA-MM, by default the
// current one when the period reaches it, else the period's last), the
// stops planned from the period's start to its end — or six months ahead
// when no end is asked — fifty a page (?page=N), or those of one day
// (?jour=AAAA-MM-JJ), and, for administrators and coordinators, the form
// to plan one.
func (s *Server) showTours(w http.ResponseWriter, r *http.Request, status int, form planForm, done string) {
	if !s.reportsReady(w, r) {
		return
	}
	v, f, ff, err := runReport(s, r, s.vehicles)
	u := &whoOf(r).user
	d := toursData{reportPage: s.reportPage(r, ff), Viewer: !u.Role.SeesPersonalData(),
		Plan: planView{CanPlan: s.cfg.Plans != nil && canPlan(u), Form: form, Done: done}}
	d.Plan.TeamList, d.Plan.VehicleList = s.planLists(r, d.reportPage)
	p := s.page(r, "title_tours", &d)
	if err != nil {
		code, msg := s.reportError(r, err)
		d.Problem = msg
		s.render(w, r, code.Status(), "tours", p)
		return
	}
	s.auditReport(r, f)
	d.withApplied(v.Filter)
	d.V = v
	d.Stops = Chart{Title: tr("chart_vehicles"), Desc: tr("chart_vehicles_desc")}
	for _, row := range v.Vehicules {
		label := row.Vehicule
		if label == "" {
			label = tr("vehicle_of_device", row.Appareil)
		}
		d.Stops.Bars = append(d.Stops.Bars, Bar{Label: label, Value: float64(row.Accompagnements)})
	}
	q := r.URL.Query()
	from, to := v.Filter.From, v.Filter.To
	if q.Get("au") == "" {
		to = s.cfg.Now().AddDate(0, 6, 0).Format("2006-01-02")
	}
	team, vehicle := strings.TrimSpace(f.Team), v.Filter.Vehicle

	// The calendar's month.
	month := s.calendarMonth(q.Get("mois"), from, to)
	mFrom, mTo := month.Format("2006-01-02"), month.AddDate(0, 1, -1).Format("2006-01-02")
	monthStops, err := s.plannedStops(r, mFrom, mTo, team, vehicle)
	if err != nil {
		s.log.Error("listing planned stops failed", "err", err)
	}
	d.Cal = s.newCalendar(month, monthStops, ff, q.Get("jour"))

	// The list: one day, or the period a page at a time.
	day := q.Get("jour")
	if _, err := time.Parse("2006-01-02", day); err == nil {
		from, to = day, day
		d.Plan.Day = frDate(day)
		d.Plan.AllLink = toursLink(ff, "mois", month.Format("2006-01")) + "#planned-title"
	} else {
		day = ""
	}
	stops, err := s.plannedStops(r, from, to, team, vehicle)
	if err != nil {
		s.log.Error("listing planned stops failed", "err", err)
	}
	d.Plan.Total = len(stops)
	d.Plan.Pages = max(1, (len(stops)+stopsPerPage-1)/stopsPerPage)
	d.Plan.Page = 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n >= 1 {
		d.Plan.Page = min(n, d.Plan.Pages)
	}
	first := (d.Plan.Page - 1) * stopsPerPage
	d.Plan.Stops = stops[first:min(first+stopsPerPage, len(stops))]
	d.Plan.First, d.Plan.Last = first+1, first+len(d.Plan.Stops)
	pageLink := func(n int) string {
		extra := []string{"page", strconv.Itoa(n)}
		if day != "" {
			extra = append(extra, "jour", day)
		}
		if m := q.Get("mois"); m != "" {
			extra = append(extra, "mois", m)
		}
		return toursLink(ff, extra...) + "#planned-title"
	}
	if d.Plan.Page > 1 {
		d.Plan.PrevLink = pageLink(d.Plan.Page - 1)
	}
	if d.Plan.Page < d.Plan.Pages {
		d.Plan.NextLink = pageLink(d.Plan.Page + 1)
	}
	s.render(w, r, status, "tours", p)
}

// toursLink is /tournees with the filter of ff and the extra key, value
// pairs.
func toursLink(ff filterForm, kv ...string) string {
	v, _ := url.ParseQuery(strings.TrimPrefix(ff.Query(), "?"))
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	if len(v) == 0 {
		return "/tournees"
	}
	return "/tournees?" + v.Encode()
}

// planLists are the suggestions of the plan form: the teams and vehicles
// of the filters' lists.
func (s *Server) planLists(r *http.Request, rp reportPage) (teams, vehicles []string) {
	for _, o := range rp.Teams {
		if o.Value != "" {
			teams = append(teams, o.Value)
		}
	}
	for _, o := range rp.Vehicles {
		if o.Value != "" {
			vehicles = append(vehicles, o.Value)
		}
	}
	return teams, vehicles
}

// calendar is one month of stops, planned and made, as a table of weeks.
type calendar struct {
	Title              string // "avril 2026"
	Weeks              [][]calDay
	PrevLink, NextLink string
	PrevLabel          string
	NextLabel          string
	Planned, Made      int
}

// calDay is one day of the calendar; Day 0 pads a week outside the
// month.
type calDay struct {
	Day            int
	Date           string // AAAA-MM-JJ
	Planned, Made  int
	Link           string // the day's stops
	Today, Current bool   // today; the day listed
	Past           bool   // before today: whether its stops were made is known
}

var frMonths = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}

func monthTitle(m time.Time) string { return frMonths[m.Month()-1] + " " + strconv.Itoa(m.Year()) }

// calendarMonth is the first day of the month asked (AAAA-MM), else of
// the current month when the listed period reaches it, else of the
// period's last month.
func (s *Server) calendarMonth(asked, from, to string) time.Time {
	if m, err := time.Parse("2006-01", asked); err == nil && m.Year() > 1900 && m.Year() < 3000 {
		return m
	}
	now := s.cfg.Now().In(paris)
	today := now.Format("2006-01-02")
	pick := now
	if today < from || today > to {
		if t, err := time.Parse("2006-01-02", to); err == nil {
			pick = t
		}
	}
	return time.Date(pick.Year(), pick.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// newCalendar lays out month's stops by day, weeks starting on Monday.
func (s *Server) newCalendar(month time.Time, stops []plan.Stop, ff filterForm, current string) *calendar {
	c := &calendar{Title: monthTitle(month)}
	prev, next := month.AddDate(0, -1, 0), month.AddDate(0, 1, 0)
	c.PrevLink, c.PrevLabel = toursLink(ff, "mois", prev.Format("2006-01"))+"#calendar", monthTitle(prev)
	c.NextLink, c.NextLabel = toursLink(ff, "mois", next.Format("2006-01"))+"#calendar", monthTitle(next)
	byDay := map[string][2]int{}
	for _, st := range stops {
		n := byDay[st.Date]
		n[0]++
		if st.Made {
			n[1]++
		}
		byDay[st.Date] = n
	}
	today := s.cfg.Now().In(paris).Format("2006-01-02")
	week := make([]calDay, (int(month.Weekday())+6)%7) // Monday first
	for d := month; d.Month() == month.Month(); d = d.AddDate(0, 0, 1) {
		iso := d.Format("2006-01-02")
		n := byDay[iso]
		day := calDay{Day: d.Day(), Date: iso, Planned: n[0], Made: n[1], Today: iso == today, Current: iso == current, Past: iso <= today}
		c.Planned += n[0]
		c.Made += n[1]
		if n[0] > 0 {
			day.Link = toursLink(ff, "jour", iso, "mois", month.Format("2006-01")) + "#planned-title"
		}
		week = append(week, day)
		if len(week) == 7 {
			c.Weeks = append(c.Weeks, week)
			week = nil
		}
	}
	if len(week) > 0 {
		for len(week) < 7 {
			week = append(week, calDay{})
		}
		c.Weeks = append(c.Weeks, week)
	}
	return c
}

func (s *Server) apiVehicles(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	v, f, _, err := runReport(s, r, s.vehicles)
	if err != nil {
		code, msg := s.reportError(r, err)
		writeAPIError(w, code, msg)
		return
	}
	s.auditReport(r, f)
	writeJSON(w, http.StatusOK, v)
}

// communeJSON is one answer of /api/communes, the plan form's search.
type communeJSON struct {
	Code        string `json:"code"`
	Nom         string `json:"nom"`
	Departement string `json:"departement"`
	Label       string `json:"label"` // "Épinal (88160)": what the form sends back
}

// apiCommunes finds communes by name, INSEE or postal code for the plan
// form (internal/territoire's search, the one of the mediators' UI),
// those of the reader's territories first and only.
func (s *Server) apiCommunes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if len(q) > 100 {
		q = q[:100]
	}
	u := &whoOf(r).user
	out := []communeJSON{}
	for _, c := range s.terr.Search(q, 60) {
		if !s.communeInScope(u, c.Code) {
			continue
		}
		out = append(out, communeJSON{Code: c.Code, Nom: c.Nom, Departement: c.Departement, Label: c.Nom + " (" + c.Code + ")"})
		if len(out) == 10 {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// communeField shows a commune in the plan form: "Épinal (88160)" for a
// known INSEE code, else as given.
func (s *Server) communeField(code string) string {
	if c, ok := s.terr.Commune(strings.ToUpper(code)); ok {
		return fmt.Sprintf("%s (%s)", c.Nom, c.Code)
	}
	return code
}
