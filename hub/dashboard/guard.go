package dashboard

import (
	"net"
	"net/http"
	"strings"
)

// guard refuses requests addressed to another name (DNS rebinding: a
// hostile name resolving to the hub carries its own Host) and cross-
// origin requests (another site posting a form to the hub), and sets
// the security headers of every answer.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r) {
			s.log.Warn("dashboard request refused: unexpected Host", "path", r.URL.Path)
			http.Error(w, tr("bad_host"), http.StatusForbidden)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, scheme(r)+"://"+r.Host) {
			s.log.Warn("dashboard request refused: cross-origin", "path", r.URL.Path)
			http.Error(w, tr("bad_origin"), http.StatusForbidden)
			return
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			http.Error(w, tr("bad_origin"), http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin, not no-referrer: with no-referrer Chromium sends
		// "Origin: null" on form posts, which the check above refuses.
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// hostAllowed accepts the configured public names, the address the
// connection came in on, and localhost on its port.
func (s *Server) hostAllowed(r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if s.hosts[host] {
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
	return err == nil && (host == "localhost:"+port)
}

// clientIP is the address the request came from, for the rate limiter
// and the audit log. The hub is reached directly (it terminates TLS
// itself), so forwarded headers, which anyone can forge, are ignored.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
