package dashboard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
)

// export is one file of the exports page, in one or more formats.
type export struct {
	Name, Title, Desc string
	Formats           []string // "csv", "xlsx"
	// Personal: rows describe single activities with the mediator's
	// name: not for viewers.
	Personal bool
}

var exports = []export{
	{Name: "indicateurs", Title: "export_indicators", Desc: "export_indicators_desc", Formats: []string{"csv", "xlsx"}},
	{Name: "activites", Title: "export_activities", Desc: "export_activities_desc", Formats: []string{"csv", "xlsx"}, Personal: true},
	{Name: "activites-lacoop", Title: "export_lacoop", Desc: "export_lacoop_desc", Formats: []string{"xlsx"}, Personal: true},
}

// contentTypes are the media types of the formats.
var contentTypes = map[string]string{
	"csv":  "text/csv; charset=utf-8",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

type exportsData struct {
	reportPage
	Exports []exportView
}

// exportView is one export on the page, with a link per format.
type exportView struct {
	ID, Title, Desc string
	Links           []exportLink
}

type exportLink struct {
	ID, Href, Label string
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
		v := exportView{ID: "export-" + e.Name, Title: tr(e.Title), Desc: tr(e.Desc)}
		for _, f := range e.Formats {
			v.Links = append(v.Links, exportLink{ID: f + "-" + e.Name, Href: "/exports/" + e.Name + "." + f + ff.Query(),
				Label: tr("export_download_"+f, tr(e.Title))})
		}
		d.Exports = append(d.Exports, v)
	}
	s.render(w, r, http.StatusOK, "exports", p)
}

// exportOf finds the export and format a file name asks for
// ("activites.xlsx").
func exportOf(file string) (*export, string) {
	name, format, ok := strings.Cut(file, ".")
	if !ok {
		return nil, ""
	}
	for i := range exports {
		if e := &exports[i]; e.Name == name {
			for _, f := range e.Formats {
				if f == format {
					return e, f
				}
			}
		}
	}
	return nil, ""
}

// getExport streams an export. The filter is resolved against the user's
// scope before the first byte, so that a refusal is a clean 403 and not
// a truncated file; every download is audited. The download's headers
// go with its first byte: an XLSX file is written once its rows are all
// read, and a failure before that still gets an error page.
func (s *Server) getExport(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	ex, format := exportOf(r.PathValue("file"))
	if ex == nil {
		s.errorPage(w, r, http.StatusNotFound, tr("not_found"))
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
		s.errorPage(w, r, status, msg)
		return
	}
	s.audit(r, accounts.ActionExport, r.URL.RequestURI())
	out := &download{w: w, header: func(h http.Header) {
		h.Set("Content-Type", contentTypes[format])
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="numeribus-%s-%s.%s"`, ex.Name, s.cfg.Now().In(paris).Format("2006-01-02"), format))
	}}
	x := report.ExportInfo{By: u.Email, Role: tr("role_" + string(u.Role)), At: s.cfg.Now(), Loc: paris}
	err = s.writeExport(r.Context(), out, ex.Name, format, f, sc, x)
	switch {
	case err == nil:
	case !out.started:
		s.log.Error("export failed", "export", ex.Name, "format", format, "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, tr("export_failed"))
	default:
		// Headers are gone: the download ends short, the log says why.
		s.log.Error("export failed", "export", ex.Name, "format", format, "err", err)
	}
}

// writeExport writes export name in format to w.
func (s *Server) writeExport(ctx context.Context, w io.Writer, name, format string, f report.Filter, sc report.Scope, x report.ExportInfo) error {
	src, o := s.cfg.Reports, s.options()
	switch name + "." + format {
	case "activites.csv":
		return report.WriteActivitiesCSV(ctx, w, src, f, sc, o, x)
	case "activites.xlsx":
		return report.WriteActivitiesXLSX(ctx, w, src, f, sc, o, x)
	case "activites-lacoop.xlsx":
		return report.WriteLaCoopXLSX(ctx, w, src, f, sc, o, x)
	case "indicateurs.csv", "indicateurs.xlsx":
		ov, err := report.ComputeOverview(ctx, src, f, sc, o)
		if err != nil {
			return err
		}
		if format == "csv" {
			return report.WriteIndicatorsCSV(w, ov)
		}
		return report.WriteIndicatorsXLSX(w, ov, x)
	}
	return fmt.Errorf("export %s.%s: no writer", name, format)
}

// download is a response that sends its headers with its first byte.
type download struct {
	w       http.ResponseWriter
	header  func(http.Header)
	started bool
}

func (d *download) Write(p []byte) (int, error) {
	if !d.started {
		d.started = true
		d.header(d.w.Header())
	}
	return d.w.Write(p)
}
