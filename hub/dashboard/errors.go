package dashboard

import (
	"net/http"
	"net/url"
	"strings"
)

// errorData is what the error page shows: what happened, and the ways
// back — the page the reader came from (when it is one of the hub's),
// the overview, or the login for a reader without a session.
type errorData struct {
	Status  int
	Message string
	Back    string // a path of this hub the reader came from, or ""
	Home    string // /apercu, or /login without a session
}

// errorPage answers a page request that cannot be served (403, 404, 400,
// 413, 500, 503) with a page in the dashboard's layout — its navigation
// when the reader is logged in — that says why and offers a way back,
// rather than bare text. The API keeps its JSON errors.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	title := "title_error"
	switch status {
	case http.StatusNotFound:
		title = "title_not_found"
	case http.StatusForbidden:
		title = "title_forbidden"
	}
	d := errorData{Status: status, Message: msg, Back: sameSiteReferer(r), Home: "/apercu"}
	p := &page{Title: tr(title), Path: r.URL.Path, Data: d}
	if wh := whoOf(r); wh != nil {
		p.User = &wh.user
	} else if wh, err := s.authenticate(r); err == nil && wh != nil {
		p.User = &wh.user
	} else {
		d.Home = "/login"
		p.Data = d
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, status, "error", p)
}

// sameSiteReferer returns the path (and query) of the Referer when it is
// a page of this hub other than the one refused: a link back that cannot
// lead elsewhere.
func sameSiteReferer(r *http.Request) string {
	ref, err := url.Parse(r.Referer())
	if err != nil || ref.Host != r.Host || ref.User != nil {
		return ""
	}
	p := ref.RequestURI()
	if p == r.URL.RequestURI() || safeNext(p) == "" {
		return ""
	}
	if strings.ContainsAny(p, "\r\n") {
		return ""
	}
	return p
}
