package dashboard

import (
	"net"
	"net/http"

	"numeribus/internal/webguard"
)

// guard refuses requests addressed to another name (DNS rebinding: a
// hostile name resolving to the hub carries its own Host) and cross-
// origin requests (another site posting a form to the hub), and sets
// the security headers of every answer (internal/webguard). The names
// accepted are Config.Hosts, the address the connection came in on and
// localhost on its port; the static files may be cached.
func (s *Server) guard(next http.Handler) http.Handler {
	return webguard.Handler(webguard.Config{Hosts: s.cfg.Hosts, Cacheable: "/static/", Deny: s.denied}, next)
}

// denied answers a request the guard refused.
func (s *Server) denied(w http.ResponseWriter, r *http.Request, why webguard.Reason) {
	switch why {
	case webguard.BadHost:
		s.log.Warn("dashboard request refused: unexpected Host", "path", r.URL.Path)
		http.Error(w, tr("bad_host"), http.StatusForbidden)
	case webguard.CrossOrigin:
		s.log.Warn("dashboard request refused: cross-origin", "path", r.URL.Path)
		http.Error(w, tr("bad_origin"), http.StatusForbidden)
	default:
		http.Error(w, tr("bad_origin"), http.StatusForbidden)
	}
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
