package dashboard

import (
	"fmt"
	"net/http"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
)

// export is one CSV download of the exports page.
type export struct {
	Name, Title, Desc string
	// Personal: rows describe single activities with the mediator's
	// name: not for viewers.
	Personal bool
}

var exports = []export{
	{Name: "indicateurs", Title: "export_indicators", Desc: "export_indicators_desc"},
	{Name: "activites", Title: "export_activities", Desc: "export_activities_desc", Personal: true},
}

type exportsData struct {
	reportPage
	Exports []exportLink
}

type exportLink struct {
	ID, Href, Title, Desc string
}

func (s *Server) getExports(w http.ResponseWriter, r *http.Request) {
	_, ff, err := s.readFilter(r)
	d := exportsData{reportPage: s.reportPage(r, ff)}
	p := s.page(r, "title_exports", &d)
	if err != nil {
		code, msg := s.reportError(r, err)
		status := code.Status()
		d.Problem = msg
		s.render(w, r, status, "exports", p)
		return
	}
	personal := whoOf(r).user.Role.SeesPersonalData()
	for _, e := range exports {
		if e.Personal && !personal {
			continue
		}
		d.Exports = append(d.Exports, exportLink{ID: "csv-" + e.Name, Href: "/exports/" + e.Name + ".csv" + ff.Query(), Title: tr(e.Title), Desc: tr(e.Desc)})
	}
	s.render(w, r, http.StatusOK, "exports", p)
}

// getExport streams a CSV. The filter is resolved against the user's
// scope before the first byte, so that a refusal is a clean 403 and not
// a truncated file; every download is audited.
func (s *Server) getExport(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	name := r.PathValue("file")
	var ex *export
	for i := range exports {
		if exports[i].Name+".csv" == name {
			ex = &exports[i]
		}
	}
	if ex == nil {
		http.Error(w, tr("not_found"), http.StatusNotFound)
		return
	}
	u := &whoOf(r).user
	if ex.Personal && !u.Role.SeesPersonalData() {
		s.deny(w, r)
		return
	}
	f, _, err := s.readFilter(r)
	var sc report.Scope
	if err == nil {
		sc, err = scopeOf(u)
	}
	if err == nil {
		var from, to int
		if from, to, err = f.Period(s.cfg.Now()); err == nil {
			_, err = report.Resolve(f, sc, from, to)
		}
	}
	if err != nil {
		code, msg := s.reportError(r, err)
		status := code.Status()
		http.Error(w, msg, status)
		return
	}
	s.audit(r, accounts.ActionExport, r.URL.RequestURI())
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="numeribus-%s-%s.csv"`, ex.Name, s.cfg.Now().In(paris).Format("2006-01-02")))
	switch ex.Name {
	case "activites":
		err = report.WriteActivitiesCSV(r.Context(), w, s.cfg.Reports, f, sc, s.options())
	case "indicateurs":
		var ov *report.Overview
		if ov, err = report.ComputeOverview(r.Context(), s.cfg.Reports, f, sc, s.options()); err == nil {
			err = report.WriteIndicatorsCSV(w, ov)
		}
	}
	if err != nil {
		// Headers are gone: the download ends short, the log says why.
		s.log.Error("export failed", "export", ex.Name, "err", err)
	}
}
