// Package ui is the mediators' local web interface (issue #5): server-
// rendered French pages to unlock the agent, record activities,
// beneficiaries with their consent, needs assessments, find a followed
// person, and see the sync state.
//
// It listens on the loopback interface only and defends itself against
// the other pages a browser may have open (internal/webguard): the Host
// header must name this server (DNS rebinding), a write another origin
// sends is refused (the browser says so in Sec-Fetch-Site or Origin), and
// so is a page another site asks for; the session cookie is HttpOnly and
// SameSite=Strict. While the store is locked no page but /unlock is
// served and the API answers 423.
// Personal data never appears in URLs (ids only) nor in logs.
package ui

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/territoire"
	"numeribus/internal/webguard"
)

// DefaultAddr is where the UI listens unless told otherwise.
const DefaultAddr = "127.0.0.1:7070"

// DefaultAutoLock is the inactivity after which the store is locked.
const DefaultAutoLock = 15 * time.Minute

// Config wires the UI to the agent.
type Config struct {
	Store *store.Store
	// Sync runs one sync round now ("Synchroniser maintenant"); nil
	// when the agent has no hub.
	Sync func(ctx context.Context) error
	// Live reports the sync loop's connection as it is now: whether one
	// is open with the hub, and when the hub was last heard (ack, page,
	// keepalive ping). Nil when no loop runs: the header then goes by the
	// last contact recorded in the store.
	Live   func() (connected bool, lastContact time.Time)
	Logger *slog.Logger
	// AutoLock locks the store after this much inactivity
	// (DefaultAutoLock when zero).
	AutoLock time.Duration
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
	// Notice fills in the printed information notice (who is
	// responsible, whom to contact, how long data is kept).
	Notice Notice
	// Quit stops the program (« Quitter », quit.go); nil when the UI
	// runs in a terminal's `agent serve`, which Ctrl-C stops.
	Quit func()
}

// Server is the UI's HTTP server state: sessions and the inactivity clock.
type Server struct {
	cfg   Config
	log   *slog.Logger
	pages map[string]*template.Template
	terr  *territoire.Index

	mu       sync.Mutex
	sessions map[string]*session
	lastSeen time.Time // last user request of an unlocked session

	// createMu makes a create form's id check and save one step
	// (formid.go).
	createMu sync.Mutex
}

// session is one browser's session: whether it unlocked the store, and a
// one-shot message for the next page.
type session struct {
	id      string
	authed  bool
	flash   string
	created time.Time
	// The vehicle and mediator of the last activity saved, offered for
	// the next one: a laptop serves one crew for a day.
	vehicule, mediateur string
	// stop is the tour stop the session is at: the last one an activity
	// form was opened or saved for (today's only count).
	stop string
	// search is the last name searched, for the results page to be
	// reloaded without a resubmission; dropped at the lock.
	search string
}

const (
	cookieName  = "numeribus_session"
	maxSessions = 64
)

// New returns the UI server for cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AutoLock <= 0 {
		cfg.AutoLock = DefaultAutoLock
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sessions: map[string]*session{}, terr: territoire.Default()}
	s.pages = mustParsePages()
	return s
}

// Listen opens a TCP listener on addr, which must be a loopback address
// (127.0.0.1, ::1 or localhost): the UI serves personal data and must not
// be reachable from the network.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("adresse d'écoute %q invalide : %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("adresse d'écoute %q refusée : l'interface n'écoute que sur la boucle locale (127.0.0.1 ou [::1]), jamais sur le réseau", addr)
	}
	return net.Listen("tcp", net.JoinHostPort(host, port))
}

// Serve serves the UI on ln until ctx ends, then shuts down. It also
// locks the store after Config.AutoLock of inactivity even when no
// request comes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				hs.Shutdown(sctx)
				cancel()
				return
			case <-t.C:
				s.idleCheck()
			}
		}
	}()
	err := hs.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler returns the UI's handler with every protection in front.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	mux.HandleFunc("GET /unlock", s.getUnlock)
	mux.HandleFunc("POST /unlock", s.postUnlock)
	mux.HandleFunc("POST /lock", s.postLock)
	mux.HandleFunc("POST /sync", s.postSync)
	mux.HandleFunc("POST /brouillon", s.postDraft)
	mux.HandleFunc("GET /brouillons", s.getDrafts)
	mux.HandleFunc("POST /brouillons/{id}/abandon", s.postAbandonDraft)
	mux.HandleFunc("GET /{$}", s.getToday)
	mux.HandleFunc("GET /activites/nouvelle", s.getActivity)
	mux.HandleFunc("POST /activites/nouvelle", s.postActivity)
	mux.HandleFunc("GET /beneficiaires", s.getSearch)
	mux.HandleFunc("POST /beneficiaires", s.postSearch)
	mux.HandleFunc("GET /beneficiaires/nouveau", s.getBeneficiary)
	mux.HandleFunc("POST /beneficiaires/nouveau", s.postBeneficiary)
	mux.HandleFunc("GET /beneficiaires/{id}", s.getBeneficiaryPage)
	mux.HandleFunc("GET /beneficiaires/{id}/diagnostic", s.getAssessment)
	mux.HandleFunc("POST /beneficiaires/{id}/diagnostic", s.postAssessment)
	mux.HandleFunc("GET /beneficiaires/{id}/consentement", s.getConsent)
	mux.HandleFunc("POST /beneficiaires/{id}/consentement", s.postConsent)
	mux.HandleFunc("GET /consentements/{id}/retrait", s.getWithdraw)
	mux.HandleFunc("POST /consentements/{id}/retrait", s.postWithdraw)
	mux.HandleFunc("GET /notice", s.getNotice)
	mux.HandleFunc("POST /quitter", s.postQuit)
	mux.HandleFunc("POST /ateliers/{id}/participants", s.postWorkshopParticipant)
	mux.HandleFunc("GET /api/communes", s.apiCommunes)
	mux.HandleFunc("GET /api/status", s.apiStatus)
	mux.HandleFunc("POST /api/activities", s.apiActivities)
	mux.HandleFunc("POST /api/ping", s.apiPing)
	return s.guard(s.sessionGate(mux))
}

// guard rejects requests not addressed to this server by name (DNS
// rebinding: a hostile name resolving to 127.0.0.1 carries its own Host)
// and cross-origin requests, and sets the security headers
// (internal/webguard). The UI listens on loopback only, so the names
// accepted are the listening address and localhost on its port.
func (s *Server) guard(next http.Handler) http.Handler {
	return webguard.Handler(webguard.Config{Deny: s.denied}, next)
}

// denied answers a request the guard refused.
func (s *Server) denied(w http.ResponseWriter, r *http.Request, why webguard.Reason) {
	switch why {
	case webguard.BadHost:
		s.log.Warn("request refused: unexpected Host", "path", r.URL.Path)
		http.Error(w, "403 : hôte non autorisé", http.StatusForbidden)
	case webguard.CrossOrigin:
		s.log.Warn("request refused: cross-origin", "path", r.URL.Path)
		http.Error(w, "403 : origine non autorisée", http.StatusForbidden)
	default:
		http.Error(w, "403 : requête d'un autre site refusée", http.StatusForbidden)
	}
}

type ctxKey struct{}

func sessionOf(r *http.Request) *session {
	se, _ := r.Context().Value(ctxKey{}).(*session)
	return se
}

// sessionGate gives every browser a session, reads the form of every
// write, applies the auto-lock, and keeps locked or unauthenticated
// sessions away from everything but /unlock and the static files.
func (s *Server) sessionGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		s.idleCheck()
		se := s.session(w, r)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Read in full here, so that a handler never acts on part
			// of a form (a body over 1 MiB, a broken encoding).
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				s.log.Warn("request refused: unreadable form", "path", r.URL.Path)
				code := http.StatusBadRequest
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					code = http.StatusRequestEntityTooLarge
				}
				http.Error(w, tr("bad_form"), code)
				return
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, se))
		open := r.URL.Path == "/unlock" || (r.URL.Path == "/brouillon" && r.Method == http.MethodPost) || r.URL.Path == "/quitter"
		if !open && !s.unlockedFor(se) {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				writeJSON(w, http.StatusLocked, map[string]string{"error": "locked", "message": tr("locked_api")})
				return
			}
			// A form saved after the lock is kept, not dropped.
			if r.Method == http.MethodPost && s.keepDraft(r, r.URL.Path) {
				s.setFlash(se, tr("draft_kept"))
			}
			http.Redirect(w, r, "/unlock", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodGet {
			r = s.takeDraft(r)
		}
		if !open && r.URL.Path != "/api/status" {
			s.mu.Lock()
			s.lastSeen = s.cfg.Now()
			s.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// unlockedFor reports whether se may see personal data.
func (s *Server) unlockedFor(se *session) bool {
	s.mu.Lock()
	authed := se.authed
	s.mu.Unlock()
	return authed && !s.cfg.Store.Locked()
}

// idleCheck locks the store when the last user request is older than
// the auto-lock delay.
func (s *Server) idleCheck() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastSeen.IsZero() || s.cfg.Now().Sub(s.lastSeen) < s.cfg.AutoLock {
		return
	}
	s.lockLocked()
	s.log.Info("store locked after inactivity")
}

// lockLocked wipes the key and logs every session out; s.mu is held.
func (s *Server) lockLocked() {
	s.cfg.Store.Lock()
	for _, se := range s.sessions {
		se.authed = false
		se.search = "" // a name, in clear in memory: not kept past the lock
	}
	s.lastSeen = time.Time{}
}

// session returns the request's session, creating one (and its cookie)
// when the browser has none or an unknown one.
func (s *Server) session(w http.ResponseWriter, r *http.Request) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, err := r.Cookie(cookieName); err == nil {
		if se, ok := s.sessions[c.Value]; ok {
			return se
		}
	}
	return s.newSessionLocked(w)
}

func (s *Server) newSessionLocked(w http.ResponseWriter) *session {
	if len(s.sessions) >= maxSessions {
		var oldest *session
		for _, se := range s.sessions {
			if !se.authed && (oldest == nil || se.created.Before(oldest.created)) {
				oldest = se
			}
		}
		if oldest == nil {
			for _, se := range s.sessions {
				if oldest == nil || se.created.Before(oldest.created) {
					oldest = se
				}
			}
		}
		delete(s.sessions, oldest.id)
	}
	se := &session{id: randToken(), created: s.cfg.Now()}
	s.sessions[se.id] = se
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: se.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return se
}

func randToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// setFlash leaves a message for the session's next page.
// crew returns the vehicle and mediator of the session's last activity.
func (s *Server) crew(se *session) (vehicule, mediateur string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return se.vehicule, se.mediateur
}

func (s *Server) lastSearch(se *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return se.search
}

func (s *Server) setLastSearch(se *session, q string) {
	s.mu.Lock()
	se.search = q
	s.mu.Unlock()
}

func (s *Server) currentStop(se *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return se.stop
}

func (s *Server) setCurrentStop(se *session, id string) {
	s.mu.Lock()
	se.stop = id
	s.mu.Unlock()
}

func (s *Server) setCrew(se *session, vehicule, mediateur string) {
	s.mu.Lock()
	se.vehicule, se.mediateur = vehicule, mediateur
	s.mu.Unlock()
}

func (s *Server) setFlash(se *session, msg string) {
	s.mu.Lock()
	se.flash = msg
	s.mu.Unlock()
}

func (s *Server) popFlash(se *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := se.flash
	se.flash = ""
	return f
}

func (s *Server) getUnlock(w http.ResponseWriter, r *http.Request) {
	if s.unlockedFor(sessionOf(r)) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "unlock", s.page(r, "title_unlock", nil))
}

func (s *Server) postUnlock(w http.ResponseWriter, r *http.Request) {
	secret := []byte(r.PostFormValue("secret"))
	if len(bytes.TrimSpace(secret)) == 0 {
		// Nothing typed is not a wrong passphrase: say what happened.
		p := s.page(r, "title_unlock", nil)
		p.Error = tr("unlock_empty")
		s.render(w, r, http.StatusUnauthorized, "unlock", p)
		return
	}
	err := s.cfg.Store.Unlock(r.Context(), secret)
	clear(secret)
	if err != nil {
		p := s.page(r, "title_unlock", nil)
		if errors.Is(err, store.ErrWrongSecret) {
			p.Error = tr("unlock_wrong")
		} else {
			s.log.Error("unlock failed", "err", err)
			p.Error = tr("unlock_failed")
		}
		s.render(w, r, http.StatusUnauthorized, "unlock", p)
		return
	}
	// A fresh session for the unlocked browser: a session id known
	// before the unlock is worth nothing after it.
	s.mu.Lock()
	delete(s.sessions, sessionOf(r).id)
	se := s.newSessionLocked(w)
	se.authed = true
	s.lastSeen = s.cfg.Now()
	s.mu.Unlock()
	s.log.Info("store unlocked from the UI")
	if s.hasDrafts(r.Context()) {
		http.Redirect(w, r, "/brouillons", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) postLock(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.lockLocked()
	s.mu.Unlock()
	s.log.Info("store locked from the UI")
	http.Redirect(w, r, "/unlock", http.StatusSeeOther)
}

func (s *Server) postSync(w http.ResponseWriter, r *http.Request) {
	se := sessionOf(r)
	if s.cfg.Sync == nil {
		s.setFlash(se, tr("sync_unavailable"))
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), 90*time.Second)
		err := s.cfg.Sync(ctx)
		cancel()
		if err != nil {
			s.log.Warn("sync from the UI failed", "err", err)
			s.setFlash(se, tr("sync_failed", plainSyncError(err.Error())))
		} else {
			s.setFlash(se, tr("sync_done"))
		}
	}
	http.Redirect(w, r, backPath(r.PostFormValue("back")), http.StatusSeeOther)
}

// backPath keeps a redirect on this server.
func backPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") || p == "/unlock" {
		return "/"
	}
	return p
}
