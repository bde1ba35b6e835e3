package ui

import (
	"errors"
	"net/http"
	"strings"

	"numeribus/agent/store"
	"numeribus/internal/access"
	"numeribus/internal/ident"
	"numeribus/internal/webguard"
)

// accessCSP is the UI's policy with the access document's inline style
// sheet allowed, by its hash: the document stands alone once saved.
var accessCSP = strings.Replace(webguard.DefaultCSP, "style-src 'self'", "style-src 'self' "+access.StyleHash, 1)

// getAccess shows everything this laptop holds about one person, for
// their right of access (internal/access): a document of its own, to
// print or save (« Enregistrer sous » gives it its name), opened in a new
// tab from the person's page.
func (s *Server) getAccess(w http.ResponseWriter, r *http.Request) {
	id, err := ident.Parse(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	d, err := s.cfg.Store.Dossier(r.Context(), id, s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if s.lockedErr(w, r, err) {
		return
	}
	if d.Beneficiary == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", accessCSP)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Disposition", `inline; filename="`+access.FileName(id, "html")+`"`)
	if err := access.WriteHTML(w, d); err != nil {
		s.log.Warn("writing an access document", "err", err)
	}
}
