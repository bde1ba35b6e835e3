package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// today returns the local date, ISO.
func (s *Server) today() string { return s.cfg.Now().Format(domain.DateLayout) }

// stopView is a tour stop of today's page.
type stopView struct {
	ID                          string
	Vehicule, Lieu, CommuneName string
	HeureDebut, HeureFin        string
}

func (s *Server) getToday(w http.ResponseWriter, r *http.Request) {
	today := s.today()
	var stops []stopView
	err := s.cfg.Store.List(r.Context(), domain.KindTourStop, false, func(it store.Item) error {
		st := it.Record.(*domain.TourStop)
		if st.Date == today {
			stops = append(stops, stopView{ID: st.ID.String(), Vehicule: st.Vehicule, Lieu: st.Lieu,
				CommuneName: s.communeName(st.Commune), HeureDebut: st.HeureDebut, HeureFin: st.HeureFin})
		}
		return nil
	})
	if s.lockedErr(w, r, err) {
		return
	}
	slices.SortFunc(stops, func(a, b stopView) int { return strings.Compare(a.HeureDebut, b.HeureDebut) })
	s.render(w, r, http.StatusOK, "today", s.page(r, "title_today", map[string]any{"Stops": stops, "Date": frDate(today)}))
}

// lockedErr handles a store error: locked → back to /unlock; other → 500.
// It reports whether the request is answered.
func (s *Server) lockedErr(w http.ResponseWriter, r *http.Request, err error) bool {
	if _, ok := errors.AsType[*store.UnreadableError](err); err == nil || ok {
		// Records that do not decode were skipped and logged by the
		// store: the page shows the others.
		return false
	}
	if errors.Is(err, store.ErrLocked) {
		http.Redirect(w, r, "/unlock", http.StatusSeeOther)
		return true
	}
	s.fail(w, r, err)
	return true
}

func (s *Server) communeName(code string) string {
	if c, ok := s.terr.Commune(code); ok {
		return c.Nom + " (" + c.Departement + ")"
	}
	return code
}

// activityData is the activity page's own data.
type activityData struct {
	Flow        string // individuel, collectif or demarche
	Beneficiary string // display name of a followed beneficiary, if any
	CommuneName string
	Stop        string // the tour stop the activity is tied to: place — commune
}

// activityLabel names an activity as the mediator recorded it: a
// démarche is an individual session about administrative procedures.
func activityLabel(a *domain.Activity) string {
	if a.Type == "individuel" && (len(a.Demarches) > 0 || slices.Contains(a.Thematiques, domain.ThemeDemarches)) {
		return tr("title_activity_demarche")
	}
	return domain.TypesActivite.Label(a.Type)
}

func flowOf(v string) string {
	switch v {
	case "collectif", "demarche":
		return v
	}
	return "individuel"
}

func (s *Server) getActivity(w http.ResponseWriter, r *http.Request) {
	if v := draftOf(r); v != nil { // taken back after a lock (draft.go)
		s.renderActivity(w, r, http.StatusOK, newForm(v))
		return
	}
	q := r.URL.Query()
	flow := flowOf(q.Get("type"))
	v := withFormID(url.Values{"flow": {flow}, "date": {frDate(s.today())}, "type_lieu": {"lieu_activite"}})
	if veh, med := s.crew(sessionOf(r)); veh != "" || med != "" {
		v.Set("vehicule", veh)
		v.Set("mediateur", med)
	}
	// The stop: the one the link names, or else the one the session is
	// at today (a démarche started from a person's page found at the
	// stop belongs to it too).
	stopID, err := ident.Parse(q.Get("arret"))
	fromLink := err == nil
	if !fromLink {
		stopID, _ = ident.Parse(s.currentStop(sessionOf(r)))
	}
	if !stopID.IsZero() {
		it, err := s.cfg.Store.Get(r.Context(), stopID)
		if errors.Is(err, store.ErrLocked) {
			http.Redirect(w, r, "/unlock", http.StatusSeeOther)
			return
		}
		if st, ok := it.Record.(*domain.TourStop); err == nil && ok && (fromLink || st.Date == s.today()) {
			v.Set("arret", st.ID.String())
			if st.Vehicule != "" {
				v.Set("vehicule", st.Vehicule)
			}
			v.Set("commune", st.Commune)
			v.Set("date", frDate(st.Date))
			s.setCurrentStop(sessionOf(r), st.ID.String())
		}
	}
	if id, err := ident.Parse(q.Get("beneficiaire")); err == nil && flow != "collectif" {
		v.Set("beneficiaire", id.String())
	}
	s.renderActivity(w, r, http.StatusOK, newForm(v))
}

func (s *Server) renderActivity(w http.ResponseWriter, r *http.Request, status int, f *form) {
	d := activityData{Flow: flowOf(f.Get("flow"))}
	if id, err := ident.Parse(f.Get("beneficiaire")); err == nil {
		if it, err := s.cfg.Store.Get(r.Context(), id); err == nil {
			if b, ok := it.Record.(*domain.Beneficiary); ok {
				d.Beneficiary = displayName(b)
			}
		}
	}
	if c, ok := s.terr.Commune(f.Get("commune")); ok {
		d.CommuneName = c.Nom + " (" + c.Departement + ")"
	}
	if id, err := ident.Parse(f.Get("arret")); err == nil {
		if it, err := s.cfg.Store.Get(r.Context(), id); err == nil {
			if st, ok := it.Record.(*domain.TourStop); ok {
				d.Stop = st.Lieu + " — " + s.communeName(st.Commune)
			}
		}
	}
	p := s.page(r, "title_activity_"+d.Flow, d)
	p.Form = f
	s.render(w, r, status, "activity", p)
}

func (s *Server) postActivity(w http.ResponseWriter, r *http.Request) {
	v := r.PostForm
	if v.Get("sans_arret") == "1" {
		// Not at the stop after all: the activity is tied to none, and
		// the next ones neither.
		v.Del("arret")
		v.Del("sans_arret")
		s.setCurrentStop(sessionOf(r), "")
	}
	f := newForm(v)
	fid, ok := formIDOf(f)
	if !ok {
		s.renderActivity(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	recs, prefixes, local := buildActivity(s.terr, fid, v, s.today())
	if len(local) > 0 {
		f.addProblems("", local)
		s.renderActivity(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	fresh := make([]ident.ID, 0, 2)
	for i := len(recs) - 1; i >= 0; i-- { // the activity first
		fresh = append(fresh, recs[i].RecordID())
	}
	ctx, cancel := saveContext(r)
	defer cancel()
	out, status, stored := s.createOnce(ctx, r, f, fresh, recs, prefixes, func(rec domain.Record) bool {
		_, ok := rec.(*domain.Activity)
		return ok
	})
	switch out {
	case refused:
		s.renderActivity(w, r, status, f)
		return
	case alreadyStored:
		a := stored.(*domain.Activity)
		s.setFlash(sessionOf(r), tr("activity_already"))
		http.Redirect(w, r, activityDone(a, v), http.StatusSeeOther)
		return
	}
	a := recs[len(recs)-1].(*domain.Activity)
	s.setCrew(sessionOf(r), a.Vehicule, a.Mediateur)
	if a.Arret != nil {
		s.setCurrentStop(sessionOf(r), a.Arret.String())
	}
	s.setFlash(sessionOf(r), tr("activity_saved"))
	http.Redirect(w, r, activityDone(a, v), http.StatusSeeOther)
}

// activityDone is where a saved activity leads: the followed person's
// page when the form was for one, else today's page.
func activityDone(a *domain.Activity, v url.Values) string {
	if a.Beneficiaire != nil && v.Get("beneficiaire") != "" {
		return "/beneficiaires/" + a.Beneficiaire.String()
	}
	return "/"
}

// save writes recs in one transaction and reports success. Otherwise the
// validation problems land on f (record i's fields prefixed by
// prefixes[i]), or a general message when the failure is not about a
// field; the form is then shown again with what was typed.
func (s *Server) save(ctx context.Context, r *http.Request, f *form, recs []domain.Record, prefixes []string) bool {
	_, err := s.cfg.Store.Save(ctx, recs...)
	if err == nil {
		return true
	}
	if !problemsInto(f, err, prefixes) {
		if msg, ok := diskRefused(err); ok {
			f.general(msg)
		} else if errors.Is(err, store.ErrLocked) {
			f.general(tr("locked_api"))
		} else {
			s.log.Error("saving failed", "path", r.URL.Path, "err", err)
			f.general(tr("save_failed"))
		}
	}
	return false
}

// problemsInto copies the validation problems of err onto f; false when
// err holds none.
func problemsInto(f *form, err error, prefixes []string) bool {
	var be *store.BatchError
	found := false
	if errors.As(err, &be) {
		for _, it := range be.Items {
			var ve *domain.ValidationError
			if errors.As(it.Err, &ve) {
				p := ""
				if it.Index < len(prefixes) {
					p = prefixes[it.Index]
				}
				f.addProblems(p, ve.Problems)
				found = true
			} else {
				f.general(tr("save_conflict"))
				found = true
			}
		}
		return found
	}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		f.addProblems("", ve.Problems)
		return true
	}
	return false
}

var inParens = regexp.MustCompile(`\(([0-9][0-9AB][0-9]{3})\)`)

// resolveCommune accepts an INSEE code, "Nom (code)", or a commune name
// that matches one commune exactly (the most populated when several).
func resolveCommune(x *territoire.Index, v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if m := inParens.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	if _, ok := x.Commune(strings.ToUpper(v)); ok {
		return strings.ToUpper(v)
	}
	n := territoire.Normalize(v)
	for _, c := range x.Search(v, 5) {
		if territoire.Normalize(c.Nom) == n {
			return c.Code
		}
	}
	return v
}

// intField parses an optional whole number; a problem when it is not one.
func intField(v url.Values, name string, ps *[]domain.Problem) int {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		*ps = append(*ps, domain.Problem{Field: name, Value: s, Code: domain.ProblemInvalid, Message: tr("problem_not_number")})
	}
	return n
}

func idField(v url.Values, name string, ps *[]domain.Problem) *ident.ID {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return nil
	}
	id, err := ident.Parse(s)
	if err != nil {
		*ps = append(*ps, domain.Problem{Field: name, Code: domain.ProblemInvalid, Message: tr("problem_bad_ref")})
		return nil
	}
	return &id
}

func counts(v url.Values, field, list string, ps *[]domain.Problem) map[string]int {
	m := map[string]int{}
	for _, c := range codeList(list).Codes {
		if n := intField(v, field+"."+c.Code, ps); n != 0 {
			m[c.Code] = n
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// buildActivity makes the records of the activity form fid: the activity
// (id fid), preceded by an anonymous beneficiary when an individual
// session gives statistical fields about the person. It returns the
// problems found before any record exists (a number that is not one, a
// bad reference).
func buildActivity(x *territoire.Index, fid ident.ID, v url.Values, today string) ([]domain.Record, []string, []domain.Problem) {
	var ps []domain.Problem
	flow := flowOf(v.Get("flow"))
	a := &domain.Activity{ID: fid,
		Type: "individuel", Date: v.Get("date"), TypeLieu: v.Get("type_lieu"),
		Commune: resolveCommune(x, v.Get("commune")), Materiel: v["materiel"], Thematiques: v["thematiques"],
		PrecisionsDemarche: v.Get("precisions_demarche"), StructurePartenaire: v.Get("structure_partenaire"),
		Notes: v.Get("notes"), Vehicule: v.Get("vehicule"), Mediateur: v.Get("mediateur"),
	}
	if flow == "collectif" {
		a.Type = "collectif"
	}
	if flow == "demarche" {
		// A démarche is help with an administrative procedure: its
		// theme comes with the form chosen, not with a box left ticked.
		a.Demarches = v["demarches"]
		if !slices.Contains(a.Thematiques, domain.ThemeDemarches) {
			a.Thematiques = append(slices.Clone(a.Thematiques), domain.ThemeDemarches)
		}
	}
	a.Duree = intField(v, "duree", &ps)
	a.PassNumerique = intField(v, "pass_numerique", &ps)
	a.Arret = idField(v, "arret", &ps)
	var recs []domain.Record
	var prefixes []string
	if a.Type == "individuel" {
		a.Autonomie = v.Get("autonomie")
		a.Beneficiaire = idField(v, "beneficiaire", &ps)
		if v.Get("orientation.oriente") != "" || v.Get("orientation.structure_de_redirection") != "" {
			a.Orientation = &domain.Orientation{Oriente: v.Get("orientation.oriente") != "",
				StructureDeRedirection: v.Get("orientation.structure_de_redirection")}
		}
		if a.Beneficiaire == nil {
			b := &domain.Beneficiary{ID: formRecordID(fid, "beneficiaire"), Genre: v.Get("beneficiaire.genre"),
				TrancheAge: v.Get("beneficiaire.tranche_age"), StatutSocial: v.Get("beneficiaire.statut_social")}
			if b.Genre != "" || b.TrancheAge != "" || b.StatutSocial != "" {
				b.Commune = a.Commune
				if t, ok := domain.ParseDate(a.Date); ok {
					b.PremierAccompagnement = t.Format(domain.DateLayout)
				}
				a.Beneficiaire = &b.ID
				recs = append(recs, b)
				prefixes = append(prefixes, "beneficiaire.")
			}
		}
	} else {
		a.TitreAtelier = v.Get("titre_atelier")
		a.Niveau = v.Get("niveau")
		a.Participants = &domain.Participants{
			Total:          intField(v, "participants.total", &ps),
			DejaAccompagne: intField(v, "participants.deja_accompagne", &ps),
			Genre:          counts(v, "participants.genre", "genre", &ps),
			TrancheAge:     counts(v, "participants.tranche_age", "tranche_age", &ps),
			StatutSocial:   counts(v, "participants.statut_social", "statut_social", &ps),
		}
	}
	recs = append(recs, a)
	prefixes = append(prefixes, "")
	return recs, prefixes, ps
}

// Without drops the option of code from the group.
func (c *choice) Without(code string) *choice {
	c.Options = slices.DeleteFunc(c.Options, func(o option) bool { return o.Value == code })
	return c
}

// displayName is how a beneficiary is named on screen.
func displayName(b *domain.Beneficiary) string {
	n := strings.TrimSpace(b.Prenom + " " + b.Nom)
	if n != "" {
		return n
	}
	return tr("anonymous_beneficiary")
}
