package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"numeribus/agent/store"
	"numeribus/internal/apperr"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// communeJSON is one autocomplete answer of /api/communes.
type communeJSON struct {
	Code         string   `json:"code"`
	Nom          string   `json:"nom"`
	Departement  string   `json:"departement"`
	CodesPostaux []string `json:"codes_postaux,omitempty"`
}

func (s *Server) apiCommunes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if len(q) > 100 {
		q = q[:100]
	}
	out := []communeJSON{}
	for _, c := range s.terr.Search(q, 10) {
		out = append(out, communeJSON{Code: c.Code, Nom: c.Nom, Departement: c.Departement, CodesPostaux: c.CodesPostaux})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"locked": false, "sync": s.syncView(r)})
}

// apiPing marks user activity (typing in a long form) so that the
// auto-lock counts it; the session gate has already done so.
func (s *Server) apiPing(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}

// apiActivities records one activity given as JSON (the record's JSON
// form, shared/DOMAIN.md field names), with the same validation as the
// form: 201 {"id"}, or 422 {"error":"invalid","problems":[…]}.
func (s *Server) apiActivities(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": string(apperr.Usage), "message": tr("api_json_only")})
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4*domain.MaxRecordText))
	dec.DisallowUnknownFields()
	var a domain.Activity
	if err := dec.Decode(&a); err != nil {
		writeJSON(w, apperr.Usage.Status(), map[string]string{"error": string(apperr.Usage), "message": tr("api_bad_json")})
		return
	}
	a.ID = ident.New() // the API creates; it never overwrites a record
	_, err := s.cfg.Store.Save(r.Context(), &a)
	if err != nil {
		s.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": a.ID.String()})
}

// apiError answers a failed API call: the status from apperr's table,
// the code as "error", and the problems of an invalid record or a French
// message.
func (s *Server) apiError(w http.ResponseWriter, err error) {
	code := apperr.CodeOf(err)
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		writeJSON(w, code.Status(), map[string]any{"error": code, "problems": ve.Problems})
	case code == apperr.Locked:
		writeJSON(w, code.Status(), map[string]any{"error": code, "message": tr("locked_api")})
	case errors.Is(err, store.ErrDiskLow):
		msg, _ := diskRefused(err)
		writeJSON(w, code.Status(), map[string]any{"error": code, "message": msg})
	default:
		s.log.Error("api save failed", "err", err)
		writeJSON(w, apperr.Internal.Status(), map[string]any{"error": apperr.Internal, "message": tr("internal_error")})
	}
}
