// Package access writes what a store holds about one person — their
// record, consents, assessments, activities, the history of each and the
// changes the hub refused about them — as one document in French, for the
// person's right of access (RGPD, article 15). The agent (`agent access`,
// the button of a person's page) and the hub (`hub access`, for the data
// protection officer) each gather a [Dossier] from their store; this
// package decides nothing about storage and does no I/O beyond the writer
// it is given.
//
// The document is HTML that prints on A4 without a browser's help (WriteHTML,
// its styles inline), or plain text (WriteText). Every field of every kind
// has a French label here (TestEveryFieldHasALabel): a field added to the
// domain without one fails the build's tests rather than missing from what
// a person is told.
package access

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/retention"
	"numeribus/internal/territoire"
)

// Dossier is everything a store holds about one person.
type Dossier struct {
	Person ident.ID
	Made   time.Time // when the document was made
	// Holder says who holds the data, in French: "le poste de médiation
	// « bus-3 » (équipe cd88)", "le hub de coordination".
	Holder string
	// Beneficiary is the person's record; nil when the store holds none.
	Beneficiary *Entry
	// Consents, Assessments and Activities are the records about the
	// person, deleted ones included (their data is still held).
	Consents, Assessments, Activities []Entry
	// Refused are the changes about the person the hub refused.
	Refused []Refusal
	// Policy, when known, is said at the end: how long what is listed is
	// kept.
	Policy *retention.Policy
	// Partial, when set, says in French what the store could not see
	// (the agent holds its own history only).
	Partial string
}

// Entry is one record with what the store knows of its life.
type Entry struct {
	Record  domain.Record
	Deleted bool
	Erased  bool
	// Updated is the time of its last write, zero when unknown.
	Updated time.Time
	// History lists the writes the store logged, oldest first.
	History []Step
}

// Step is one logged write of a record.
type Step struct {
	At     time.Time
	Device string // the device's name, or its id when the store has no name
	Op     change.Op
	Fields change.Fields // the fields it wrote (an upsert)
}

// Refusal is a change about the person that the hub refused.
type Refusal struct {
	At     time.Time
	Kind   domain.Kind
	ID     ident.ID
	Code   string
	Reason string
}

// row is one labelled value of the document.
type row struct{ Label, Value string }

// item is one record of a section: a heading, its values, its history.
type item struct {
	Heading string
	Status  string // supprimé, effacé…
	Rows    []row
	History []string
}

type section struct {
	ID, Title string
	Empty     string // said when there is no item
	Items     []item
	Lines     []string // plain paragraphs instead of items
}

type document struct {
	Title  string
	Intro  []string
	Parts  []section
	Footer []string
}

const title = "Données détenues sur une personne — droit d'accès"

func build(d *Dossier) document {
	doc := document{Title: title}
	doc.Intro = append(doc.Intro,
		"Document établi le "+dateTime(d.Made)+" par "+d.Holder+", à la demande de la personne concernée (article 15 du RGPD).",
		"Identifiant de la personne : "+d.Person.String()+".")
	if d.Partial != "" {
		doc.Intro = append(doc.Intro, d.Partial)
	}
	who := section{ID: "personne", Title: "La personne", Empty: "Aucune fiche ne porte cet identifiant : aucune donnée d'identité n'est détenue."}
	if d.Beneficiary != nil {
		who.Items = []item{entryItem(d.Person, *d.Beneficiary, "Fiche de la personne")}
	}
	doc.Parts = append(doc.Parts, who)
	doc.Parts = append(doc.Parts, listSection(d.Person, "consentements", "Consentements", "Aucun consentement enregistré.", d.Consents))
	doc.Parts = append(doc.Parts, listSection(d.Person, "diagnostics", "Diagnostics", "Aucun diagnostic lié à la personne.", d.Assessments))
	doc.Parts = append(doc.Parts, listSection(d.Person, "accompagnements", "Accompagnements et ateliers", "Aucun accompagnement ni atelier.", d.Activities))
	ref := section{ID: "refus", Title: "Modifications refusées par le hub", Empty: "Aucune modification refusée."}
	for _, r := range d.Refused {
		ref.Items = append(ref.Items, item{Heading: r.Kind.Label() + " " + r.ID.String(), Rows: []row{
			{"Refusée le", dateTime(r.At)}, {"Motif", refusalText(r)}}})
	}
	doc.Parts = append(doc.Parts, ref)
	if d.Policy != nil {
		ret := section{ID: "conservation", Title: "Durées de conservation"}
		for _, r := range retention.Rules {
			ret.Items = append(ret.Items, item{Heading: r.Label, Rows: []row{{"Conservées", d.Policy.Describe(r.Kind)}}})
		}
		doc.Parts = append(doc.Parts, ret)
	}
	doc.Footer = []string{
		"Vous pouvez demander la rectification ou l'effacement de ces données, retirer votre consentement ou vous opposer à leur traitement auprès de la structure qui vous accompagne.",
		"Les statistiques anonymes (nombre d'accompagnements, thèmes, durées) sont conservées après l'effacement : elles ne permettent pas de vous identifier.",
	}
	return doc
}

func listSection(person ident.ID, id, title, empty string, es []Entry) section {
	s := section{ID: id, Title: title, Empty: empty}
	sorted := slices.Clone(es)
	slices.SortStableFunc(sorted, func(a, b Entry) int { return strings.Compare(dateOf(a.Record), dateOf(b.Record)) })
	for _, e := range sorted {
		s.Items = append(s.Items, entryItem(person, e, headingOf(e.Record)))
	}
	return s
}

// entryItem lays out one record: its values, its state, its history.
func entryItem(person ident.ID, e Entry, heading string) item {
	it := item{Heading: heading, Rows: rowsOf(person, e.Record, nil)}
	switch {
	case e.Erased && e.Deleted:
		it.Status = "supprimé ; données personnelles effacées"
	case e.Erased:
		it.Status = "données personnelles effacées"
	case e.Deleted:
		it.Status = "supprimé (conservé pour la synchronisation et les statistiques)"
	}
	if !e.Updated.IsZero() {
		it.Rows = append(it.Rows, row{"Dernière modification", dateTime(e.Updated)})
	}
	for _, st := range e.History {
		it.History = append(it.History, stepText(person, e.Record, st))
	}
	return it
}

// stepText says one logged write: "12/03/2026 à 10:15 — modification
// (poste bus-3) : Téléphone : 0612345678".
func stepText(person ident.ID, r domain.Record, st Step) string {
	var what string
	switch st.Op {
	case change.OpUpsert:
		what = "enregistrement"
	case change.OpDelete:
		what = "suppression"
	case change.OpErase:
		what = "effacement des données personnelles"
	default:
		what = "opération " + strconv.Itoa(int(st.Op))
	}
	s := dateTime(st.At) + " — " + what
	if st.Device != "" {
		s += " (poste " + st.Device + ")"
	}
	if st.Op != change.OpUpsert || len(st.Fields) == 0 {
		return s
	}
	k := r.Kind()
	live := change.Fields{}
	var cleared []string
	for n, v := range st.Fields {
		if string(v) == string(change.Null) {
			if f, ok := domain.FieldByNum(k, n); ok {
				cleared = append(cleared, labelOf(k, f.Name))
			}
			continue
		}
		live[n] = v
	}
	var parts []string
	if rec, err := change.Decode(k, r.RecordID(), live); err == nil {
		only := map[string]bool{}
		for n := range live {
			if f, ok := domain.FieldByNum(k, n); ok {
				only[f.Name] = true
			}
		}
		for _, rw := range rowsOf(person, rec, only) {
			parts = append(parts, rw.Label+" : "+rw.Value)
		}
	} else {
		parts = append(parts, "valeurs illisibles par ce programme")
	}
	slices.Sort(cleared)
	for _, c := range cleared {
		parts = append(parts, c+" : (vidé)")
	}
	if len(parts) > 0 {
		s += " : " + strings.Join(parts, " ; ")
	}
	return s
}

func refusalText(r Refusal) string {
	why := map[string]string{
		"invalid":     "données refusées par les contrôles du hub",
		"clock_ahead": "horloge du poste trop en avance",
		"no_consent":  "pas de consentement connu du hub pour ces données",
	}[r.Code]
	if why == "" {
		why = r.Code
	}
	if r.Reason != "" {
		why += " (" + r.Reason + ")"
	}
	return why
}

func headingOf(r domain.Record) string {
	switch v := r.(type) {
	case *domain.Consent:
		return "Consentement du " + frDate(v.Date)
	case *domain.Assessment:
		return "Diagnostic du " + frDate(v.Date)
	case *domain.Activity:
		h := domain.TypesActivite.Label(v.Type) + " du " + frDate(v.Date)
		if v.TitreAtelier != "" {
			h += " « " + v.TitreAtelier + " »"
		}
		return h
	}
	return r.Kind().Label()
}

func dateOf(r domain.Record) string {
	switch v := r.(type) {
	case *domain.Consent:
		return v.Date
	case *domain.Assessment:
		return v.Date
	case *domain.Activity:
		return v.Date
	}
	return ""
}

// frDate writes an ISO date as JJ/MM/AAAA ("" stays "").
func frDate(s string) string {
	if t, ok := domain.ParseDate(s); ok {
		return t.Format("02/01/2006")
	}
	return s
}

// dateTime writes a time as "12/03/2026 à 10:15", in the local zone.
func dateTime(t time.Time) string {
	if t.IsZero() {
		return "date inconnue"
	}
	return t.Local().Format("02/01/2006 à 15:04")
}

func commune(code string) string {
	if code == "" {
		return ""
	}
	if c, ok := territoire.Default().Commune(code); ok {
		return c.Nom + " (" + code + ")"
	}
	return code
}

func labels(l *domain.CodeList, codes []string) string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = l.Label(c)
	}
	return strings.Join(out, ", ")
}

func yesNo(b bool) string {
	if b {
		return "oui"
	}
	return "non"
}

func formatInt(n int) string {
	s := strconv.Itoa(n)
	if n < 10000 && n > -10000 {
		return s
	}
	// French grouping: 12 345.
	var b strings.Builder
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune('\u202f')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fieldLabels are the French labels of every field of the kinds about a
// person, by kind and JSON name. The id and the link to the person are
// not shown as fields (""): the document is about that person. Tour stops
// are about vehicles, never about someone.
var fieldLabels = map[domain.Kind]map[string]string{
	domain.KindBeneficiary: {
		"prenom": "Prénom", "nom": "Nom", "telephone": "Téléphone", "email": "Adresse e-mail",
		"annee_naissance": "Année de naissance", "adresse": "Adresse", "notes": "Notes du médiateur",
		"commune": "Commune de résidence", "genre": "Genre", "tranche_age": "Tranche d'âge",
		"statut_social": "Situation", "premier_accompagnement": "Premier accompagnement",
		"publics": "Publics", "equipement": "Équipement à domicile", "acces_internet": "Accès à internet à domicile",
	},
	domain.KindConsent: {
		"beneficiaire": "", "finalites": "Finalités acceptées", "mode": "Recueilli", "texte_version": "Version de la notice lue",
		"date": "Date du consentement", "mediateur": "Recueilli par", "retire_le": "Retiré le", "retraits": "Finalités retirées",
	},
	domain.KindAssessment: {
		"beneficiaire": "", "date": "Date", "domaines": "Compétences (cadre de référence CRCN)",
		"autonomie_globale": "Autonomie globale", "besoins": "Besoins exprimés", "equipement": "Équipement à domicile",
		"acces_internet": "Accès à internet à domicile", "outil": "Outil de diagnostic", "commentaire": "Commentaire",
		"mediateur": "Médiateur ou médiatrice", "commune": "Commune",
	},
	domain.KindActivity: {
		"type": "Type", "date": "Date", "duree": "Durée", "type_lieu": "Lieu", "commune": "Commune",
		"materiel": "Matériel utilisé", "thematiques": "Thématiques", "demarches": "Démarches",
		"precisions_demarche": "Précisions sur la démarche", "structure_partenaire": "Structure partenaire",
		"pass_numerique": "Pass numériques reçus", "notes": "Notes du médiateur", "mediateur": "Médiateur ou médiatrice",
		"vehicule": "Véhicule", "arret": "Arrêt de tournée", "beneficiaire": "", "autonomie": "Autonomie",
		"orientation": "Orientation", "titre_atelier": "Titre de l'atelier", "niveau": "Niveau de l'atelier",
		"participants": "Participants",
	},
}

func labelOf(k domain.Kind, name string) string {
	if l := fieldLabels[k][name]; l != "" {
		return l
	}
	return name
}

// rowsOf returns the labelled values of r that are set, in the domain's
// field order; only, when not nil, keeps those fields alone.
func rowsOf(person ident.ID, r domain.Record, only map[string]bool) []row {
	k := r.Kind()
	vals := valuesOf(person, r)
	var out []row
	for _, f := range domain.Fields(k) {
		if f.Num == domain.IDField || (only != nil && !only[f.Name]) {
			continue
		}
		label := fieldLabels[k][f.Name]
		v := vals[f.Name]
		if label == "" || v == "" {
			continue
		}
		out = append(out, row{label, v})
	}
	return out
}

// valuesOf writes the fields of r in French, by JSON name; empty when not
// set.
func valuesOf(person ident.ID, r domain.Record) map[string]string {
	m := map[string]string{}
	switch v := r.(type) {
	case *domain.Beneficiary:
		m["prenom"], m["nom"], m["telephone"], m["email"] = v.Prenom, v.Nom, v.Telephone, v.Email
		if v.AnneeNaissance != 0 {
			m["annee_naissance"] = strconv.Itoa(v.AnneeNaissance)
		}
		m["adresse"], m["notes"], m["commune"] = v.Adresse, v.Notes, commune(v.Commune)
		m["genre"], m["tranche_age"] = label(domain.Genres, v.Genre), label(domain.TranchesAge, v.TrancheAge)
		m["statut_social"], m["premier_accompagnement"] = label(domain.StatutsSociaux, v.StatutSocial), frDate(v.PremierAccompagnement)
		m["publics"] = labels(domain.Publics, v.Publics)
		m["equipement"], m["acces_internet"] = label(domain.Equipements, v.Equipement), label(domain.AccesInternet, v.AccesInternet)
	case *domain.Consent:
		m["finalites"], m["mode"], m["texte_version"] = labels(domain.Finalites, v.Finalites), label(domain.ModesConsentement, v.Mode), v.TexteVersion
		m["date"], m["mediateur"], m["retire_le"], m["retraits"] = frDate(v.Date), v.Mediateur, frDate(v.RetireLe), labels(domain.Finalites, v.Retraits)
	case *domain.Assessment:
		m["date"], m["autonomie_globale"] = frDate(v.Date), label(domain.Autonomies, v.AutonomieGlobale)
		var ds []string
		for _, c := range domain.DomainesCRCN.Codes {
			if lv, ok := v.Domaines[c.Code]; ok {
				ds = append(ds, c.Label+" : "+domain.NiveauxCRCN.Label(lv))
			}
		}
		m["domaines"] = strings.Join(ds, " ; ")
		m["besoins"], m["equipement"], m["acces_internet"] = labels(domain.Thematiques, v.Besoins), label(domain.Equipements, v.Equipement), label(domain.AccesInternet, v.AccesInternet)
		m["outil"], m["commentaire"], m["mediateur"], m["commune"] = label(domain.Outils, v.Outil), v.Commentaire, v.Mediateur, commune(v.Commune)
	case *domain.Activity:
		m["type"], m["date"], m["type_lieu"], m["commune"] = label(domain.TypesActivite, v.Type), frDate(v.Date), label(domain.TypesLieu, v.TypeLieu), commune(v.Commune)
		if v.Duree > 0 {
			m["duree"] = formatInt(v.Duree) + " min"
		}
		m["materiel"], m["thematiques"], m["demarches"] = labels(domain.Materiels, v.Materiel), labels(domain.Thematiques, v.Thematiques), labels(domain.Demarches, v.Demarches)
		m["precisions_demarche"], m["structure_partenaire"] = v.PrecisionsDemarche, label(domain.StructuresPartenaires, v.StructurePartenaire)
		if v.PassNumerique > 0 {
			m["pass_numerique"] = formatInt(v.PassNumerique)
		}
		m["notes"], m["mediateur"], m["vehicule"] = v.Notes, v.Mediateur, v.Vehicule
		if v.Arret != nil {
			m["arret"] = v.Arret.String()
		}
		m["autonomie"] = label(domain.Autonomies, v.Autonomie)
		if o := v.Orientation; o != nil {
			s := "orientée : " + yesNo(o.Oriente)
			if o.StructureDeRedirection != "" {
				s += ", vers : " + domain.StructuresRedirection.Label(o.StructureDeRedirection)
			}
			m["orientation"] = s
		}
		m["titre_atelier"], m["niveau"] = v.TitreAtelier, label(domain.Niveaux, v.Niveau)
		if p := v.Participants; p != nil {
			// Other participants are other people: only their number.
			s := formatInt(p.Total) + " participant(s)"
			if slices.Contains(p.Beneficiaires, person) {
				s += ", dont la personne"
			}
			m["participants"] = s
		}
	}
	return m
}

func label(l *domain.CodeList, code string) string {
	if code == "" {
		return ""
	}
	return l.Label(code)
}

// FileName is the name a document about person is saved under.
func FileName(person ident.ID, ext string) string {
	return fmt.Sprintf("acces-%s.%s", person, ext)
}
