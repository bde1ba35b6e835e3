package ui

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"numeribus/agent/store"
)

// Nothing typed is lost at a lock. A create form the mediator was filling
// when the agent locked — posted after the lock, or sent by app.js as the
// auto-lock leaves the page — is kept as a draft, sealed by the store
// (store.SaveDraft: never in clear on the disk), and offered back after
// the unlock: the form comes back filled, with its form id, so that saving
// it makes the one record it was always going to be.

// draftForms are the addresses of the forms a draft may come from.
var draftForms = regexp.MustCompile(`^/(activites/nouvelle|beneficiaires/nouveau|beneficiaires/[0-9a-f-]{36}/(diagnostic|consentement))$`)

// draftParam is the query parameter that asks a form page for a draft.
const draftParam = "brouillon"

type draftCtxKey struct{}

// keepDraft keeps the posted form of r as a draft; it reports whether it
// did. Fields that are not the mediator's typing are left out.
func (s *Server) keepDraft(r *http.Request, form string) bool {
	if !draftForms.MatchString(form) {
		return false
	}
	v := maps.Clone(r.PostForm)
	delete(v, "_form")
	if len(v) == 0 {
		return false
	}
	// WithoutCancel: the browser leaving the page must not lose it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.cfg.Store.SaveDraft(ctx, form, v, s.cfg.Now()); err != nil {
		s.log.Warn("a form could not be kept as a draft", "form", form, "err", err)
		return false
	}
	s.log.Info("form kept as a draft at a lock", "form", form)
	return true
}

// postDraft is where app.js sends the form on screen as the auto-lock
// leaves the page. It needs no unlock: the draft is sealed to a key the
// locked store holds in public form only.
func (s *Server) postDraft(w http.ResponseWriter, r *http.Request) {
	if !s.keepDraft(r, r.PostForm.Get("_form")) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	s.setFlash(sessionOf(r), tr("draft_kept"))
	w.WriteHeader(http.StatusNoContent)
}

// draftView is a draft in the list.
type draftView struct {
	ID     int64
	What   string
	When   string
	Resume string
}

// getDrafts lists the drafts kept at locks, to resume or abandon.
func (s *Server) getDrafts(w http.ResponseWriter, r *http.Request) {
	ds, err := s.cfg.Store.Drafts(r.Context())
	if s.lockedErr(w, r, err) {
		return
	}
	views := make([]draftView, 0, len(ds))
	for _, d := range ds {
		views = append(views, draftView{ID: d.ID, What: draftLabel(d), When: d.Created.In(time.Local).Format("02/01/2006 15:04"), Resume: resumeURL(d)})
	}
	s.render(w, r, http.StatusOK, "drafts", s.page(r, "title_drafts", map[string]any{"Drafts": views}))
}

// postAbandonDraft deletes a draft the mediator does not want back.
func (s *Server) postAbandonDraft(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if err := s.cfg.Store.DeleteDraft(r.Context(), id); s.lockedErr(w, r, err) {
		return
	}
	s.setFlash(sessionOf(r), tr("draft_abandoned"))
	http.Redirect(w, r, "/brouillons", http.StatusSeeOther)
}

func draftLabel(d store.Draft) string {
	switch {
	case d.Form == "/activites/nouvelle":
		return tr("draft_activity_" + flowOf(first(d.Values["flow"])))
	case d.Form == "/beneficiaires/nouveau":
		return tr("draft_beneficiary")
	case len(d.Form) > 11 && d.Form[len(d.Form)-11:] == "/diagnostic":
		return tr("draft_assessment")
	}
	return tr("draft_consent")
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// resumeURL is the form page that takes the draft back.
func resumeURL(d store.Draft) string {
	q := url.Values{draftParam: {strconv.FormatInt(d.ID, 10)}}
	if d.Form == "/activites/nouvelle" {
		q.Set("type", flowOf(first(d.Values["flow"])))
	}
	return d.Form + "?" + q.Encode()
}

// takeDraft, for a form page asked for a draft, takes it (it is deleted)
// and returns r carrying its fields for render.
func (s *Server) takeDraft(r *http.Request) *http.Request {
	raw := r.URL.Query().Get(draftParam)
	if raw == "" || !draftForms.MatchString(r.URL.Path) {
		return r
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return r
	}
	ds, err := s.cfg.Store.Drafts(r.Context())
	if err != nil {
		return r
	}
	i := slices.IndexFunc(ds, func(d store.Draft) bool { return d.ID == id && d.Form == r.URL.Path })
	if i < 0 {
		return r
	}
	if err := s.cfg.Store.DeleteDraft(r.Context(), id); err != nil && !errors.Is(err, store.ErrLocked) {
		s.log.Warn("deleting a draft taken back", "err", err)
	}
	s.setFlash(sessionOf(r), tr("draft_resumed"))
	return r.WithContext(context.WithValue(r.Context(), draftCtxKey{}, url.Values(ds[i].Values)))
}

// draftOf returns the fields of the draft r carries, if any.
func draftOf(r *http.Request) url.Values {
	v, _ := r.Context().Value(draftCtxKey{}).(url.Values)
	return v
}

// hasDrafts reports whether drafts wait to be taken back.
func (s *Server) hasDrafts(ctx context.Context) bool {
	ds, err := s.cfg.Store.Drafts(ctx)
	return err == nil && len(ds) > 0
}
