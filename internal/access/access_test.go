package access

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
)

func TestEveryFieldHasALabel(t *testing.T) {
	for _, k := range []domain.Kind{domain.KindBeneficiary, domain.KindConsent, domain.KindAssessment, domain.KindActivity} {
		for _, f := range domain.Fields(k) {
			if f.Num == domain.IDField {
				continue
			}
			if _, ok := fieldLabels[k][f.Name]; !ok {
				t.Errorf("%s.%s has no French label: the access document would leave it out", k, f.Name)
			}
		}
	}
}

// sample is a dossier with a value in every kind of section.
func sample(t *testing.T) *Dossier {
	t.Helper()
	at := time.Date(2026, 3, 12, 10, 15, 0, 0, time.Local)
	p := ident.NewAt(at)
	other := ident.NewAt(at)
	fields, err := change.Encode(&domain.Beneficiary{Telephone: "0612345678"})
	if err != nil {
		t.Fatal(err)
	}
	fields[3] = change.Null // nom cleared
	pol, _ := retention.Default().With(retention.Notes, 6)
	return &Dossier{
		Person: p, Made: at, Holder: "le poste de médiation « bus-3 » (équipe cd88)",
		Beneficiary: &Entry{Record: &domain.Beneficiary{ID: p, Prenom: "Gwendoline", Nom: "Testerman", Telephone: "0612345678",
			Commune: "88160", Genre: "feminin", AnneeNaissance: 1950, Publics: []string{"senior"}},
			Updated: at, History: []Step{{At: at, Device: "bus-3", Op: change.OpUpsert, Fields: fields}}},
		Consents: []Entry{{Record: &domain.Consent{ID: ident.New(), Beneficiaire: p, Finalites: []string{"suivi_nominatif", "diagnostic"},
			Mode: "ecrit", Date: "2026-03-01", Retraits: []string{"diagnostic"}}}},
		Assessments: []Entry{{Record: &domain.Assessment{ID: ident.New(), Beneficiaire: p, Date: "2026-03-02",
			Domaines: map[string]string{"information_donnees": "1"}, Commentaire: "à l'aise au téléphone"}, Deleted: true}},
		Activities: []Entry{
			{Record: &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-05", Duree: 45, Beneficiaire: &p,
				Thematiques: []string{"email"}, Notes: "revoir la semaine prochaine"}},
			{Record: &domain.Activity{ID: ident.New(), Type: "collectif", Date: "2026-02-01", Duree: 90, TitreAtelier: "Courriel",
				Participants: &domain.Participants{Beneficiaires: []ident.ID{p, other}, Total: 12}}, Erased: true},
		},
		Refused: []Refusal{{At: at, Kind: domain.KindBeneficiary, ID: p, Code: "no_consent", Reason: "identity without consent"}},
		Policy:  &pol,
	}
}

// sectionRows reads an HTML document back: for each section id, the
// "label: value" of its items, and their history lines.
func sectionRows(t *testing.T, doc []byte) map[string][]string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	out := map[string][]string{}
	var section, label string
	var text strings.Builder
	var stack []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the document does not read back: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			stack = append(stack, v.Name.Local)
			text.Reset()
			if v.Name.Local == "section" {
				for _, a := range v.Attr {
					if a.Name.Local == "id" {
						section = a.Value
					}
				}
			}
		case xml.CharData:
			text.Write(v)
		case xml.EndElement:
			switch v.Name.Local {
			case "dt":
				label = text.String()
			case "dd":
				out[section] = append(out[section], label+": "+text.String())
			case "li", "h3":
				out[section] = append(out[section], v.Name.Local+": "+text.String())
			case "p":
				if section != "" {
					out[section] = append(out[section], "p: "+text.String())
				}
			}
			stack = stack[:len(stack)-1]
		}
	}
	return out
}

func has(t *testing.T, where string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			if g == w || strings.HasPrefix(w, "~") && strings.Contains(g, w[1:]) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %q missing from\n%s", where, w, strings.Join(got, "\n"))
		}
	}
}

func TestHTMLReadsBack(t *testing.T) {
	d := sample(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, d); err != nil {
		t.Fatal(err)
	}
	s := sectionRows(t, buf.Bytes())
	has(t, "personne", s["personne"], "Prénom: Gwendoline", "Nom: Testerman", "Téléphone: 0612345678",
		"Année de naissance: 1950", "Commune de résidence: Épinal (88160)", "Genre: Féminin", "Publics: Senior",
		"~Dernière modification: 12/03/2026 à ",
		"~(poste bus-3) : Téléphone : 0612345678 ; Nom : (vidé)")
	has(t, "consentements", s["consentements"], "h3: Consentement du 01/03/2026",
		"~Finalités acceptées: Suivi nominatif", "Recueilli: Écrit (formulaire signé)", "~Finalités retirées: Diagnostic")
	has(t, "diagnostics", s["diagnostics"], "~Information et données : Compétences de base",
		"Commentaire: à l'aise au téléphone", "~supprimé")
	has(t, "accompagnements", s["accompagnements"], "Notes du médiateur: revoir la semaine prochaine", "Durée: 45 min",
		"Participants: 12 participant(s), dont la personne", "h3: Atelier collectif du 01/02/2026 « Courriel »")
	has(t, "refus", s["refus"], "~Motif: pas de consentement connu du hub")
	has(t, "conservation", s["conservation"], "Conservées: 6 mois après la date de l'accompagnement")
	// Workshops order by date; other participants are never named.
	if strings.Contains(buf.String(), d.Activities[1].Record.(*domain.Activity).Participants.Beneficiaires[1].String()) {
		t.Error("another participant's id is in the document")
	}
}

func TestTextReadsBack(t *testing.T) {
	d := sample(t)
	var buf bytes.Buffer
	if err := WriteText(&buf, d); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	has(t, "text", lines, "DONNÉES DÉTENUES SUR UNE PERSONNE — DROIT D'ACCÈS", "Nom : Testerman",
		"Commentaire : à l'aise au téléphone", "* Consentement du 01/03/2026", "~Document établi le 12/03/2026 à 10:15 par le poste")
}

func TestNobodyFound(t *testing.T) {
	var buf bytes.Buffer
	d := &Dossier{Person: ident.New(), Made: time.Now(), Holder: "le hub de coordination"}
	if err := WriteHTML(&buf, d); err != nil {
		t.Fatal(err)
	}
	s := sectionRows(t, buf.Bytes())
	has(t, "personne", s["personne"], "p: Aucune fiche ne porte cet identifiant : aucune donnée d'identité n'est détenue.")
	has(t, "consentements", s["consentements"], "p: Aucun consentement enregistré.")
}

func TestFrenchNumbers(t *testing.T) {
	for n, want := range map[int]string{45: "45", 1234: "1234", 12345: "12\u202f345", 1234567: "1\u202f234\u202f567"} {
		if got := formatInt(n); got != want {
			t.Errorf("formatInt(%d) = %q, want %q", n, got, want)
		}
	}
}
