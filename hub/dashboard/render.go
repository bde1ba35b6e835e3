package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
	"numeribus/internal/apperr"
	"numeribus/internal/frnum"
	"numeribus/internal/territoire"
)

//go:embed templates/*.html static/*
var assets embed.FS

func staticFS() fs.FS {
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// paris is the time zone dates are shown in: coordinators read local
// times. Without the zone database (a minimal container) UTC is used.
var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return time.UTC
	}
	return l
}()

var funcs = template.FuncMap{
	"t": tr,
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return tr("never")
		}
		return t.In(paris).Format("02/01/2006 15:04")
	},
	"num":     frInt,
	"dec":     frDec,
	"pct":     frPct,
	"roleLbl": func(r accounts.Role) string { return tr("role_" + string(r)) },
	"join":    strings.Join,
	"frdate":  frDate,
	// communeName shows an INSEE code as "Nom (code)".
	"communeName": func(code string) string {
		if c, ok := territoire.Default().Commune(code); ok {
			return c.Nom + " (" + code + ")"
		}
		return code
	},
	// terrNames shows a user's territory codes with their names:
	// "Meurthe-et-Moselle (54), Vosges (88)".
	"terrNames": func(codes []string) string {
		names := make([]string, len(codes))
		for i, c := range codes {
			names[i] = c
			if t, err := report.ParseTerritory(c); err == nil {
				names[i] = t.Name() + " (" + c + ")"
			}
		}
		return strings.Join(names, ", ")
	},
	// auditLbl names an audit action in French (its code when unknown).
	"auditLbl": func(a accounts.Action) string {
		if l, ok := fr["audit_"+string(a)]; ok {
			return l
		}
		return string(a)
	},
	// planArgs are the arguments of the "planform" partial.
	"planArgs": func(f planForm, action string, teams, vehicles []string, isNew bool) map[string]any {
		return map[string]any{"F": f, "Action": action, "Teams": teams, "Vehicles": vehicles, "New": isNew}
	},
	// wdays names the days of the week, Monday first.
	"wdays": func() []string {
		return []string{"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"}
	},
	// firstRows cuts a coverage list to its first n rows.
	"firstRows": func(rows []report.CommuneRow, n int) []report.CommuneRow { return rows[:min(n, len(rows))] },
	// pwArgs are the arguments of the "pwchoice" partial.
	"pwArgs": func(prefix string, generate bool) map[string]any {
		return map[string]any{"P": prefix, "Generate": generate}
	},
	// areas names the territories a report counted.
	"areas": func(ts []report.Territory) string {
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.Name() + " (" + t.String() + ")"
		}
		return strings.Join(names, ", ")
	},
}

// frDate shows an ISO date (AAAA-MM-JJ) as JJ/MM/AAAA.
func frDate(iso string) string {
	if t, err := time.Parse("2006-01-02", iso); err == nil {
		return t.Format("02/01/2006")
	}
	return iso
}

// parsePages parses each page with the layout and the partials.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard templates: %w", err)
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		b, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("dashboard templates: %w", err)
		}
		if pages[name], err = b.ParseFS(assets, n); err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", n, err)
		}
	}
	return pages, nil
}

// page is what every page's template gets.
type page struct {
	Title string
	Path  string
	User  *accounts.User // nil on the login page
	Flash string
	Error string
	Data  any
}

func (s *Server) page(r *http.Request, titleKey string, data any) *page {
	wh := whoOf(r)
	return &page{Title: tr(titleKey), Path: r.URL.Path, User: &wh.user, Data: data}
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := s.pages[name]
	if !ok {
		s.plainFail(w, r, fmt.Errorf("no page template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.plainFail(w, r, fmt.Errorf("rendering page %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail answers an unexpected error with a French message in the
// layout (errorPage); the detail goes to the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("dashboard request failed", "path", r.URL.Path, "err", err)
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeAPIError(w, apperr.Internal, tr("internal_error"))
		return
	}
	s.errorPage(w, r, http.StatusInternalServerError, tr("internal_error"))
}

// plainFail answers in plain text when a page cannot be rendered at all
// (a template failing), where errorPage would fail the same way.
func (s *Server) plainFail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("dashboard page not rendered", "path", r.URL.Path, "err", err)
	http.Error(w, tr("internal_error"), http.StatusInternalServerError)
}

// writeAPIError answers an API request with code's status and
// {"error": code, "message": msg}: the codes of internal/apperr, the same
// words as the agent's API and the command lines' exit codes.
func writeAPIError(w http.ResponseWriter, code apperr.Code, msg string) {
	writeJSON(w, code.Status(), map[string]string{"error": string(code), "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func itoa(n int) string { return strconv.Itoa(n) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// frInt writes an integer the French way (internal/frnum): 12 345.
func frInt(v any) string {
	switch x := v.(type) {
	case int:
		return frnum.Int(x)
	case int64:
		return frnum.Int(x)
	case uint64:
		return frnum.Int(x)
	}
	return fmt.Sprint(v)
}

// frDec writes a number with one decimal and a comma: 12,5.
func frDec(f float64) string { return frnum.Dec(f, 1) }

// frPct writes a ratio (0..1) as a French percentage: 42,5 %.
func frPct(f float64) string { return frnum.Pct(f) }
