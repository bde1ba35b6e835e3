package dashboard

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"numeribus/hub/report"
)

// The printable report for funders (/rapport): one A4 page per territory
// and period — the selection's territory, or each territory of the
// reader's scope — with the key figures against last year, the months,
// the themes, the coverage and the vehicles. The screen shows the pages
// one under the other; the print style sheet (@media print in
// style.css) keeps only them, one per sheet, so that the browser's
// « Imprimer → Enregistrer en PDF » gives the document to send.

type printData struct {
	reportPage
	Pages  []printPage
	Edited string // JJ/MM/AAAA
}

// printPage is one territory's page.
type printPage struct {
	ID        string
	Territory string // "Meurthe-et-Moselle (dep:54)", or everywhere
	Period    string
	Figures   []printFigure
	Months    template.HTML
	Themes    []report.Count
	Types     []report.Count
	Coverage  *report.Coverage
	Vehicles  []report.VehicleRow
	// MoreVehicles: vehicles left out past maxPrintVehicles (the
	// dashboard's Tournées lists them all).
	MoreVehicles int
	LastYear     string // the dates compared
}

// maxPrintVehicles keeps a territory's page on one sheet.
const maxPrintVehicles = 8

// printFigure is a key figure with last year's.
type printFigure struct {
	ID, Label, Value, LastYear, Change string
}

// printTerritories are the territories the report has a page for: the
// one asked, else each of the reader's, else everywhere (the zero
// territory).
func printTerritories(f report.Filter, sc report.Scope) []report.Territory {
	switch {
	case !f.Territory.IsZero():
		return []report.Territory{f.Territory}
	case len(sc.Territories) > 0:
		return sc.Territories
	}
	return []report.Territory{{}}
}

func (s *Server) getPrintReport(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	f, ff, err := s.readFilter(r)
	d := printData{reportPage: s.reportPage(r, ff), Edited: s.cfg.Now().In(paris).Format("02/01/2006")}
	p := s.page(r, "title_print", &d)
	var sc report.Scope
	if err == nil {
		sc, err = scopeOf(&whoOf(r).user)
	}
	if err == nil {
		for i, t := range printTerritories(f, sc) {
			ft := f
			ft.Territory = t
			pg, applied, perr := s.printPage(r, ft, sc)
			if err = perr; err != nil {
				break
			}
			pg.ID = fmt.Sprintf("page-%d", i+1)
			if i == 0 {
				d.withApplied(applied)
			}
			d.Pages = append(d.Pages, pg)
		}
	}
	if err != nil {
		code, msg := s.reportError(r, err)
		d.Problem, d.Pages = msg, nil
		s.render(w, r, code.Status(), "print", p)
		return
	}
	s.auditReport(r, f)
	s.render(w, r, http.StatusOK, "print", p)
}

// printPage computes one territory's page, and the filter it applied.
func (s *Server) printPage(r *http.Request, f report.Filter, sc report.Scope) (printPage, report.Applied, error) {
	ctx, o := r.Context(), s.options()
	ov, err := report.ComputeOverview(ctx, s.cfg.Reports, f, sc, o)
	if err != nil {
		return printPage{}, report.Applied{}, err
	}
	cv, err := report.ComputeCoverage(ctx, s.cfg.Reports, f, sc, o)
	if err != nil {
		return printPage{}, report.Applied{}, err
	}
	vh, err := report.ComputeVehicles(ctx, s.cfg.Reports, f, sc, o)
	if err != nil {
		return printPage{}, report.Applied{}, err
	}
	pg := printPage{Period: tr("print_period", frDate(ov.Filter.From), frDate(ov.Filter.To)), Coverage: cv, Vehicles: vh.Vehicules,
		LastYear: tr("print_last_year", frDate(ov.LastYear.From), frDate(ov.LastYear.To))}
	switch {
	case !f.Territory.IsZero():
		pg.Territory = territoryLabel(f.Territory)
	case len(ov.Filter.Areas) > 0:
		names := make([]string, len(ov.Filter.Areas))
		for i, t := range ov.Filter.Areas {
			names[i] = territoryLabel(t)
		}
		pg.Territory = strings.Join(names, ", ")
	default:
		pg.Territory = tr("print_everywhere")
	}
	h, ly := ov.Headline, ov.LastYear
	for _, g := range []struct {
		id, label string
		now, last int
	}{
		{"accompagnements", "ind_accompagnements", h.Accompagnements, ly.Accompagnements},
		{"personnes", "print_people", ov.Beneficiaires.Personnes, -1},
		{"beneficiaires", "ind_beneficiaires", h.Beneficiaires, ly.Beneficiaires},
		{"collectifs", "ind_collectifs", h.Collectifs, ly.Collectifs},
		{"heures", "ind_heures", h.Minutes, ly.Minutes},
		{"communes", "ind_communes", h.Communes, ly.Communes},
	} {
		fig := printFigure{ID: g.id, Label: tr(g.label), Value: frInt(g.now), LastYear: frInt(g.last), Change: pctChange(g.now, g.last)}
		switch {
		case g.id == "heures":
			fig.Value, fig.LastYear = frDec(h.Heures), frDec(ly.Heures)
		case g.last < 0:
			fig.LastYear = "" // not kept for last year: no comparison
		}
		pg.Figures = append(pg.Figures, fig)
	}
	var cols []Bar
	for _, m := range ov.Mois {
		cols = append(cols, Bar{Label: m.Label, Value: float64(m.Accompagnements)})
	}
	pg.Months = Columns{Title: tr("chart_months"), Desc: tr("chart_months_desc"), Bars: cols}.SVG()
	for _, list := range []struct {
		from []report.Count
		to   *[]report.Count
		n    int
	}{{ov.Thematiques, &pg.Themes, 6}, {ov.ParType, &pg.Types, 2}} {
		for _, c := range list.from {
			if c.Count > 0 && len(*list.to) < list.n {
				*list.to = append(*list.to, c)
			}
		}
	}
	// The busiest first: those are the ones a page has room for.
	pg.Vehicles = slices.Clone(pg.Vehicles)
	slices.SortStableFunc(pg.Vehicles, func(a, b report.VehicleRow) int { return cmp.Compare(b.Accompagnements, a.Accompagnements) })
	if len(pg.Vehicles) > maxPrintVehicles {
		pg.MoreVehicles = len(pg.Vehicles) - maxPrintVehicles
		pg.Vehicles = pg.Vehicles[:maxPrintVehicles]
	}
	return pg, ov.Filter, nil
}

// territoryLabel names a territory for a title: "Meurthe-et-Moselle
// (département 54)", "Nancy (commune 54395)".
func territoryLabel(t report.Territory) string {
	kind := map[report.Level]string{report.Commune: "commune", report.EPCI: "EPCI", report.Departement: "département", report.Region: "région"}[t.Level]
	return fmt.Sprintf("%s (%s %s)", t.Name(), kind, t.Code)
}
