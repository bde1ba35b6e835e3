package ui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// personalField is one filled identifying field, as the withdrawal
// confirmation lists it.
type personalField struct{ Label, Value string }

// filledPersonal lists the filled personal fields of b, in declaration
// order, with their French labels: read from the `personal` tags, the
// domain's one list of what identifies someone, so a field added there is
// announced here too.
func filledPersonal(b *domain.Beneficiary) []personalField {
	v := reflect.ValueOf(b).Elem()
	t := v.Type()
	var out []personalField
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Tag.Get("personal") != "true" || v.Field(i).IsZero() {
			continue
		}
		name := strings.Split(sf.Tag.Get("json"), ",")[0]
		out = append(out, personalField{Label: tr("f." + name), Value: fmt.Sprint(v.Field(i).Interface())})
	}
	return out
}

// withdrawView is the withdrawal confirmation page's data.
type withdrawView struct {
	ConsentID, BenefID, Person string
	Date, Mode                 string
	Finalites                  []string // the purposes withdrawn
	Already                    bool     // nothing left in force
	Eff                        domain.Effects
	Identity                   []personalField // erased with EraseIdentity
	ActivityNotes              int             // activities whose notes go
	Activities                 int
	Assessments                int
	Error                      string
}

// withdrawTarget loads the consent named by the path and checks the
// purposes asked for (none means all of them): done reports that they are
// withdrawn already (a second click on the confirmation). It has answered
// the request itself when ok is false.
func (s *Server) withdrawTarget(w http.ResponseWriter, r *http.Request, fins []string) (c *domain.Consent, done, ok bool) {
	id, err := ident.Parse(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return nil, false, false
	}
	it, err := s.cfg.Store.Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return nil, false, false
	}
	if s.lockedErr(w, r, err) {
		return nil, false, false
	}
	c, ok = it.Record.(*domain.Consent)
	if !ok || it.Deleted {
		http.NotFound(w, r)
		return nil, false, false
	}
	active := c.Active()
	done = len(active) == 0
	for _, f := range fins {
		// A purpose this consent never gave must not pass as "none",
		// which means all.
		if !slices.Contains(c.Finalites, f) {
			http.Error(w, tr("withdraw_bad_finalite"), http.StatusBadRequest)
			return nil, false, false
		}
		if !slices.Contains(active, f) {
			done = true
		}
	}
	return c, done, true
}

// getWithdraw is the step before a withdrawal: it says which purposes go,
// exactly what will be erased and what stays, that it cannot be undone,
// and offers to confirm (a POST) or cancel. Nothing is written.
func (s *Server) getWithdraw(w http.ResponseWriter, r *http.Request) {
	fins := r.URL.Query()["finalites"]
	c, done, ok := s.withdrawTarget(w, r, fins)
	if !ok {
		return
	}
	if done {
		s.renderWithdraw(w, r, http.StatusOK, &withdrawView{ConsentID: c.ID.String(), BenefID: c.Beneficiaire.String(), Already: true})
		return
	}
	v, err := s.withdrawPreview(r, c, fins)
	if s.lockedErr(w, r, err) {
		return
	}
	s.renderWithdraw(w, r, http.StatusOK, v)
}

func (s *Server) renderWithdraw(w http.ResponseWriter, r *http.Request, status int, v *withdrawView) {
	s.render(w, r, status, "withdraw", s.page(r, "title_withdraw", v))
}

// withdrawPreview works out what withdrawing fins (none: all) from c
// would erase, the way the store will (store.WithdrawConsent): on a copy
// of the consent, given what the person's other consents still give.
func (s *Server) withdrawPreview(r *http.Request, c *domain.Consent, fins []string) (*withdrawView, error) {
	ctx := r.Context()
	v := &withdrawView{ConsentID: c.ID.String(), BenefID: c.Beneficiaire.String(), Date: frDate(c.Date),
		Mode: domain.ModesConsentement.Label(c.Mode)}
	active := c.Active()
	v.Finalites = fins
	if len(fins) == 0 {
		v.Finalites = active
	}
	var b *domain.Beneficiary
	still := map[string]bool{}
	err := s.cfg.Store.List(ctx, "", false, func(it store.Item) error {
		switch rec := it.Record.(type) {
		case *domain.Beneficiary:
			if rec.ID == c.Beneficiaire {
				b = rec
			}
		case *domain.Consent:
			if rec.Beneficiaire == c.Beneficiaire && rec.ID != c.ID {
				for _, f := range rec.Active() {
					still[f] = true
				}
			}
		case *domain.Activity:
			if rec.Beneficiaire != nil && *rec.Beneficiaire == c.Beneficiaire {
				v.Activities++
				if rec.Notes != "" {
					v.ActivityNotes++
				}
			}
		case *domain.Assessment:
			if rec.Beneficiaire == c.Beneficiaire {
				v.Assessments++
			}
		}
		return nil
	})
	if err != nil {
		if _, ok := errors.AsType[*store.UnreadableError](err); !ok {
			return nil, err
		}
	}
	cp := *c
	cp.Finalites = slices.Clone(c.Finalites)
	cp.Retraits = slices.Clone(c.Retraits)
	v.Eff = cp.Withdraw(fins, "", still)
	v.Person = tr("anonymous_beneficiary")
	if b != nil {
		v.Person = displayName(b)
		if v.Eff.EraseIdentity {
			v.Identity = filledPersonal(b)
		}
	}
	return v, nil
}

// withdrawURL is the confirmation page of withdrawing fins from consent id.
func withdrawURL(id string, fins []string) string {
	u := "/consentements/" + id + "/retrait"
	if len(fins) > 0 {
		u += "?" + url.Values{"finalites": fins}.Encode()
	}
	return u
}

// The field the confirmation page's button sends: a withdrawal without it
// erases nothing.
const (
	withdrawConfirmField = "confirmer"
	withdrawConfirmValue = "oui"
)
