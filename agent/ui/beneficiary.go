package ui

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// benefView is a beneficiary as lists and pages show it.
type benefView struct {
	ID, Name, Commune string
	Identified        bool
	B                 *domain.Beneficiary
}

func (s *Server) benefView(b *domain.Beneficiary) benefView {
	v := benefView{ID: b.ID.String(), Name: displayName(b), Identified: b.Identified(), B: b}
	if b.Commune != "" {
		v.Commune = s.communeName(b.Commune)
	}
	return v
}

// getSearch shows the search form and, at /beneficiaires?resultats, the
// results of the session's last search: reloading them, or coming Back
// from a person's page, asks the browser to resubmit nothing.
func (s *Server) getSearch(w http.ResponseWriter, r *http.Request) {
	q := ""
	if _, ok := r.URL.Query()["resultats"]; ok {
		q = s.lastSearch(sessionOf(r))
	}
	if q == "" {
		p := s.page(r, "title_search", map[string]any{})
		p.Form = newForm(nil)
		s.render(w, r, http.StatusOK, "search", p)
		return
	}
	var found []benefView
	err := s.cfg.Store.SearchNames(r.Context(), q, func(it store.Item) error {
		found = append(found, s.benefView(it.Record.(*domain.Beneficiary)))
		return nil
	})
	if s.lockedErr(w, r, err) {
		return
	}
	slices.SortFunc(found, func(a, b benefView) int { return strings.Compare(a.Name, b.Name) })
	p := s.page(r, "title_search", map[string]any{"Results": found, "Searched": true})
	p.Form = newForm(url.Values{"q": {q}})
	s.render(w, r, http.StatusOK, "search", p)
}

// postSearch finds followed beneficiaries by name, compared accent- and
// case-folded: the names are sealed, the store's in-memory index finds
// them (store.SearchNames). The query comes in a POST body so that no name
// lands in a URL; it is kept in the session (in memory, dropped at the
// lock) and the answer redirects to the results (post-redirect-get).
func (s *Server) postSearch(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.PostFormValue("q"))
	if q == "" {
		http.Redirect(w, r, "/beneficiaires", http.StatusSeeOther)
		return
	}
	s.setLastSearch(sessionOf(r), q)
	http.Redirect(w, r, "/beneficiaires?resultats", http.StatusSeeOther)
}

func (s *Server) getBeneficiary(w http.ResponseWriter, r *http.Request) {
	v := withFormID(url.Values{})
	if r.URL.Query().Get("suivi") == "1" {
		// The date is offered; no purpose nor mode is: consent is an
		// act of the person, never a box left ticked.
		v.Set("suivi", "1")
		v.Set("consent.date", frDate(s.today()))
	}
	s.renderBeneficiary(w, r, http.StatusOK, newForm(v))
}

func (s *Server) renderBeneficiary(w http.ResponseWriter, r *http.Request, status int, f *form) {
	key := "title_beneficiary_anon"
	if f.Get("suivi") == "1" {
		key = "title_beneficiary_suivi"
	}
	p := s.page(r, key, map[string]any{"Suivi": f.Get("suivi") == "1"})
	p.Form = f
	s.render(w, r, status, "beneficiary", p)
}

// postBeneficiary saves a beneficiary; in the followed flow, with the
// consent given on the same screen, both in one transaction so that
// identity never exists without its consent.
func (s *Server) postBeneficiary(w http.ResponseWriter, r *http.Request) {
	v := r.PostForm
	f := newForm(v)
	fid, ok := formIDOf(f)
	if !ok {
		s.renderBeneficiary(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	var ps []domain.Problem
	b := &domain.Beneficiary{ID: fid, Commune: resolveCommune(s.terr, v.Get("commune")),
		Genre: v.Get("genre"), TrancheAge: v.Get("tranche_age"), StatutSocial: v.Get("statut_social"),
		Publics: v["publics"], Equipement: v.Get("equipement"), AccesInternet: v.Get("acces_internet")}
	recs := []domain.Record{b}
	prefixes := []string{""}
	fresh := []ident.ID{fid}
	if v.Get("suivi") == "1" {
		b.Prenom, b.Nom, b.Telephone = v.Get("prenom"), v.Get("nom"), v.Get("telephone")
		b.Email, b.Adresse, b.Notes = v.Get("email"), v.Get("adresse"), v.Get("notes")
		b.AnneeNaissance = intField(v, "annee_naissance", &ps)
		c := &domain.Consent{ID: formRecordID(fid, "consentement"), Beneficiaire: b.ID, Finalites: v["consent.finalites"],
			Mode: v.Get("consent.mode"), Date: v.Get("consent.date"), TexteVersion: ConsentTextVersion}
		recs = append(recs, c)
		prefixes = append(prefixes, "consent.")
		fresh = append(fresh, c.ID)
	}
	if len(ps) > 0 {
		f.addProblems("", ps)
		s.renderBeneficiary(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	ctx, cancel := saveContext(r)
	defer cancel()
	out, status, _ := s.createOnce(ctx, r, f, fresh, recs, prefixes, func(rec domain.Record) bool {
		_, ok := rec.(*domain.Beneficiary)
		return ok
	})
	switch out {
	case refused:
		s.renderBeneficiary(w, r, status, f)
		return
	case alreadyStored:
		s.setFlash(sessionOf(r), tr("beneficiary_already"))
		http.Redirect(w, r, "/beneficiaires/"+b.ID.String(), http.StatusSeeOther)
		return
	}
	s.setFlash(sessionOf(r), tr("beneficiary_saved"))
	http.Redirect(w, r, "/beneficiaires/"+b.ID.String(), http.StatusSeeOther)
}

// consentView is one consent on a beneficiary's page.
type consentView struct {
	ID, Date, Mode, RetireLe, TexteVersion string
	Active, Withdrawn                      []string
}

type activityView struct {
	Date, Type, Themes string
	Duree              int
}

type assessmentView struct {
	Date      string
	Domaines  []string // "Domaine : niveau"
	Autonomie string
}

func (s *Server) getBeneficiaryPage(w http.ResponseWriter, r *http.Request) {
	id, err := ident.Parse(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctx := r.Context()
	it, err := s.cfg.Store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if s.lockedErr(w, r, err) {
		return
	}
	b, ok := it.Record.(*domain.Beneficiary)
	if !ok || it.Deleted {
		http.NotFound(w, r)
		return
	}
	var consents []consentView
	var acts []activityView
	var assess []assessmentView
	diag := false
	err = s.cfg.Store.Related(ctx, id, func(it store.Item) error {
		switch rec := it.Record.(type) {
		case *domain.Consent:
			if rec.Beneficiaire != id {
				return nil
			}
			cv := consentView{ID: rec.ID.String(), Date: frDate(rec.Date), Mode: rec.Mode, RetireLe: frDate(rec.RetireLe),
				TexteVersion: rec.TexteVersion, Active: rec.Active(), Withdrawn: rec.Retraits}
			if slices.Contains(cv.Active, domain.FinaliteDiagnostic) {
				diag = true
			}
			consents = append(consents, cv)
		case *domain.Activity:
			if (rec.Beneficiaire == nil || *rec.Beneficiaire != id) && !attendedBy(rec, id) {
				return nil
			}
			themes := make([]string, len(rec.Thematiques))
			for i, t := range rec.Thematiques {
				themes[i] = domain.Thematiques.Label(t)
			}
			acts = append(acts, activityView{Date: rec.Date, Type: activityLabel(rec), Duree: rec.Duree, Themes: strings.Join(themes, ", ")})
		case *domain.Assessment:
			if rec.Beneficiaire != id {
				return nil
			}
			av := assessmentView{Date: rec.Date, Autonomie: domain.Autonomies.Label(rec.AutonomieGlobale)}
			for _, d := range domain.DomainesCRCN.Codes {
				if lv, ok := rec.Domaines[d.Code]; ok {
					av.Domaines = append(av.Domaines, d.Label+" : "+domain.NiveauxCRCN.Label(lv))
				}
			}
			assess = append(assess, av)
		}
		return nil
	})
	if s.lockedErr(w, r, err) {
		return
	}
	// Newest first; dates shown as JJ/MM/AAAA.
	slices.SortFunc(acts, func(a, b activityView) int { return strings.Compare(b.Date, a.Date) })
	slices.SortFunc(assess, func(a, b assessmentView) int { return strings.Compare(b.Date, a.Date) })
	for i := range acts {
		acts[i].Date = frDate(acts[i].Date)
	}
	for i := range assess {
		assess[i].Date = frDate(assess[i].Date)
	}
	workshops, err := s.todaysWorkshops(ctx, id)
	if s.lockedErr(w, r, err) {
		return
	}
	p := s.page(r, "title_beneficiary_page", map[string]any{"B": s.benefView(b), "Erased": it.Erased,
		"Consents": consents, "Activities": acts, "Assessments": assess, "CanDiagnose": diag, "Workshops": workshops})
	s.render(w, r, http.StatusOK, "beneficiary_page", p)
}

// postWithdraw withdraws a consent (the purposes ticked, or all) today and
// erases what it covered; the page then tells what was erased. Only the
// confirmation page's button (confirmer=oui) does it: any other post (a
// person's page from before the confirmation step, a hand-made request)
// lands on that page, with nothing erased.
func (s *Server) postWithdraw(w http.ResponseWriter, r *http.Request) {
	fins := r.PostForm["finalites"]
	c, done, ok := s.withdrawTarget(w, r, fins)
	if !ok {
		return
	}
	if done {
		s.setFlash(sessionOf(r), tr("withdraw_already_done"))
		http.Redirect(w, r, "/beneficiaires/"+c.Beneficiaire.String(), http.StatusSeeOther)
		return
	}
	if r.PostFormValue(withdrawConfirmField) != withdrawConfirmValue {
		s.setFlash(sessionOf(r), tr("withdraw_unconfirmed"))
		http.Redirect(w, r, withdrawURL(c.ID.String(), fins), http.StatusSeeOther)
		return
	}
	wctx, cancel := saveContext(r)
	defer cancel()
	eff, err := s.cfg.Store.WithdrawConsent(wctx, c.ID, fins, s.today())
	if err != nil {
		var ve *domain.ValidationError
		if errors.As(err, &ve) {
			s.setFlash(sessionOf(r), tr("withdraw_failed"))
		} else if s.lockedErr(w, r, err) {
			return
		}
	} else {
		msg := tr("withdraw_done")
		if eff.EraseIdentity {
			msg += " " + tr("withdraw_identity_erased")
		}
		if eff.EraseAssessments {
			msg += " " + tr("withdraw_assessments_erased")
		}
		if !eff.EraseIdentity && !eff.EraseAssessments {
			msg += " " + tr("withdraw_nothing_erased")
		}
		s.setFlash(sessionOf(r), msg)
	}
	http.Redirect(w, r, "/beneficiaires/"+c.Beneficiaire.String(), http.StatusSeeOther)
}

func (s *Server) getAssessment(w http.ResponseWriter, r *http.Request) {
	b, ok := s.beneficiaryOf(w, r)
	if !ok {
		return
	}
	v := withFormID(url.Values{"date": {frDate(s.today())}})
	for _, d := range domain.DomainesCRCN.Codes {
		v.Set("domaines."+d.Code, "non_evalue")
	}
	s.renderAssessment(w, r, http.StatusOK, b, newForm(v))
}

func (s *Server) renderAssessment(w http.ResponseWriter, r *http.Request, status int, b *domain.Beneficiary, f *form) {
	p := s.page(r, "title_assessment", map[string]any{"B": s.benefView(b)})
	p.Form = f
	s.render(w, r, status, "assessment", p)
}

func (s *Server) postAssessment(w http.ResponseWriter, r *http.Request) {
	b, ok := s.beneficiaryOf(w, r)
	if !ok {
		return
	}
	v := r.PostForm
	f := newForm(v)
	fid, ok := formIDOf(f)
	if !ok {
		s.renderAssessment(w, r, http.StatusUnprocessableEntity, b, f)
		return
	}
	a := &domain.Assessment{ID: fid, Beneficiaire: b.ID, Date: v.Get("date"), Domaines: map[string]string{},
		AutonomieGlobale: v.Get("autonomie_globale"), Besoins: v["besoins"], Equipement: v.Get("equipement"),
		AccesInternet: v.Get("acces_internet"), Outil: v.Get("outil"), Commentaire: v.Get("commentaire"), Commune: b.Commune}
	for _, d := range domain.DomainesCRCN.Codes {
		if lv := v.Get("domaines." + d.Code); lv != "" {
			a.Domaines[d.Code] = lv
		}
	}
	ctx, cancel := saveContext(r)
	defer cancel()
	out, status, _ := s.createOnce(ctx, r, f, []ident.ID{fid}, []domain.Record{a}, []string{""}, func(rec domain.Record) bool {
		st, ok := rec.(*domain.Assessment)
		return ok && st.Beneficiaire == b.ID
	})
	switch out {
	case refused:
		s.renderAssessment(w, r, status, b, f)
		return
	case alreadyStored:
		s.setFlash(sessionOf(r), tr("assessment_already"))
		http.Redirect(w, r, "/beneficiaires/"+b.ID.String(), http.StatusSeeOther)
		return
	}
	s.setFlash(sessionOf(r), tr("assessment_saved"))
	http.Redirect(w, r, "/beneficiaires/"+b.ID.String(), http.StatusSeeOther)
}

// beneficiaryOf returns the live beneficiary named by the path's {id},
// having answered the request itself when there is none.
func (s *Server) beneficiaryOf(w http.ResponseWriter, r *http.Request) (*domain.Beneficiary, bool) {
	id, err := ident.Parse(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return nil, false
	}
	it, err := s.cfg.Store.Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return nil, false
	}
	if s.lockedErr(w, r, err) {
		return nil, false
	}
	b, ok := it.Record.(*domain.Beneficiary)
	if !ok || it.Deleted {
		http.NotFound(w, r)
		return nil, false
	}
	return b, true
}

// getConsent shows the consent screen for a person already recorded —
// anonymously at a first visit, or followed for other purposes — who
// agrees later to be followed by name or to a needs assessment.
func (s *Server) getConsent(w http.ResponseWriter, r *http.Request) {
	b, ok := s.beneficiaryOf(w, r)
	if !ok {
		return
	}
	// The date is offered; no purpose nor mode is (see getBeneficiary).
	v := withFormID(url.Values{"consent.date": {frDate(s.today())}})
	for name, val := range map[string]string{"prenom": b.Prenom, "nom": b.Nom, "telephone": b.Telephone,
		"email": b.Email, "adresse": b.Adresse, "notes": b.Notes} {
		if val != "" {
			v.Set(name, val)
		}
	}
	if b.AnneeNaissance != 0 {
		v.Set("annee_naissance", strconv.Itoa(b.AnneeNaissance))
	}
	s.renderConsent(w, r, http.StatusOK, b, newForm(v))
}

func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, status int, b *domain.Beneficiary, f *form) {
	p := s.page(r, "title_consent_later", map[string]any{"B": s.benefView(b)})
	p.Form = f
	s.render(w, r, status, "consent", p)
}

// postConsent records the consent and, when it covers follow-up by name,
// the identity typed on the same screen — in one transaction, so that
// identity never exists without its consent. Without suivi_nominatif the
// identity fields are ignored, never stored.
func (s *Server) postConsent(w http.ResponseWriter, r *http.Request) {
	b, ok := s.beneficiaryOf(w, r)
	if !ok {
		return
	}
	v := r.PostForm
	f := newForm(v)
	fid, ok := formIDOf(f)
	if !ok {
		s.renderConsent(w, r, http.StatusUnprocessableEntity, b, f)
		return
	}
	c := &domain.Consent{ID: fid, Beneficiaire: b.ID, Finalites: v["consent.finalites"],
		Mode: v.Get("consent.mode"), Date: v.Get("consent.date"), TexteVersion: ConsentTextVersion}
	recs := []domain.Record{c}
	prefixes := []string{"consent."}
	var ps []domain.Problem
	if slices.Contains(c.Finalites, domain.FinaliteSuivi) {
		nb := *b
		nb.Prenom, nb.Nom, nb.Telephone = v.Get("prenom"), v.Get("nom"), v.Get("telephone")
		nb.Email, nb.Adresse, nb.Notes = v.Get("email"), v.Get("adresse"), v.Get("notes")
		nb.AnneeNaissance = intField(v, "annee_naissance", &ps)
		recs = []domain.Record{&nb, c}
		prefixes = []string{"", "consent."}
	}
	if len(ps) > 0 {
		f.addProblems("", ps)
		s.renderConsent(w, r, http.StatusUnprocessableEntity, b, f)
		return
	}
	ctx, cancel := saveContext(r)
	defer cancel()
	out, status, _ := s.createOnce(ctx, r, f, []ident.ID{fid}, recs, prefixes, func(rec domain.Record) bool {
		st, ok := rec.(*domain.Consent)
		return ok && st.Beneficiaire == b.ID
	})
	switch out {
	case refused:
		s.renderConsent(w, r, status, b, f)
		return
	case alreadyStored:
		s.setFlash(sessionOf(r), tr("consent_already"))
		http.Redirect(w, r, "/beneficiaires/"+b.ID.String(), http.StatusSeeOther)
		return
	}
	s.setFlash(sessionOf(r), tr("consent_saved"))
	http.Redirect(w, r, "/beneficiaires/"+b.ID.String(), http.StatusSeeOther)
}
