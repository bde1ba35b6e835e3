// Package dashboard is the coordinators' web dashboard on the hub (issue
// #6), served by `hub serve` beside the sync endpoint: who synced when,
// enrollment codes and revocations for admins, and the indicators of a
// period and a territory for coordinators and funders.
//
// Unlike the agent's UI it is reachable from the network, so it has
// accounts (hub/accounts): a login with an Argon2id password, slowed
// down after failures per e-mail and per client address, a session
// cookie (HttpOnly, SameSite=Strict, Secure over TLS) whose token the
// store keeps only hashed, Host and cross-origin checks
// (internal/webguard), and an audit log of logins, admin actions and every access to
// personal data. What a user sees depends on their role: an admin sees
// everything and manages devices and users; a coordinator's every
// request is intersected with their territories; a viewer sees
// aggregates only.
package dashboard

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
	"numeribus/hub/store"
	"numeribus/internal/apperr"
	"numeribus/internal/territoire"
)

// DefaultStaleAfter is how long a device may go without a complete sync
// before it is shown "en retard" (shared/DOMAIN.md: 5 days).
const DefaultStaleAfter = 5 * 24 * time.Hour

// Config wires the dashboard to the hub.
type Config struct {
	// Store holds devices and enrollments; Accounts, users, sessions and
	// the audit log (the hub's SQLite store is both).
	Store    store.Store
	Accounts accounts.Store
	// Reports computes the indicators (the hub's SQLite store over its
	// fact tables); without it the indicator pages answer 503.
	Reports report.Source
	// Plans plans tour stops (the hub's SQLite store); without it the
	// tournées page only reports.
	Plans Planner
	// Places keeps the imported list of mediation places, for the map's
	// white zones (the hub's store); without it the map has none.
	Places Places
	Logger *slog.Logger
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
	// StaleAfter flags devices without a sync for longer
	// (DefaultStaleAfter when zero).
	StaleAfter time.Duration
	// SyncURL and Fingerprint go into the enrollment codes made here:
	// the address agents dial and the SHA-256 of the hub's certificate
	// (nil for an insecure ws:// hub).
	SyncURL     string
	Fingerprint []byte
	// Hosts are the Host header values accepted besides the address the
	// connection came in on (and localhost on its port): the public
	// name of the hub, with its port when not the default.
	Hosts []string
	// Limiter slows down password guessing (accounts.NewLimiter when
	// nil).
	Limiter *accounts.Limiter
	// ChoicesTTL is how long the filters' lists of a scope are reused
	// (DefaultChoicesTTL when zero; negative: computed on every page).
	ChoicesTTL time.Duration
	// PasswordParams are the Argon2id costs of the passwords admins set
	// on the Utilisateurs page (accounts.DefaultParams when zero).
	PasswordParams accounts.Params
}

// Server is the dashboard's HTTP side. It keeps no session in memory:
// sessions live in the store, so a restart does not log anyone out.
type Server struct {
	cfg   Config
	log   *slog.Logger
	pages map[string]*template.Template
	terr  *territoire.Index
	// choicesCache keeps the filters' lists per scope (choices.go).
	choicesCache choicesCache
}

// New returns the dashboard for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Accounts == nil {
		return nil, fmt.Errorf("dashboard: a store and an accounts store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Limiter == nil {
		cfg.Limiter = accounts.NewLimiter()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger, pages: pages, terr: territoire.Default()}, nil
}

// HostOf returns the Host header value a browser sends for the URL u
// (ws/wss/http/https), for Config.Hosts: the host with its port unless
// it is the scheme's default.
func HostOf(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("reading host of %q: %w", u, err)
	}
	host, port := p.Hostname(), p.Port()
	if port == "" || ((p.Scheme == "wss" || p.Scheme == "https") && port == "443") || ((p.Scheme == "ws" || p.Scheme == "http") && port == "80") {
		return host, nil
	}
	return net.JoinHostPort(host, port), nil
}

// Handler returns the dashboard with every protection in front. Mount
// it on "/" of the hub's mux: the more specific /sync and /healthz keep
// going to their own handlers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	mux.HandleFunc("GET /login", s.getLogin)
	mux.HandleFunc("POST /login", s.postLogin)
	mux.Handle("POST /logout", s.authed(s.postLogout))
	mux.Handle("GET /{$}", s.authed(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/apercu", http.StatusSeeOther)
	}))
	mux.Handle("GET /postes", s.admin(s.getDevices))
	mux.Handle("POST /postes/inscription", s.admin(s.postEnroll))
	mux.Handle("GET /postes/{name}/revoquer", s.admin(s.getRevoke))
	mux.Handle("POST /postes/{name}/revoquer", s.admin(s.postRevoke))
	s.userRoutes(mux)
	mux.Handle("GET /api/devices", s.apiAdmin(s.apiDevices))
	s.reportRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeAPIError(w, apperr.NotFound, tr("not_found"))
			return
		}
		s.errorPage(w, r, http.StatusNotFound, tr("not_found"))
	})
	return s.guard(mux)
}

// CleanSessions removes expired sessions every interval until ctx ends.
// Expired sessions are refused anyway; this keeps the table small.
func (s *Server) CleanSessions(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.cfg.Accounts.DeleteExpiredSessions(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("removing expired sessions failed", "err", err)
		} else if n > 0 {
			s.log.Info("expired sessions removed", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
