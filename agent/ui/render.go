package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"numeribus/internal/domain"
)

//go:embed templates/*.html static/*
var assets embed.FS

func staticFS() fs.FS {
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// codeLists indexes the domain's code lists by name for the templates.
var codeLists = func() map[string]*domain.CodeList {
	m := map[string]*domain.CodeList{}
	for _, l := range domain.CodeLists() {
		m[l.Name] = l
	}
	return m
}()

func codeList(name string) *domain.CodeList {
	l, ok := codeLists[name]
	if !ok {
		panic("ui: unknown code list " + name)
	}
	return l
}

var funcs = template.FuncMap{
	"t":     tr,
	"codes": func(list string) []domain.Code { return codeList(list).Codes },
	"label": func(list, code string) string { return codeList(list).Label(code) },
	"labels": func(list string, codes []string) string {
		out := make([]string, len(codes))
		for i, c := range codes {
			out[i] = codeList(list).Label(c)
		}
		return strings.Join(out, ", ")
	},
	"fld":      fld,
	"fldL":     fldL,
	"choices":  choices,
	"choicesL": choicesL,
	"frdate":   frDate,
	"presets":  func() []int { return domain.DureesPresets },
	"list":     func(s ...string) []string { return s },
}

// mustParsePages parses each page with the layout and the partials.
func mustParsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(assets, "templates/layout.html"))
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(assets, n))
	}
	return pages
}

// page is what every page's template gets.
type page struct {
	Title    string
	Path     string
	Unlocked bool
	Flash    string
	Error    string
	AutoLock int // seconds
	Sync     syncView
	Disk     string // the low-disk banner (disk.go), empty while there is room
	Form     *form
	Data     any
	// CanQuit shows « Quitter » (Config.Quit is set: `agent app`).
	CanQuit bool
	// Setup is the first-start page (setup.go): no sync bar yet.
	Setup bool
}

func (s *Server) page(r *http.Request, titleKey string, data any) *page {
	se := sessionOf(r)
	return &page{Title: tr(titleKey), Path: r.URL.Path, Unlocked: s.unlockedFor(se),
		Flash: s.popFlash(se), AutoLock: int(s.cfg.AutoLock / time.Second), Sync: s.syncView(r), Disk: s.diskBanner(), Data: data,
		CanQuit: s.cfg.Quit != nil}
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if v := draftOf(r); v != nil && p.Form != nil {
		// A form page asked for a draft shows what was typed, not its
		// defaults (draft.go).
		p.Form = newForm(v)
	}
	t, ok := s.pages[name]
	if !ok {
		panic("ui: no page " + name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("rendering page", "page", name, "err", err)
		http.Error(w, tr("internal_error"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail answers an unexpected error with a plain French message; the
// detail (no personal data: store errors name ids only) goes to the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "path", r.URL.Path, "err", err)
	http.Error(w, tr("internal_error"), http.StatusInternalServerError)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// frDate shows an ISO date as JJ/MM/AAAA.
func frDate(iso string) string {
	if t, ok := domain.ParseDate(iso); ok {
		return t.Format("02/01/2006")
	}
	return iso
}

// form holds what was typed (to show it again) and the problems per field.
type form struct {
	V        url.Values
	Problems map[string][]string
	Summary  []summaryItem
}

type summaryItem struct {
	ID, Label, Message string
}

func newForm(v url.Values) *form {
	if v == nil {
		v = url.Values{}
	}
	return &form{V: v, Problems: map[string][]string{}}
}

// addProblems attaches problems to their fields (prefix names the record
// of a multi-record form, e.g. "consent.").
func (f *form) addProblems(prefix string, ps []domain.Problem) {
	for _, p := range ps {
		name := prefix + p.Field
		msg := p.Message
		if p.Code == domain.ProblemUnknownCode && p.Value != "" && len(p.Allowed) > 0 {
			msg = tr("problem_unknown_code", p.Value)
		}
		f.Problems[name] = append(f.Problems[name], msg)
		f.Summary = append(f.Summary, summaryItem{ID: fieldID(name), Label: fieldLabel(name), Message: msg})
	}
}

func (f *form) general(msg string) {
	f.Summary = append(f.Summary, summaryItem{Message: msg})
}

func (f *form) Has(name, value string) bool {
	for _, v := range f.V[name] {
		if v == value {
			return true
		}
	}
	return false
}

func (f *form) Get(name string) string { return f.V.Get(name) }

func fieldID(name string) string { return "f-" + strings.ReplaceAll(name, ".", "-") }

// fieldLabel finds a field's label for the error summary.
func fieldLabel(name string) string {
	if l, ok := fr["f."+name]; ok {
		return l
	}
	parts := strings.Split(name, ".")
	for i := len(parts) - 1; i > 0; i-- {
		if l, ok := fr["f."+strings.Join(parts[:i], ".")]; ok {
			return l
		}
	}
	return name
}

// field is one input of a form, ready for the "input" partial.
type field struct {
	Name, ID, Label, Value, Type, List, InputMode, HintText, Auto string
	Errors                                                        []string
	Required                                                      bool
}

func (f *field) ErrID() string { return "e-" + f.ID[2:] }
func (f *field) HintID() string {
	if f.HintText == "" {
		return ""
	}
	return "h-" + f.ID[2:]
}
func (f *field) Typ(t string) *field          { f.Type = t; return f }
func (f *field) Lst(l string) *field          { f.List = l; return f }
func (f *field) Mode(m string) *field         { f.InputMode = m; return f }
func (f *field) Hint(key string) *field       { f.HintText = tr(key); return f }
func (f *field) Req() *field                  { f.Required = true; return f }
func (f *field) Autocomplete(a string) *field { f.Auto = a; return f }

func fld(fm *form, name, labelKey string) *field { return fldL(fm, name, tr(labelKey)) }

func fldL(fm *form, name, label string) *field {
	return &field{Name: name, ID: fieldID(name), Label: label, Value: fm.Get(name), Type: "text",
		Errors: fm.Problems[name], Auto: "off"}
}

// choice is a group of checkboxes, radios or a select over a code list.
type choice struct {
	Name, ID, Legend string
	Errors           []string
	Options          []option
	Required         bool
}

type option struct {
	Value, Label, ID string
	Checked          bool
}

func (c *choice) ErrID() string { return "e-" + c.ID[2:] }

func choices(fm *form, name, legendKey, list string) *choice {
	return choicesL(fm, name, tr(legendKey), list)
}

func choicesL(fm *form, name, legend, list string) *choice {
	c := &choice{Name: name, ID: fieldID(name), Legend: legend, Errors: fm.Problems[name]}
	for _, code := range codeList(list).Codes {
		c.Options = append(c.Options, option{Value: code.Code, Label: code.Label,
			ID: fieldID(name) + "-" + code.Code, Checked: fm.Has(name, code.Code)})
	}
	return c
}

// relTime says how long ago t was, in French.
func relTime(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return tr("rel_now")
	case d < time.Hour:
		return plural(int(d/time.Minute), "rel_minute", "rel_minutes")
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "rel_hour", "rel_hours")
	}
	return plural(int(d/(24*time.Hour)), "rel_day", "rel_days")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return tr(one, n)
	}
	return tr(many, n)
}
