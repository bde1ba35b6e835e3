package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// A rendered create form is one record, whatever the browser does with
// it: a double-click on the submit button, Back then submit again, a
// request the browser gives up on while the server is saving. Each create
// form (activity, démarche, workshop, new beneficiary with its consent,
// consent given later, needs assessment) is rendered with a fresh UUIDv7
// in the hidden field form_id. It is the id of the record the form
// creates; the other records it may create with it (the anonymous person
// of an individual activity, the consent of a new followed person) get
// ids derived from it (formRecordID), so they are fixed by the render too.
// Validation errors render the form again with the same id.
//
// A submission whose id is already stored writes nothing: when the stored
// record is of the form's kind (and, for a consent or an assessment, of
// the same person), the answer is « … déjà enregistré(e) » and the stored
// record's page; otherwise the form is refused. Never writing through an
// id that exists is the safe choice: the id comes from the browser, and
// an update through it would let a crafted id (a beneficiary's id is in
// its page's address) overwrite another record's data, while a genuine
// resubmission has nothing left to write — its first submission stored
// it. The check and the save run under Server.createMu, so that two
// copies of one submission in flight cannot both find the id absent.
const formIDField = "form_id"

// saveTimeout bounds a save that the browser no longer waits for.
const saveTimeout = 30 * time.Second

// newFormID is the id a create form is rendered with.
func newFormID() string { return ident.New().String() }

// withFormID gives v, the values of a form being rendered for the first
// time, its fresh id.
func withFormID(v url.Values) url.Values {
	v.Set(formIDField, newFormID())
	return v
}

// formRecordID is the id of the record of role (e.g. "consentement") that
// the form fid creates besides its own.
func formRecordID(fid ident.ID, role string) ident.ID {
	return ident.Derive(fid.Time(), "numeribus agent/ui form", fid.String(), role)
}

// formIDOf returns the posted form's id. A missing or malformed one (a
// page from before an upgrade, a hand-made request) puts a general
// problem on f and gives it a fresh id, for the form to be shown again.
func formIDOf(f *form) (ident.ID, bool) {
	id, err := ident.Parse(f.Get(formIDField))
	if err == nil && id.Version() == 7 && !id.IsZero() {
		return id, true
	}
	f.V.Set(formIDField, newFormID())
	f.general(tr("form_id_bad"))
	return ident.Nil, false
}

// saveContext is the context of a request's writes: not cancelled when
// the browser goes away (a double-click aborts the first request; its
// save must still land, and the second request then finds it), but
// bounded.
func saveContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), saveTimeout)
}

// createOutcome is what createOnce did.
type createOutcome int

const (
	created       createOutcome = iota // recs are saved
	alreadyStored                      // the form was saved before: nothing written
	refused                            // problems are on f: show it again with status
)

// createOnce saves recs, the records of the form fid, unless that form was
// saved already. fresh lists the ids of the records the form creates,
// fid first; recs may also hold updates of existing records (the identity
// typed on a consent form). same tells whether the stored record fid is
// the one this form creates. On alreadyStored it returns that record.
func (s *Server) createOnce(ctx context.Context, r *http.Request, f *form, fresh []ident.ID, recs []domain.Record,
	prefixes []string, same func(domain.Record) bool) (createOutcome, int, domain.Record) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	for i, id := range fresh {
		it, err := s.cfg.Store.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			if errors.Is(err, store.ErrLocked) {
				f.general(tr("locked_api"))
			} else {
				s.log.Error("checking a form's id", "path", r.URL.Path, "err", err)
				f.general(tr("save_failed"))
			}
			return refused, http.StatusUnprocessableEntity, nil
		}
		if i == 0 && same(it.Record) {
			return alreadyStored, 0, it.Record
		}
		// The id names another record: a hand-made request, never a
		// rendered form. Nothing is written; a fresh id lets the person
		// save what the form holds.
		s.log.Warn("form refused: its id names another record", "path", r.URL.Path, "id", id.String())
		f.V.Set(formIDField, newFormID())
		f.general(tr("form_id_taken"))
		return refused, http.StatusConflict, nil
	}
	if !s.save(ctx, r, f, recs, prefixes) {
		return refused, http.StatusUnprocessableEntity, nil
	}
	return created, 0, nil
}
