package dashboard

import (
	"net/http"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
)

// The overview (/apercu) fits a 1,280-pixel screen without scrolling
// sideways: headline tiles, the comparison with the period before and
// with the same dates last year, the 12 months, the vehicles (or
// mediators) side by side over those months, and the breakdowns, each cut
// to its first rows with the rest one click away.

type overviewData struct {
	reportPage
	O          *report.Overview
	Tiles      []tile
	Compare    []compareRow
	Months     Chart
	Themes     Chart
	Series     *seriesView
	Breakdowns []breakdown
	PrintLink  string
}

// tile is one headline figure with its changes from the period before
// and from last year.
type tile struct {
	ID, Label, Value, Delta string
}

// compareRow is one line of the comparison table.
type compareRow struct {
	ID, Label                  string
	Now, Previous, LastYear    string
	ChangePrevious, ChangeYear string
}

// breakdownTop is how many rows a breakdown shows before its "see all".
const breakdownTop = 6

// breakdown is one breakdown of the overview: its first rows, and all.
type breakdown struct {
	ID, Title string
	Top, All  []report.Count
}

// seriesView is the table of vehicles (or mediators) over the months.
type seriesView struct {
	By           string
	Title        string
	Months       []report.MonthRef
	Rows         []seriesRowView
	Totals       []int
	Total        int
	CanMediators bool   // the reader may see mediators side by side
	SwitchLink   string // the other series of the same selection
	SwitchLabel  string
}

type seriesRowView struct {
	Label string
	Cells []seriesCell
	Total int
}

// seriesCell is one month of a row; Heat (0–4) shades it against the
// table's largest month.
type seriesCell struct {
	N    int
	Heat int
}

func (s *Server) computeOverview(r *http.Request) (*report.Overview, report.Filter, filterForm, error) {
	f, ff, err := s.readFilter(r)
	if err != nil {
		return nil, f, ff, err
	}
	sc, err := scopeOf(&whoOf(r).user)
	if err != nil {
		return nil, f, ff, err
	}
	ov, err := report.ComputeOverview(r.Context(), s.cfg.Reports, f, sc, s.options())
	return ov, f, ff, err
}

// seriesBy is the series the request asks: by mediator for a reader who
// may see them and asks (?serie=mediateur), else by vehicle.
func seriesBy(r *http.Request) string {
	if r.URL.Query().Get("serie") == report.SeriesMediators && whoOf(r).user.Role.SeesPersonalData() {
		return report.SeriesMediators
	}
	return report.SeriesVehicles
}

func (s *Server) getOverview(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	// The series reads the vehicle and mediator of each activity, which
	// the overview's scan skips: it runs beside it, on the other core.
	type seriesResult struct {
		sr  *report.Series
		err error
	}
	by := seriesBy(r)
	sch := make(chan seriesResult, 1)
	go func() {
		sr, _, _, err := runReport(s, r, func(r *http.Request, f report.Filter, sc report.Scope) (*report.Series, error) {
			return report.ComputeSeries(r.Context(), s.cfg.Reports, f, sc, s.options(), by)
		})
		sch <- seriesResult{sr, err}
	}()
	ov, f, ff, err := s.computeOverview(r)
	res := <-sch
	if err == nil {
		err = res.err
	}
	d := overviewData{reportPage: s.reportPage(r, ff)}
	p := s.page(r, "title_overview", &d)
	if err != nil {
		code, msg := s.reportError(r, err)
		d.Problem = msg
		s.render(w, r, code.Status(), "overview", p)
		return
	}
	s.auditReport(r, f)
	if by == report.SeriesMediators {
		s.audit(r, accounts.ActionPersonalRead, "mediateurs "+r.URL.RequestURI())
	}
	d.withApplied(ov.Filter)
	d.O = ov
	d.ExportLink = "/exports/indicateurs.csv" + d.Filter.Query()
	d.PrintLink = "/rapport" + d.Filter.Query()
	h, prev, ly := ov.Headline, ov.Previous, ov.LastYear
	figs := []struct {
		id, label         string
		now, before, last int
		value             func() string
	}{
		{"accompagnements", "ind_accompagnements", h.Accompagnements, prev.Accompagnements, ly.Accompagnements, nil},
		{"activites", "ind_activites", h.Activites, prev.Activites, ly.Activites, nil},
		{"individuels", "ind_individuels", h.Individuels, prev.Individuels, ly.Individuels, nil},
		{"collectifs", "ind_collectifs", h.Collectifs, prev.Collectifs, ly.Collectifs, nil},
		{"beneficiaires", "ind_beneficiaires", h.Beneficiaires, prev.Beneficiaires, ly.Beneficiaires, nil},
		{"heures", "ind_heures", h.Minutes, prev.Minutes, ly.Minutes, func() string { return frDec(h.Heures) }},
		{"communes", "ind_communes", h.Communes, prev.Communes, ly.Communes, nil},
		{"pass", "ind_pass", h.PassNumerique, prev.PassNumerique, ly.PassNumerique, nil},
	}
	for _, g := range figs {
		v, vp, vl := frInt(g.now), frInt(g.before), frInt(g.last)
		if g.id == "heures" {
			v, vp, vl = g.value(), frDec(prev.Heures), frDec(ly.Heures)
		}
		d.Tiles = append(d.Tiles, tile{ID: g.id, Label: tr(g.label), Value: v, Delta: tileDelta(g.now, g.before, g.last)})
		d.Compare = append(d.Compare, compareRow{ID: g.id, Label: tr(g.label), Now: v, Previous: vp, LastYear: vl,
			ChangePrevious: pctChange(g.now, g.before), ChangeYear: pctChange(g.now, g.last)})
	}
	d.Months = Chart{Title: tr("chart_months"), Desc: tr("chart_months_desc")}
	for _, m := range ov.Mois {
		d.Months.Bars = append(d.Months.Bars, Bar{Label: m.Label, Value: float64(m.Accompagnements)})
	}
	d.Themes = Chart{Title: tr("chart_themes"), Desc: tr("chart_themes_desc")}
	for _, c := range ov.Thematiques {
		if c.Count > 0 && len(d.Themes.Bars) < 10 {
			d.Themes.Bars = append(d.Themes.Bars, Bar{Label: c.Label, Value: float64(c.Count)})
		}
	}
	d.Series = s.seriesView(r, res.sr, d.Filter)
	for _, b := range []struct {
		id, title string
		counts    []report.Count
	}{
		{"type", "bd_type", ov.ParType}, {"durees", "bd_durees", ov.Durees}, {"themes", "bd_themes", ov.Thematiques},
		{"demarches", "bd_demarches", ov.Demarches}, {"lieux", "bd_lieux", ov.TypesLieu}, {"materiels", "bd_materiels", ov.Materiels},
		{"communes", "bd_communes", ov.Communes}, {"autonomie", "bd_autonomie", ov.Autonomie}, {"genres", "bd_genres", ov.Genres},
		{"ages", "bd_ages", ov.TranchesAge}, {"statuts", "bd_statuts", ov.StatutsSociaux}, {"partenaires", "bd_partenaires", ov.Partenaires},
	} {
		bd := breakdown{ID: b.id, Title: tr(b.title)}
		for _, c := range b.counts {
			if c.Count > 0 {
				bd.All = append(bd.All, c)
			}
		}
		bd.Top = bd.All[:min(len(bd.All), breakdownTop)]
		d.Breakdowns = append(d.Breakdowns, bd)
	}
	s.render(w, r, http.StatusOK, "overview", p)
}

// seriesView shapes a series for the page: rows of cells shaded against
// the largest month of the table.
func (s *Server) seriesView(r *http.Request, sr *report.Series, ff filterForm) *seriesView {
	v := &seriesView{By: sr.By, Months: sr.Months, Totals: sr.Totals, CanMediators: whoOf(r).user.Role.SeesPersonalData()}
	top := 0
	rows := sr.Rows
	if sr.Others != nil {
		o := *sr.Others
		o.Name = tr("series_others")
		rows = append(rows[:len(rows):len(rows)], o)
	}
	for _, row := range rows {
		top = max(top, slicesMax(row.Accompagnements))
	}
	for _, row := range rows {
		label := row.Name
		switch {
		case label == "" && row.Appareil != "":
			label = tr("vehicle_of_device", row.Appareil)
		case label == "" && sr.By == report.SeriesMediators:
			label = tr("series_no_mediator")
		}
		rv := seriesRowView{Label: label, Total: row.Total}
		for _, n := range row.Accompagnements {
			rv.Cells = append(rv.Cells, seriesCell{N: n, Heat: heat(n, top)})
		}
		v.Rows = append(v.Rows, rv)
	}
	for _, n := range sr.Totals {
		v.Total += n
	}
	q := ff.Query()
	sep := "?"
	if q != "" {
		sep = "&"
	}
	if sr.By == report.SeriesMediators {
		v.Title, v.SwitchLink, v.SwitchLabel = tr("series_mediators"), "/apercu"+q+"#series", tr("series_show_vehicles")
	} else {
		v.Title, v.SwitchLink, v.SwitchLabel = tr("series_vehicles"), "/apercu"+q+sep+"serie=mediateur#series", tr("series_show_mediators")
	}
	return v
}

// heat is n's shade against the largest value top: 0 for none, then 1 to
// 4 by quarters.
func heat(n, top int) int {
	if n <= 0 || top <= 0 {
		return 0
	}
	return min(4, 1+(n*4-1)/top)
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// tileDelta is a tile's one line of comparison: the change over a year
// when last year had some, else over the period before, else nothing
// (the comparison table says the rest).
func tileDelta(now, before, last int) string {
	switch {
	case last > 0:
		return tr("tile_year", pctChange(now, last))
	case before > 0:
		return tr("tile_previous", pctChange(now, before))
	}
	return ""
}

// pctChange writes now against before as a signed French percentage, "—"
// when before is zero.
func pctChange(now, before int) string {
	if before == 0 {
		return tr("none")
	}
	pct := float64(now-before) / float64(before)
	sign := "+"
	if pct < 0 {
		sign = "−"
		pct = -pct
	}
	return sign + frPct(pct)
}

func (s *Server) apiOverview(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	ov, f, _, err := s.computeOverview(r)
	if err != nil {
		code, msg := s.reportError(r, err)
		writeAPIError(w, code, msg)
		return
	}
	s.auditReport(r, f)
	writeJSON(w, http.StatusOK, ov)
}
