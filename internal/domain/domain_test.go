package domain

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"numeribus/internal/ident"
)

// env is a test Env.
type env struct {
	communes map[string]bool
	kinds    map[ident.ID]Kind
	consents map[ident.ID]map[string]bool
}

func newEnv() *env {
	return &env{communes: map[string]bool{"88413": true, "54395": true}, kinds: map[ident.ID]Kind{}, consents: map[ident.ID]map[string]bool{}}
}
func (e *env) CommuneExists(c string) bool                { return e.communes[c] }
func (e *env) KindOf(id ident.ID) Kind                    { return e.kinds[id] }
func (e *env) ActiveFinalites(b ident.ID) map[string]bool { return e.consents[b] }

func problems(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	return ve.Problems
}

func validActivity() *Activity {
	return &Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30, TypeLieu: "lieu_activite",
		Commune: "88413", Thematiques: []string{"email"}}
}

func validWorkshop() *Activity {
	return &Activity{ID: ident.New(), Type: "collectif", Date: "2026-03-02", Duree: 90, TypeLieu: "lieu_activite",
		Commune: "88413", Thematiques: []string{"securite_numerique"}, TitreAtelier: "Sécuriser ses comptes",
		Participants: &Participants{Total: 8}}
}

var snake = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func TestCodeListsAreWellFormed(t *testing.T) {
	for _, l := range CodeLists() {
		seen := map[string]bool{}
		for _, c := range l.Codes {
			if !snake.MatchString(c.Code) && l != NiveauxCRCN {
				t.Errorf("%s: code %q is not lower_snake_case ASCII", l.Name, c.Code)
			}
			if seen[c.Code] || strings.TrimSpace(c.Label) == "" {
				t.Errorf("%s: code %q repeated or without label", l.Name, c.Code)
			}
			seen[c.Code] = true
			if !l.Has(c.Code) || l.Label(c.Code) != c.Label {
				t.Errorf("%s: lookup of %q broken", l.Name, c.Code)
			}
		}
		if l.Has("inconnu_xyz") || l.Label("inconnu_xyz") != "inconnu_xyz" {
			t.Errorf("%s accepts an unknown code", l.Name)
		}
	}
	if got := len(Thematiques.Codes); got != 19 {
		t.Errorf("thematiques: %d codes, DOMAIN.md lists 19", got)
	}
	if got := len(Demarches.Codes); got != 11 {
		t.Errorf("demarches: %d codes, DOMAIN.md lists 11", got)
	}
}

// Each code list drives the validation of its field: every code passes,
// an unknown one is reported with the field, the value and the list.
func TestEveryCodeListDrivesValidation(t *testing.T) {
	benef := ident.New()
	e := newEnv()
	e.kinds[benef] = KindBeneficiary
	e.consents[benef] = map[string]bool{FinaliteSuivi: true, FinaliteDiagnostic: true}
	tests := []struct {
		list  *CodeList
		field string
		make  func(code string) Record
	}{
		{TypesActivite, "type", func(c string) Record {
			a := validActivity()
			if c == "collectif" {
				a = validWorkshop()
			}
			a.Type = c
			return a
		}},
		{TypesLieu, "type_lieu", func(c string) Record { a := validActivity(); a.TypeLieu = c; return a }},
		{Materiels, "materiel", func(c string) Record { a := validActivity(); a.Materiel = []string{c}; return a }},
		{Thematiques, "thematiques", func(c string) Record { a := validActivity(); a.Thematiques = []string{c}; return a }},
		{Demarches, "demarches", func(c string) Record {
			a := validActivity()
			a.Thematiques = []string{ThemeDemarches}
			a.Demarches = []string{c}
			return a
		}},
		{StructuresPartenaires, "structure_partenaire", func(c string) Record { a := validActivity(); a.StructurePartenaire = c; return a }},
		{Autonomies, "autonomie", func(c string) Record { a := validActivity(); a.Autonomie = c; return a }},
		{StructuresRedirection, "orientation.structure_de_redirection", func(c string) Record {
			a := validActivity()
			a.Orientation = &Orientation{Oriente: true, StructureDeRedirection: c}
			return a
		}},
		{Niveaux, "niveau", func(c string) Record { a := validWorkshop(); a.Niveau = c; return a }},
		{Genres, "genre", func(c string) Record { return &Beneficiary{Genre: c} }},
		{TranchesAge, "tranche_age", func(c string) Record { return &Beneficiary{TrancheAge: c} }},
		{StatutsSociaux, "statut_social", func(c string) Record { return &Beneficiary{StatutSocial: c} }},
		{Publics, "publics", func(c string) Record { return &Beneficiary{Publics: []string{c}} }},
		{Equipements, "equipement", func(c string) Record { return &Beneficiary{Equipement: c} }},
		{AccesInternet, "acces_internet", func(c string) Record { return &Beneficiary{AccesInternet: c} }},
		{Genres, "participants.genre", func(c string) Record {
			a := validWorkshop()
			a.Participants.Genre = map[string]int{c: 1}
			return a
		}},
		{TranchesAge, "participants.tranche_age", func(c string) Record {
			a := validWorkshop()
			a.Participants.TrancheAge = map[string]int{c: 1}
			return a
		}},
		{StatutsSociaux, "participants.statut_social", func(c string) Record {
			a := validWorkshop()
			a.Participants.StatutSocial = map[string]int{c: 1}
			return a
		}},
		{DomainesCRCN, "domaines", func(c string) Record {
			return &Assessment{Beneficiaire: benef, Date: "2026-01-02", Domaines: map[string]string{c: "1"}}
		}},
		{NiveauxCRCN, "domaines.pix_like", func(c string) Record {
			return &Assessment{Beneficiaire: benef, Date: "2026-01-02", Domaines: map[string]string{"creation_contenu": c}, Besoins: []string{"email"}}
		}},
		{Autonomies, "autonomie_globale", func(c string) Record {
			return &Assessment{Beneficiaire: benef, Date: "2026-01-02", AutonomieGlobale: c}
		}},
		{Thematiques, "besoins", func(c string) Record {
			return &Assessment{Beneficiaire: benef, Date: "2026-01-02", Besoins: []string{c}}
		}},
		{Outils, "outil", func(c string) Record {
			return &Assessment{Beneficiaire: benef, Date: "2026-01-02", Outil: c, AutonomieGlobale: "autonome"}
		}},
		{Finalites, "finalites", func(c string) Record {
			return &Consent{Beneficiaire: benef, Finalites: []string{c}, Mode: "ecrit", Date: "2026-01-02"}
		}},
		{ModesConsentement, "mode", func(c string) Record {
			return &Consent{Beneficiaire: benef, Finalites: []string{FinaliteSuivi}, Mode: c, Date: "2026-01-02"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			for _, c := range tt.list.Codes {
				r := tt.make(c.Code)
				r.Normalize()
				if ps := problems(t, r.Validate(e)); len(ps) > 0 {
					t.Errorf("valid code %q refused: %v", c.Code, ps)
				}
			}
			r := tt.make("code_bidon")
			ps := problems(t, r.Validate(e))
			field := tt.field
			if field == "domaines.pix_like" {
				field = "domaines.creation_contenu"
			}
			i := slices.IndexFunc(ps, func(p Problem) bool { return p.Field == field && p.Code == ProblemUnknownCode })
			if i < 0 {
				t.Fatalf("unknown code not reported on %s: %v", field, ps)
			}
			if ps[i].Value != "code_bidon" || !slices.Equal(ps[i].Allowed, tt.list.Allowed()) {
				t.Errorf("problem %+v lacks the value or the allowed codes", ps[i])
			}
		})
	}
}

func TestValidationReportsEveryProblemAtOnce(t *testing.T) {
	a := &Activity{Type: "individuel", Date: "2026-13-45", Duree: -5, TypeLieu: "lieu_activite",
		Commune: "00000", Thematiques: []string{"cuisine"}, Demarches: []string{"logement"}, PassNumerique: -1,
		TitreAtelier: "x", Materiel: []string{"aucun", "tablette"}}
	ps := problems(t, a.Validate(newEnv()))
	fields := map[string]bool{}
	for _, p := range ps {
		fields[p.Field] = true
	}
	for _, f := range []string{"date", "duree", "commune", "thematiques", "demarches", "pass_numerique", "participants", "materiel"} {
		if !fields[f] {
			t.Errorf("no problem reported on %s; got %v", f, ps)
		}
	}
	msg := a.Validate(newEnv()).Error()
	if !strings.Contains(msg, `"cuisine"`) || !strings.Contains(msg, "valeurs permises") {
		t.Errorf("message does not name the value and the allowed codes: %s", msg)
	}
}

func TestActivityRules(t *testing.T) {
	e := newEnv()
	tests := []struct {
		name  string
		edit  func(a *Activity)
		field string // "" = valid
	}{
		{"valid", func(a *Activity) {}, ""},
		{"a_distance needs no commune", func(a *Activity) { a.TypeLieu = "a_distance"; a.Commune = "" }, ""},
		{"commune required on site", func(a *Activity) { a.Commune = "" }, "commune"},
		{"French date accepted", func(a *Activity) { a.Date = "02/03/2026"; a.Normalize() }, ""},
		{"no theme", func(a *Activity) { a.Thematiques = nil }, "thematiques"},
		{"demarches without the theme", func(a *Activity) { a.Demarches = []string{"logement"} }, "demarches"},
		{"structure without referral", func(a *Activity) { a.Orientation = &Orientation{StructureDeRedirection: "autre"} }, "orientation.structure_de_redirection"},
		{"unknown beneficiary", func(a *Activity) { id := ident.New(); a.Beneficiaire = &id }, "beneficiaire"},
		{"unknown stop", func(a *Activity) { id := ident.New(); a.Arret = &id }, "arret"},
		{"too long", func(a *Activity) { a.Duree = MaxDuree + 1 }, "duree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validActivity()
			tt.edit(a)
			ps := problems(t, a.Validate(e))
			if tt.field == "" && len(ps) > 0 {
				t.Fatalf("unexpected problems %v", ps)
			}
			if tt.field != "" && !slices.ContainsFunc(ps, func(p Problem) bool { return p.Field == tt.field }) {
				t.Fatalf("no problem on %s: %v", tt.field, ps)
			}
		})
	}
}

func TestWorkshopNeedsNoPersonalData(t *testing.T) {
	w := validWorkshop()
	w.Participants = &Participants{Total: 10, DejaAccompagne: 4, Genre: map[string]int{"feminin": 6, "masculin": 3},
		TrancheAge: map[string]int{"soixante_dix_plus": 10}}
	if ps := problems(t, w.Validate(newEnv())); len(ps) > 0 {
		t.Fatalf("anonymous workshop refused: %v", ps)
	}
	if w.Accompagnements() != 10 || validActivity().Accompagnements() != 1 {
		t.Fatal("accompagnements count")
	}
	w.Participants.Genre["non_communique"] = 2 // 11 > 10
	w.Participants.DejaAccompagne = 11
	ps := problems(t, w.Validate(newEnv()))
	if len(ps) != 2 {
		t.Fatalf("breakdown over total and deja_accompagne over total: %v", ps)
	}
	w.Participants = nil
	if ps := problems(t, w.Validate(newEnv())); len(ps) != 1 || ps[0].Field != "participants.total" {
		t.Fatalf("workshop without participants: %v", ps)
	}
}

func TestConsentGating(t *testing.T) {
	e := newEnv()
	b := &Beneficiary{ID: ident.New(), Genre: "feminin"}
	if ps := problems(t, b.Validate(e)); len(ps) > 0 {
		t.Fatalf("anonymous beneficiary refused: %v", ps)
	}
	for name, set := range map[string]func(*Beneficiary){
		"prenom": func(b *Beneficiary) { b.Prenom = "Léa" }, "nom": func(b *Beneficiary) { b.Nom = "Roux" },
		"telephone": func(b *Beneficiary) { b.Telephone = "0601020304" }, "email": func(b *Beneficiary) { b.Email = "a@b.fr" },
		"annee_naissance": func(b *Beneficiary) { b.AnneeNaissance = 1960 }, "adresse": func(b *Beneficiary) { b.Adresse = "1 rue" },
		"notes": func(b *Beneficiary) { b.Notes = "x" },
	} {
		c := *b
		set(&c)
		ps := problems(t, c.Validate(e))
		if len(ps) != 1 || ps[0].Code != ProblemConsentRequired || ps[0].Field != name {
			t.Errorf("%s without consent: %v", name, ps)
		}
		e.consents[b.ID] = map[string]bool{FinaliteDiagnostic: true}
		if ps := problems(t, c.Validate(e)); len(ps) != 1 {
			t.Errorf("%s with only a diagnostic consent: %v", name, ps)
		}
		e.consents[b.ID] = map[string]bool{FinaliteSuivi: true}
		if ps := problems(t, c.Validate(e)); len(ps) != 0 {
			t.Errorf("%s with suivi_nominatif: %v", name, ps)
		}
		delete(e.consents, b.ID)
	}
	e.kinds[b.ID] = KindBeneficiary
	as := &Assessment{Beneficiaire: b.ID, Date: "2026-02-01", AutonomieGlobale: "autonome"}
	if ps := problems(t, as.Validate(e)); len(ps) != 1 || ps[0].Code != ProblemConsentRequired {
		t.Fatalf("assessment without diagnostic consent: %v", ps)
	}
	e.consents[b.ID] = map[string]bool{FinaliteDiagnostic: true}
	if ps := problems(t, as.Validate(e)); len(ps) != 0 {
		t.Fatalf("assessment with consent: %v", ps)
	}
}

func TestConsentWithdrawEffects(t *testing.T) {
	c := &Consent{ID: ident.New(), Finalites: []string{FinaliteSuivi, FinaliteDiagnostic, FinalitePartage}}
	eff := c.Withdraw([]string{FinaliteDiagnostic}, "2026-05-01", nil)
	if eff != (Effects{EraseAssessments: true}) || c.RetireLe != "" || slices.Contains(c.Active(), FinaliteDiagnostic) {
		t.Fatalf("partial withdrawal: %+v %+v", eff, c)
	}
	// Another consent still gives suivi_nominatif: identity stays.
	eff = c.Withdraw(nil, "2026-06-01", map[string]bool{FinaliteSuivi: true})
	if eff.EraseIdentity || c.RetireLe != "2026-06-01" || len(c.Active()) != 0 {
		t.Fatalf("full withdrawal with suivi given elsewhere: %+v %+v", eff, c)
	}
	c2 := &Consent{Finalites: []string{FinaliteSuivi}}
	if eff := c2.Withdraw(nil, "2026-06-01", nil); !eff.EraseIdentity {
		t.Fatalf("withdrawing the only suivi_nominatif: %+v", eff)
	}
}

func TestTrancheAgeDerivedFromBirthYear(t *testing.T) {
	tests := []struct {
		year int
		want string
	}{{2020, "moins_de_douze"}, {2010, "douze_dix_huit"}, {2005, "dix_huit_vingt_quatre"}, {1990, "vingt_cinq_trente_neuf"},
		{1970, "quarante_cinquante_neuf"}, {1960, "soixante_soixante_neuf"}, {1940, "soixante_dix_plus"}}
	for _, tt := range tests {
		b := &Beneficiary{AnneeNaissance: tt.year, PremierAccompagnement: "2026-01-10", TrancheAge: "non_communique"}
		b.Normalize()
		if b.TrancheAge != tt.want {
			t.Errorf("born %d: %s, want %s", tt.year, b.TrancheAge, tt.want)
		}
	}
}

func TestPersonalFields(t *testing.T) {
	var names []string
	for _, n := range PersonalFields(KindBeneficiary) {
		f, _ := FieldByNum(KindBeneficiary, n)
		names = append(names, f.Name)
	}
	want := []string{"prenom", "nom", "telephone", "email", "annee_naissance", "adresse", "notes"}
	if !slices.Equal(names, want) {
		t.Fatalf("beneficiary personal fields %v, want %v", names, want)
	}
	if len(PersonalFields(KindTourStop)) != 0 || len(PersonalFields(KindAssessment)) != 2 {
		t.Fatal("personal fields of tourstop/assessment")
	}
	for _, k := range Kinds {
		if f, ok := FieldByNum(k, IDField); !ok || f.Name != "id" {
			t.Errorf("%s: field 1 is %+v, want id", k, f)
		}
	}
}

// FieldByNum finds every field of every kind by its number, and nothing
// else: numbers of no field, past the last, huge, of an unknown kind.
func TestFieldByNum(t *testing.T) {
	for _, k := range Kinds {
		for _, f := range Fields(k) {
			if got, ok := FieldByNum(k, f.Num); !ok || got != f {
				t.Errorf("%s field %d: %+v, %v; want %+v", k, f.Num, got, ok, f)
			}
		}
	}
	for _, c := range []struct {
		k   Kind
		num uint64
	}{{KindActivity, 0}, {KindConsent, 10}, {KindTourStop, 1 << 62}, {"nothing", 1}} {
		if f, ok := FieldByNum(c.k, c.num); ok {
			t.Errorf("%s field %d: found %+v", c.k, c.num, f)
		}
	}
}

func TestNormalizeMakesEqualContentEqual(t *testing.T) {
	x, y := ident.New(), ident.New()
	a := validWorkshop()
	a.Participants.Beneficiaires = []ident.ID{y, x, y}
	a.Participants.Genre = map[string]int{"feminin": 0}
	a.Thematiques = []string{"email", "bureautique"}
	shared := a.Thematiques
	a.Normalize()
	if len(a.Participants.Beneficiaires) != 2 || a.Participants.Genre != nil {
		t.Fatalf("participants not normalized: %+v", a.Participants)
	}
	if shared[0] != "email" {
		t.Fatal("Normalize sorted the caller's slice in place")
	}
	b := &Beneficiary{ID: ident.NewAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), AnneeNaissance: 1960}
	b.Normalize()
	if b.TrancheAge != "soixante_soixante_neuf" {
		t.Fatalf("tranche from the id's year: %s", b.TrancheAge)
	}
}

// An assessment of nothing is refused; a date that does not exist is told
// as such, in the forms' format.
func TestEmptyAssessmentAndImpossibleDate(t *testing.T) {
	b := ident.New()
	empty := &Assessment{Beneficiaire: b, Date: "2026-03-02", Domaines: map[string]string{"creation_contenu": "non_evalue", "protection_securite": "non_evalue"}}
	empty.Normalize()
	ps := problems(t, empty.Validate(nil))
	if len(ps) != 1 || ps[0].Field != "domaines" || !strings.Contains(ps[0].Message, "diagnostic vide") {
		t.Fatalf("empty assessment: %v", ps)
	}
	one := &Assessment{Beneficiaire: b, Date: "2026-03-02", Domaines: map[string]string{"creation_contenu": "1"}}
	if ps := problems(t, one.Validate(nil)); len(ps) != 0 {
		t.Fatalf("one domain scored: %v", ps)
	}
	for date, want := range map[string]string{"31/02/2026": "n'existe pas", "2026-02-30": "n'existe pas", "le 3 mars": "JJ/MM/AAAA"} {
		a := &Assessment{Beneficiaire: b, Date: date, AutonomieGlobale: "autonome"}
		a.Normalize()
		ps := problems(t, a.Validate(nil))
		if len(ps) != 1 || ps[0].Field != "date" || !strings.Contains(ps[0].Message, want) || strings.Contains(ps[0].Message, "AAAA-MM-JJ") {
			t.Errorf("date %q: %v", date, ps)
		}
	}
}

// No record grows past what one batch of the wire carries: every text,
// list and table is bounded, and so is the record's text as a whole.
func TestSizeLimits(t *testing.T) {
	long := strings.Repeat("x", MaxText+1)
	tests := []struct {
		name  string
		rec   func() Record
		field string // "" when valid
	}{
		{"a note at the limit", func() Record { a := validActivity(); a.Notes = strings.Repeat("é", MaxText/2); return a }, ""},
		{"a note over the limit", func() Record { a := validActivity(); a.Notes = long; return a }, "notes"},
		{"a name over the limit", func() Record {
			return &Beneficiary{ID: ident.New(), Nom: long}
		}, "nom"},
		{"a workshop's followed people over the limit", func() Record {
			w := validWorkshop()
			w.Participants.Beneficiaires = make([]ident.ID, MaxItems+1)
			w.Participants.Total = MaxItems + 1
			return w
		}, "participants.beneficiaires"},
		{"a table of head counts over the limit", func() Record {
			w := validWorkshop()
			w.Participants.Genre = map[string]int{}
			for i := range MaxItems + 1 {
				w.Participants.Genre[fmt.Sprint("g", i)] = 1
			}
			return w
		}, "participants.genre"},
		{"every text at its limit: the record's total", func() Record {
			a := validActivity()
			a.Notes, a.PrecisionsDemarche, a.Mediateur, a.Vehicule, a.TitreAtelier =
				strings.Repeat("n", MaxText), strings.Repeat("p", MaxText-1), strings.Repeat("m", MaxText-1), strings.Repeat("v", MaxText-1), strings.Repeat("t", MaxText-1)
			return a
		}, "notes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range problems(t, tt.rec().Validate(newEnv())) {
				if p.Code == ProblemInvalid && (strings.Contains(p.Message, "trop long") || strings.Contains(p.Message, "au plus") || strings.Contains(p.Message, "au total")) {
					got = append(got, p.Field)
				}
			}
			switch {
			case tt.field == "" && len(got) > 0:
				t.Fatalf("size problems on a record within the limits: %v", got)
			case tt.field != "" && !slices.Contains(got, tt.field):
				t.Fatalf("size problems %v, want one on %s", got, tt.field)
			}
		})
	}
}
