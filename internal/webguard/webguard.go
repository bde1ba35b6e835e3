// Package webguard is the one front door of the project's two web
// interfaces, the agent's local UI (agent/ui) and the hub's dashboard
// (hub/dashboard). Both defend themselves the same way against the other
// pages a browser has open; this package holds that defence once, so that
// a fix to it reaches both. Each program keeps its own texts: a refused
// request is answered by the program's Deny function.
//
// In front of every request it:
//
//   - refuses a Host header that names another server: only the address the
//     connection came in on, localhost on that port, and the configured
//     names pass. A hostile name made to resolve to the server (DNS
//     rebinding) carries its own name in Host, so its pages never reach
//     ours.
//   - refuses cross-origin writes with the standard library's
//     [http.CrossOriginProtection]: a POST (or any non-safe method) that
//     Sec-Fetch-Site says came from another origin, or, from a browser too
//     old to send Sec-Fetch-Site, whose Origin does not match Host. A
//     request with neither header (curl, scripts) is not a browser's and
//     passes; the programs' own session checks still apply to it. Browsers
//     send these headers themselves, so no per-session CSRF token is
//     needed for this.
//   - refuses reads another site asks for, which CrossOriginProtection lets
//     through: Sec-Fetch-Site: cross-site, or a foreign Origin (a fetch
//     from another origin). Another site may neither embed, fetch nor link
//     into the pages; a same-site navigation (no Origin) still passes.
//   - sets the security headers of every answer, refusals included: the
//     Content-Security-Policy, no framing, no MIME sniffing, the
//     Referrer-Policy, no caching outside the static files, and HSTS over
//     TLS.
package webguard

import (
	"net"
	"net/http"
	"strings"
)

// DefaultCSP is the Content-Security-Policy both programs send: their
// own scripts, styles, images and API only, forms posted to themselves,
// never framed, no inline script or style.
const DefaultCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Reason says why a request was refused.
type Reason int

const (
	// BadHost: the Host header names another server (DNS rebinding).
	BadHost Reason = iota + 1
	// CrossOrigin: the Origin header is another origin's.
	CrossOrigin
	// CrossSite: Sec-Fetch-Site says another site sent the request, and
	// there is no foreign Origin to tell more.
	CrossSite
)

func (r Reason) String() string {
	switch r {
	case BadHost:
		return "unexpected Host"
	case CrossOrigin:
		return "cross-origin"
	case CrossSite:
		return "cross-site"
	}
	return "unknown"
}

// Config is what differs between the programs.
type Config struct {
	// Hosts are the Host header values accepted besides the address the
	// connection came in on and localhost on its port, compared without
	// case: none for the agent (loopback only), the public name of the
	// hub, with its port when not the scheme's default.
	Hosts []string
	// CSP is the Content-Security-Policy of every answer (DefaultCSP when
	// empty).
	CSP string
	// Cacheable is a path prefix whose answers may be cached (the static
	// files); every other answer is sent "Cache-Control: no-store". Empty:
	// none may.
	Cacheable string
	// Deny answers a refused request, with the program's own text and
	// log line. Nil: a bare 403.
	Deny func(w http.ResponseWriter, r *http.Request, why Reason)
}

// Handler returns next behind the guard cfg describes.
func Handler(cfg Config, next http.Handler) http.Handler {
	if cfg.CSP == "" {
		cfg.CSP = DefaultCSP
	}
	if cfg.Deny == nil {
		cfg.Deny = func(w http.ResponseWriter, _ *http.Request, _ Reason) {
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		}
	}
	hosts := map[string]bool{}
	for _, h := range cfg.Hosts {
		hosts[strings.ToLower(h)] = true
	}
	// No trusted origin and no bypass: neither program takes writes from
	// another origin (the hub's bearer-token API is read-only).
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header(), r, cfg)
		switch {
		case !hostAllowed(r, hosts):
			cfg.Deny(w, r, BadHost)
		case cop.Check(r) != nil, crossSiteRead(r):
			why := CrossSite
			if foreignOrigin(r) {
				why = CrossOrigin
			}
			cfg.Deny(w, r, why)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func setHeaders(h http.Header, r *http.Request, cfg Config) {
	h.Set("Content-Security-Policy", cfg.CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer Chromium sends
	// "Origin: null" on form posts, which a browser without
	// Sec-Fetch-Site would then have refused as cross-origin.
	h.Set("Referrer-Policy", "same-origin")
	if cfg.Cacheable == "" || !strings.HasPrefix(r.URL.Path, cfg.Cacheable) {
		h.Set("Cache-Control", "no-store")
	}
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// hostAllowed accepts the configured names, the address the connection
// came in on, and localhost on its port.
func hostAllowed(r *http.Request, hosts map[string]bool) bool {
	host := strings.ToLower(r.Host)
	if hosts[host] {
		return true
	}
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || la == nil {
		return false
	}
	local := la.String()
	if host == local {
		return true
	}
	_, port, err := net.SplitHostPort(local)
	return err == nil && host == "localhost:"+port
}

// crossSiteRead reports a safe-method request (which CrossOriginProtection
// always lets through) sent by another site or another origin's script.
func crossSiteRead(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.Header.Get("Sec-Fetch-Site") == "cross-site" || foreignOrigin(r)
	}
	return false
}

// foreignOrigin reports an Origin header other than this server's own
// (scheme included; "null" is foreign).
func foreignOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o != "" && !strings.EqualFold(o, scheme+"://"+r.Host)
}
