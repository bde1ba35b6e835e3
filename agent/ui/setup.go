package ui

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"numeribus/agent/store"
	"numeribus/internal/webguard"
)

// SetupConfig wires the first-start page (`agent app` with no store yet)
// to the agent.
type SetupConfig struct {
	// Create makes the encrypted store protected by passphrase and
	// returns its recovery code, shown once on the next page.
	Create func(ctx context.Context, passphrase []byte) (recoveryCode string, err error)
	// MinLength is the shortest passphrase accepted, in characters.
	MinLength int
	// Quit stops the program (« Quitter »); nil hides it.
	Quit   func()
	Logger *slog.Logger
}

// Setup is the first-start page: the mediator chooses the passphrase in
// the browser (typed twice, never echoed back into a page), the store is
// created, and its recovery code is shown once, to be written on paper.
// Then Done is closed and the program hands the same address to the UI
// (Server), whose unlock page asks for the new passphrase.
//
// It stands apart from Server because there is no store to lock or show
// yet; it has the same front door (internal/webguard: Host and
// cross-origin checks) and the same layout, without the sync bar.
type Setup struct {
	cfg   SetupConfig
	log   *slog.Logger
	pages map[string]*template.Template

	mu      sync.Mutex // one creation at a time
	created bool
	done    chan struct{}
}

// NewSetup returns the first-start page for cfg.
func NewSetup(cfg SetupConfig) *Setup {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinLength <= 0 {
		cfg.MinLength = 8
	}
	return &Setup{cfg: cfg, log: cfg.Logger, pages: mustParsePages(), done: make(chan struct{})}
}

// Done is closed once the store exists and the page with its recovery
// code has been sent.
func (s *Setup) Done() <-chan struct{} { return s.done }

// Handler returns the first-start pages behind the UI's front door.
func (s *Setup) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	mux.HandleFunc("GET /{$}", s.getSetup)
	mux.HandleFunc("POST /{$}", s.postSetup)
	mux.HandleFunc("POST /quitter", s.postQuit)
	// Any other address (a bookmark of the UI) leads to the form.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusSeeOther) })
	return webguard.Handler(webguard.Config{Deny: s.denied}, s.gate(mux))
}

// gate reads every form in full (1 MiB at most) and, once the store is
// made, sends the browser back to ask again: the UI answers from then
// on, on the same address. The static files are still served, for the
// page with the recovery code.
func (s *Setup) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.isDone() && r.URL.Path != "/quitter" && !strings.HasPrefix(r.URL.Path, "/static/") {
			w.Header().Set("Connection", "close")
			to := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				to = "/unlock"
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				http.Error(w, tr("bad_form"), http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Setup) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Setup) denied(w http.ResponseWriter, r *http.Request, why webguard.Reason) {
	s.log.Warn("request refused", "why", why.String(), "path", r.URL.Path)
	switch why {
	case webguard.BadHost:
		http.Error(w, "403 : hôte non autorisé", http.StatusForbidden)
	case webguard.CrossOrigin:
		http.Error(w, "403 : origine non autorisée", http.StatusForbidden)
	default:
		http.Error(w, "403 : requête d'un autre site refusée", http.StatusForbidden)
	}
}

// setupForm is what the form page shows: its two fields with their
// problems, never what was typed.
type setupForm struct {
	Pass, Confirm *field
}

func (s *Setup) form(problems map[string][]string) (*form, setupForm) {
	f := newForm(nil)
	for name, ps := range problems {
		for _, p := range ps {
			f.Problems[name] = append(f.Problems[name], p)
			f.Summary = append(f.Summary, summaryItem{ID: fieldID(name), Label: fieldLabel(name), Message: p})
		}
	}
	pass := fld(f, "passphrase", "f.passphrase").Typ("password").Autocomplete("new-password").Req()
	pass.HintText = tr("hint_new_passphrase", s.cfg.MinLength)
	confirm := fld(f, "confirm", "f.confirm").Typ("password").Autocomplete("new-password").Req()
	return f, setupForm{Pass: pass, Confirm: confirm}
}

func (s *Setup) getSetup(w http.ResponseWriter, r *http.Request) {
	f, data := s.form(nil)
	s.render(w, http.StatusOK, "setup", &page{Title: tr("title_setup"), Path: "/", Setup: true, Form: f, Data: data,
		CanQuit: s.cfg.Quit != nil})
}

func (s *Setup) postSetup(w http.ResponseWriter, r *http.Request) {
	pass := []byte(r.PostFormValue("passphrase"))
	confirm := []byte(r.PostFormValue("confirm"))
	defer clear(pass)
	defer clear(confirm)
	problems := map[string][]string{}
	switch {
	case len(bytes.TrimSpace(pass)) == 0:
		problems["passphrase"] = []string{tr("setup_empty")}
	case len([]rune(string(pass))) < s.cfg.MinLength:
		problems["passphrase"] = []string{tr("setup_short", s.cfg.MinLength)}
	case !bytes.Equal(pass, confirm):
		problems["confirm"] = []string{tr("setup_differ")}
	}
	if len(problems) > 0 {
		s.again(w, problems, "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.created { // a second tab, or the form sent twice
		http.Redirect(w, r, "/unlock", http.StatusSeeOther)
		return
	}
	code, err := s.cfg.Create(r.Context(), pass)
	if errors.Is(err, store.ErrExists) {
		// Made meanwhile by `agent init` in a terminal: nothing to show,
		// the UI asks for that store's passphrase.
		s.log.Warn("first start: a store appeared meanwhile")
		s.created = true
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "/unlock", http.StatusSeeOther)
		close(s.done)
		return
	}
	if err != nil {
		s.log.Error("first start: creating the store failed", "err", err)
		s.again(w, nil, tr("setup_failed"))
		return
	}
	s.created = true
	s.log.Info("first start: store created")
	// The code is in this answer only: not kept, not logged, not cached
	// (webguard sends no-store).
	w.Header().Set("Connection", "close")
	s.render(w, http.StatusOK, "setup_code", &page{Title: tr("title_setup_code"), Path: "/", Setup: true, Data: code})
	close(s.done)
}

// again shows the form with its problems, or a general error.
func (s *Setup) again(w http.ResponseWriter, problems map[string][]string, general string) {
	f, data := s.form(problems)
	s.render(w, http.StatusUnprocessableEntity, "setup", &page{Title: tr("title_setup"), Path: "/", Setup: true, Form: f,
		Data: data, Error: general, CanQuit: s.cfg.Quit != nil})
}

func (s *Setup) postQuit(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Quit == nil {
		http.NotFound(w, r)
		return
	}
	s.log.Info("stopping: « Quitter » on the first-start page")
	w.Header().Set("Connection", "close")
	s.render(w, http.StatusOK, "stopped", &page{Title: tr("title_stopped"), Path: "/quitter", Setup: true})
	s.cfg.Quit()
}

func (s *Setup) render(w http.ResponseWriter, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("rendering page", "page", name, "err", err)
		http.Error(w, tr("internal_error"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
