package dashboard

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"numeribus/hub/accounts"
	"numeribus/internal/apperr"
)

// sessionCookie holds the session's token (the store keeps its hash).
// Another site can neither post with it nor log a browser into an
// account of its choosing: the guard refuses cross-origin writes, the
// login included.
const sessionCookie = "numeribus_hub"

// touchEvery limits session writes: the last activity is recorded at
// most once a minute per session, which the 8-hour idle limit does not
// notice.
const touchEvery = time.Minute

// who is the authenticated user of a request and how they came in.
type who struct {
	user    accounts.User
	session *accounts.Session // nil for a bearer token
}

type whoKey struct{}

func whoOf(r *http.Request) *who {
	w, _ := r.Context().Value(whoKey{}).(*who)
	return w
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: maxAge})
}

// authenticate finds the request's user from the session cookie, or
// for /api/ from a bearer token. It returns nil when there is none (or
// an expired one, then deleted).
func (s *Server) authenticate(r *http.Request) (*who, error) {
	ctx := r.Context()
	now := s.cfg.Now()
	if strings.HasPrefix(r.URL.Path, "/api/") {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			t, err := s.cfg.Accounts.APIToken(ctx, accounts.HashToken(strings.TrimPrefix(a, "Bearer ")))
			if errors.Is(err, accounts.ErrNoSession) || (err == nil && !t.Valid(now)) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return s.activeUser(ctx, t.UserID, nil)
		}
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	h := accounts.HashToken(c.Value)
	se, err := s.cfg.Accounts.Session(ctx, h)
	if errors.Is(err, accounts.ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if se.Expired(now) {
		if err := s.cfg.Accounts.DeleteSession(ctx, h); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if now.Sub(se.LastSeen) >= touchEvery {
		if err := s.cfg.Accounts.TouchSession(ctx, h, now); err != nil {
			return nil, err
		}
		se.LastSeen = now
	}
	return s.activeUser(ctx, se.UserID, &se)
}

func (s *Server) activeUser(ctx context.Context, id int64, se *accounts.Session) (*who, error) {
	u, err := s.cfg.Accounts.UserByID(ctx, id)
	if errors.Is(err, accounts.ErrNoUser) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !u.Active() {
		return nil, nil
	}
	return &who{user: u, session: se}, nil
}

// authed lets through only logged-in users, reads the form of every
// write, and gives the handler the user. Without a session a page
// redirects to the login, the API answers 401.
func (s *Server) authed(h http.HandlerFunc) http.Handler { return s.authedLimit(1<<20, h) }

// authedLimit is authed with a body limit of its own, for an upload.
func (s *Server) authedLimit(limit int64, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wh, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if wh == nil {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				w.Header().Set("WWW-Authenticate", `Bearer realm="numeribus"`)
				writeAPIError(w, apperr.Auth, tr("api_unauthorized"))
				return
			}
			next := ""
			if r.Method == http.MethodGet && r.URL.Path != "/" {
				next = "?next=" + urlQueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, "/login"+next, http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if wh.session == nil { // bearer tokens read only
				writeAPIError(w, apperr.Forbidden, tr("api_read_only"))
				return
			}
			if !s.readForm(w, r, limit) {
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, wh)))
	})
}

// readForm reads a write's form in full, so that no handler acts on part
// of one (a body over limit bytes, a broken encoding). When it cannot, it
// answers and returns false.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, limit int64) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	err := r.ParseForm()
	if err == nil {
		return true
	}
	s.log.Warn("dashboard request refused: unreadable form", "path", r.URL.Path)
	code := http.StatusBadRequest
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		code = http.StatusRequestEntityTooLarge
	}
	s.errorPage(w, r, code, tr("bad_form"))
	return false
}

// admin is authed for admins only; others get 403 and an audit entry.
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request) {
		if !whoOf(r).user.Role.Admin() {
			s.deny(w, r)
			return
		}
		h(w, r)
	})
}

// apiAdmin is admin for the JSON API.
func (s *Server) apiAdmin(h http.HandlerFunc) http.Handler { return s.admin(h) }

// deny answers 403 and records the attempt.
func (s *Server) deny(w http.ResponseWriter, r *http.Request) {
	s.audit(r, accounts.ActionDenied, r.Method+" "+r.URL.Path)
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeAPIError(w, apperr.Forbidden, tr("forbidden"))
		return
	}
	s.errorPage(w, r, http.StatusForbidden, tr("forbidden"))
}

// audit records an action of the request's user. A failure to write the
// audit log is logged, not shown: the action has already happened.
func (s *Server) audit(r *http.Request, a accounts.Action, what string) {
	e := accounts.AuditEntry{At: s.cfg.Now(), Action: a, What: what, IP: clientIP(r)}
	if wh := whoOf(r); wh != nil {
		e.UserID, e.Email = wh.user.ID, wh.user.Email
	}
	s.auditEntry(r.Context(), e)
}

func (s *Server) auditEntry(ctx context.Context, e accounts.AuditEntry) {
	if err := s.cfg.Accounts.Audit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("writing the audit log failed", "action", string(e.Action), "err", err)
	}
}

type loginData struct {
	Email, Next string
}

func (s *Server) getLogin(w http.ResponseWriter, r *http.Request) {
	if wh, err := s.authenticate(r); err == nil && wh != nil {
		http.Redirect(w, r, "/apercu", http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next"))}, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData, msg string) {
	p := &page{Title: tr("title_login"), Path: r.URL.Path, Error: msg, Data: d}
	s.render(w, r, status, "login", p)
}

// postLogin checks the password, slowed down per e-mail and per client
// address after accounts.DefaultFreeFailures failures, and opens a
// session. Every outcome is audited.
func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r, 64<<10) {
		return
	}
	now := s.cfg.Now()
	typed := strings.TrimSpace(r.PostFormValue("email"))
	email := strings.ToLower(typed)
	if len(email) > 254 {
		email = email[:254]
	}
	pw := []byte(r.PostFormValue("password"))
	defer clear(pw)
	d := loginData{Email: typed, Next: safeNext(r.PostFormValue("next"))}
	ip := clientIP(r)
	kEmail, kIP := "email:"+email, "ip:"+ip
	if wait := max(s.cfg.Limiter.Wait(kEmail, now), s.cfg.Limiter.Wait(kIP, now)); wait > 0 {
		s.auditEntry(r.Context(), accounts.AuditEntry{At: now, Email: email, Action: accounts.ActionLoginLimited, IP: ip})
		minutes := int(math.Ceil(wait.Minutes()))
		w.Header().Set("Retry-After", itoa(int(math.Ceil(wait.Seconds()))))
		s.renderLogin(w, r, http.StatusTooManyRequests, d, tr("login_limited", minutes))
		return
	}
	u, err := s.cfg.Accounts.UserByEmail(r.Context(), email)
	ok := false
	switch {
	case errors.Is(err, accounts.ErrNoUser):
		accounts.BurnTime(accounts.DefaultParams)
	case err != nil:
		s.fail(w, r, err)
		return
	default:
		if ok, err = accounts.VerifyPassword(u.PasswordHash, pw); err != nil {
			s.log.Error("login: stored hash unreadable", "user", u.ID, "err", err)
			ok = false
		}
		ok = ok && u.Active()
	}
	if !ok {
		s.cfg.Limiter.Fail(kEmail, now)
		s.cfg.Limiter.Fail(kIP, now)
		e := accounts.AuditEntry{At: now, Email: email, Action: accounts.ActionLoginFailed, IP: ip}
		if u.ID != 0 {
			e.UserID = u.ID
		}
		s.auditEntry(r.Context(), e)
		s.renderLogin(w, r, http.StatusUnauthorized, d, tr("login_wrong"))
		return
	}
	s.cfg.Limiter.Succeed(kEmail)
	s.cfg.Limiter.Succeed(kIP)
	tok, err := accounts.NewToken()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Accounts.CreateSession(r.Context(), accounts.Session{Hash: accounts.HashToken(tok), UserID: u.ID, Created: now, LastSeen: now}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.auditEntry(r.Context(), accounts.AuditEntry{At: now, UserID: u.ID, Email: u.Email, Action: accounts.ActionLogin, IP: ip})
	s.setCookie(w, r, sessionCookie, tok, 0)
	next := d.Next
	if next == "" {
		next = "/apercu"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) postLogout(w http.ResponseWriter, r *http.Request) {
	wh := whoOf(r)
	if err := s.cfg.Accounts.DeleteSession(r.Context(), wh.session.Hash); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, accounts.ActionLogout, "")
	s.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this server, away from the
// login page itself.
func safeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") ||
		strings.HasPrefix(p, "/login") || strings.HasPrefix(p, "/api/") {
		return ""
	}
	return p
}
