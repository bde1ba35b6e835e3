package report

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"numeribus/internal/domain"
)

// The « format La Coop » export: Numéribus activity laid out as La Coop
// de la médiation numérique (the national tool most mediators also use)
// exports its activities, so that a coordinator can put the bus's
// activity beside the fixed places' in one sheet. Like La Coop's file:
// one row per accompagnement (a workshop of 10 participants is 10 rows,
// "1/10" to "10/10" in Participants), labels rather than codes, several
// labels in one cell one a line, the export's information and filters
// above the table, La Coop's columns in La Coop's order and spelling
// (its apostrophes are typographic: « Nom de l’atelier »).
//
// What Numéribus does not record stays empty (docs/EXPORTS.md): the
// mediator's Rôle (La Coop tells conseillers numériques from other
// mediators, the hub does not know), the place's Adresse (a stop has a
// place name and a commune), Tags (Numéribus has none). The mediator's
// name is the one the laptop recorded, split at its first space (the
// agent asks for « votre prénom et l'initiale de votre nom »). A commune
// with several postal codes shows them all. A workshop's anonymous
// participants are spread over its rows from its head counts by genre,
// age band and status, in list order, then « Non communiqué »: each
// column sums to the workshop's counts, though one row's combination is
// not one person's (La Coop does the same, at random, for its own
// anonymous participants).

// LaCoopColumns are the columns of the « format La Coop » export, as La
// Coop names them, in its order.
var LaCoopColumns = []string{
	"Date", "Enregistré le", "Dernière modification le",
	"Prénom du médiateur", "Nom du médiateur", "Rôle",
	"Type", "Participants", "Canaux d’accompagnement", "Nom du lieu", "Adresse", "Commune", "Code postal", "Code Insee",
	"Durée (min)", "Nom de l’atelier", "Matériel numérique utilisé", "Thématique(s) d’accompagnement", "Tags",
	"Nom de la démarche administrative", "Niveau d’autonomie (ou de l’atelier)", "Bénéficiaire réorienté",
	"Structure de redirection",
	"Commune du bénéficiaire", "Code postal du bénéficiaire", "Code Insee du bénéficiaire",
	"Genre du bénéficiaire", "Tranche d’âge du bénéficiaire", "Statut du bénéficiaire",
	"ID CRA",
}

// laCoopLabels gives, for each code list of the export (by its domain
// name), the label La Coop writes for each Numéribus code: the one table
// of the format. Codes are La Coop's API values already (shared/DOMAIN.md
// reuses them); most labels are ours too, a few differ.
//
// Source: github.com/inclusion-numerique/coop-mediation-numerique,
// apps/web/src/features/activites/use-cases/cra/fields/{type-activite,
// type-lieu,materiel,thematique}.ts, cra/individuel/fields/{autonomie,
// structures-redirection}.ts, cra/collectif/fields/niveau-atelier.ts and
// features/beneficiaire/domain/{genre,tranche-age,statut-social}.ts, as
// of December 2026. La Coop keeps the 11 démarche domains inside its
// thématiques (one list of 30): "thematiques" and "demarches" here fill
// one column.
var laCoopLabels = map[string]map[string]string{
	"type": {
		"individuel": "Accompagnement individuel",
		"collectif":  "Atelier collectif",
	},
	"type_lieu": {
		"lieu_activite": "Lieu d’activité",
		"domicile":      "À domicile",
		"a_distance":    "À distance",
		"autre":         "Autre lieu",
	},
	"materiel": {
		"ordinateur": "Ordinateur",
		"telephone":  "Téléphone",
		"tablette":   "Tablette",
		"autre":      "Autre",
		"aucun":      "Pas de matériel",
	},
	"thematiques": {
		"diagnostic_numerique":               "Diagnostic numérique",
		"prendre_en_main_du_materiel":        "Prendre en main du matériel",
		"maintenance_de_materiel":            "Maintenance de matériel",
		"gere_ses_contenus_numeriques":       "Gérer ses contenus numériques",
		"navigation_sur_internet":            "Navigation sur internet",
		"email":                              "E-mail",
		"bureautique":                        "Bureautique",
		"reseaux_sociaux":                    "Réseaux sociaux communication",
		"sante":                              "Santé",
		"banque_et_achats_en_ligne":          "Banque et achats en ligne",
		"entrepreneuriat":                    "Accompagner un professionnel",
		"insertion_professionnelle":          "Insertion professionnelle",
		"securite_numerique":                 "Prévention en sécurité numérique",
		"parentalite":                        "Parentalité",
		"scolarite_et_numerique":             "Scolarité et numérique",
		"creer_avec_le_numerique":            "Créer avec le numérique",
		"culture_numerique":                  "Culture numérique",
		"intelligence_artificielle":          "Intelligence artificielle (IA)",
		"aide_aux_demarches_administratives": "Aide aux démarches administratives",
	},
	"demarches": {
		"papiers_elections_citoyennete": "Papiers - Élections - Citoyenneté",
		"famille_scolarite":             "Famille - Scolarité",
		"social_sante":                  "Social - Santé",
		"travail_formation":             "Travail - Formation - Entreprise",
		"logement":                      "Logement",
		"transports_mobilite":           "Transports - Mobilité",
		"argent_impots":                 "Argent - Impôts",
		"justice":                       "Justice",
		"etrangers_europe":              "Étrangers - Europe",
		"loisirs_sports_culture":        "Loisirs - Sports - Culture",
		"associations":                  "Associations",
	},
	"autonomie": {
		"entierement_accompagne": "Avec guidage",
		"partiellement_autonome": "Autonome avec guidage en cas de besoin",
		"autonome":               "Autonome",
	},
	"niveau": {
		"debutant":      "Débutant",
		"intermediaire": "Intermédiaire",
		"avance":        "Avancé",
	},
	"structure_de_redirection": {
		"administration":                     "Administration (mairie, préfecture…)",
		"mediation_numerique":                "Autre structure de médiation numérique",
		"operateur_ou_organisme_en_charge":   "Opérateur ou organisme en charge de la démarche administrative",
		"aide_sociale":                       "Structure d’aide sociale (maison des solidarités, centre social…)",
		"insertion_professionnelle":          "Structure d’insertion professionnelle (France Travail, mission locale, chambre de commerce…)",
		"aide_aux_demarches_administratives": "Structure d’aide aux démarches administratives (France Services…)",
		"autre":                              "Autre",
	},
	"genre": {
		"masculin":       "Masculin",
		"feminin":        "Féminin",
		"non_communique": "Non communiqué",
	},
	"tranche_age": {
		"moins_de_douze":          "Moins de 12 ans",
		"douze_dix_huit":          "12 - 17 ans",
		"dix_huit_vingt_quatre":   "18 - 24 ans",
		"vingt_cinq_trente_neuf":  "25 - 39 ans",
		"quarante_cinquante_neuf": "40 - 59 ans",
		"soixante_soixante_neuf":  "60 - 69 ans",
		"soixante_dix_plus":       "70 ans et plus",
		"non_communique":          "Non communiqué",
	},
	"statut_social": {
		"scolarise":      "Scolarisé",
		"sans_emploi":    "Sans emploi",
		"en_emploi":      "En emploi",
		"retraite":       "Retraité",
		"non_communique": "Non communiqué ou hétérogène",
	},
}

// laCoopLists are the domain lists laCoopLabels covers (a test checks
// every code of each has a label).
var laCoopLists = []*domain.CodeList{domain.TypesActivite, domain.TypesLieu, domain.Materiels, domain.Thematiques,
	domain.Demarches, domain.Autonomies, domain.Niveaux, domain.StructuresRedirection, domain.Genres, domain.TranchesAge,
	domain.StatutsSociaux}

// laCoop returns La Coop's label of code in list, ours when La Coop has
// none (a code Numéribus added), "" for no code.
func laCoop(list *domain.CodeList, code string) string {
	if code == "" {
		return ""
	}
	if l, ok := laCoopLabels[list.Name][code]; ok {
		return l
	}
	return list.Label(code)
}

func laCoopAll(list *domain.CodeList, codes []string) []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = laCoop(list, c)
	}
	return out
}

// spread hands out a workshop's anonymous head counts of one criterion
// one participant at a time: the counts in the list's order, then
// non_communique for the rest.
type spread struct {
	list   *domain.CodeList
	counts []int // indexed like list
	i, n   int
}

func (s *spread) next() string {
	for s.i < len(s.counts) && s.i < len(s.list.Codes) {
		if s.n < s.counts[s.i] {
			s.n++
			return s.list.Codes[s.i].Code
		}
		s.i, s.n = s.i+1, 0
	}
	return "non_communique"
}

// laCoopRows calls fn with the cells of each accompagnement of r, in
// LaCoopColumns' order, in dst, which it returns for the next activity.
func laCoopRows(dst []cell, r *exportRow, loc *time.Location, fn func([]cell) error) ([]cell, error) {
	a := &r.ActivityFact
	collectif := a.Type == "collectif"
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format("02/01/2006 à 15:04")
	}
	created, modified := stamp(r.Created()), stamp(r.Detail.Modified)
	if modified == created {
		modified = "" // La Coop leaves it empty for a record never changed
	}
	first, last := splitName(a.Mediateur)
	communeNom, postaux := "", []string(nil)
	if c, ok := communeOf(a.Commune); ok {
		communeNom, postaux = c.Nom, c.CodesPostaux
	}
	themes := laCoopAll(domain.Thematiques, Thematiques.CodesOf(a.Thematiques))
	themes = append(themes, laCoopAll(domain.Demarches, Demarches.CodesOf(a.Demarches))...)
	niveau, oriente := laCoop(domain.Autonomies, a.Autonomie), textCell(yesNo(a.Oriente))
	if collectif {
		niveau, oriente = laCoop(domain.Niveaux, a.Niveau), cell{}
	}
	common := []cell{
		dayCell(a.Day), textCell(created), textCell(modified),
		textCell(first), textCell(last), {},
		textCell(laCoop(domain.TypesActivite, a.Type)), {}, textCell(laCoop(domain.TypesLieu, a.TypeLieu)),
		textCell(r.Detail.Lieu), {}, textCell(communeNom), listCell(postaux), textCell(a.Commune),
		intCell(a.Duree), textCell(r.Detail.TitreAtelier),
		listCell(laCoopAll(domain.Materiels, Materiels.CodesOf(a.Materiel))), listCell(themes), {},
		textCell(r.Detail.PrecisionsDemarche), textCell(niveau), oriente,
		textCell(laCoop(domain.StructuresRedirection, a.StructureRedirection)),
	}
	const participants = 7 // index of "Participants" in common
	person := func(b *BeneficiaryFact, genre, age, statut string) []cell {
		var nom, insee string
		var cps []string
		if b != nil {
			genre, age, statut, insee = b.Genre, b.TrancheAge, b.StatutSocial, b.Commune
			if c, ok := communeOf(b.Commune); ok {
				nom, cps = c.Nom, c.CodesPostaux
			}
		}
		orNC := func(s string) string {
			if s == "" {
				return "non_communique"
			}
			return s
		}
		return []cell{textCell(nom), listCell(cps), textCell(insee),
			textCell(laCoop(domain.Genres, orNC(genre))), textCell(laCoop(domain.TranchesAge, orNC(age))),
			textCell(laCoop(domain.StatutsSociaux, orNC(statut)))}
	}
	row := func(part cell, who []cell) error {
		dst = append(dst[:0], common...)
		dst[participants] = part
		dst = append(dst, who...)
		return fn(append(dst, textCell(a.ID.String())))
	}
	if !collectif {
		return dst, row(intCell(1), person(r.Person, "", "", ""))
	}
	n := a.Participants
	genres := spread{list: domain.Genres, counts: a.Genres}
	ages := spread{list: domain.TranchesAge, counts: a.TranchesAge}
	statuts := spread{list: domain.StatutsSociaux, counts: a.StatutsSociaux}
	for i := range n {
		part := intCell(1)
		if n > 1 {
			part = textCell(strconv.Itoa(i+1) + "/" + strconv.Itoa(n))
		}
		var who []cell
		if i < len(r.Followed) {
			who = person(r.Followed[i], "", "", "")
		} else {
			who = person(nil, genres.next(), ages.next(), statuts.next())
		}
		if err := row(part, who); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// WriteLaCoopXLSX writes the activities of what f asks within scope s
// in the « format La Coop » (see above), streaming as the other exports.
func WriteLaCoopXLSX(ctx context.Context, w io.Writer, src Source, f Filter, s Scope, o Options, x ExportInfo) error {
	q, err := exportQuery(f, s, o)
	if err != nil {
		return err
	}
	sums, err := src.Sums(ctx, q)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	ctx = WithFactsAsIs(ctx) // brought up to date by Sums
	loc := x.loc()
	at := x.At.In(loc)
	line := func(label string, v cell) topRow { return topRow{cells: []cell{textCell(label), v}} }
	top := []topRow{
		{cells: []cell{textCell("Informations export")}, title: true},
		line("Exporté par", textCell(x.By)),
		line("Rôle", textCell(capitalize(x.Role))),
		line("Total", intCell(sums.Participants)),
		line("Date d’export", textCell(at.Format("02/01/2006"))),
		line("Heure d’export", textCell(at.Format("15:04"))),
		{},
		{cells: []cell{textCell("Filtres")}, title: true},
		line("Source", textCell("Numéribus Sync")),
	}
	for _, l := range describeFilter(applied(f, q)) {
		top = append(top, line(l.Label, textCell(l.Value)))
	}
	wide := map[string]float64{"Enregistré le": 18, "Dernière modification le": 18, "Type": 26, "Canaux d’accompagnement": 18,
		"Nom du lieu": 24, "Commune": 22, "Nom de l’atelier": 28, "Matériel numérique utilisé": 18,
		"Thématique(s) d’accompagnement": 36, "Nom de la démarche administrative": 28,
		"Niveau d’autonomie (ou de l’atelier)": 26, "Structure de redirection": 40, "Commune du bénéficiaire": 22,
		"Tranche d’âge du bénéficiaire": 16, "Statut du bénéficiaire": 18, "ID CRA": 38}
	wrapped := []string{"Code postal", "Matériel numérique utilisé", "Thématique(s) d’accompagnement", "Structure de redirection", "Code postal du bénéficiaire"}
	var widths []float64
	var wrap []bool
	for _, c := range LaCoopColumns {
		wd, ok := wide[c]
		if !ok {
			wd = 14
		}
		widths = append(widths, wd)
		wrap = append(wrap, slices.Contains(wrapped, c))
	}
	b, err := newBook(sheetSpec{name: "Activités", table: "Activites", top: top, cols: LaCoopColumns, widths: widths, wrap: wrap}, loc)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var cells []cell
	err = eachActivity(ctx, src, q, func(r *exportRow) (err error) {
		cells, err = laCoopRows(cells, r, loc, b.add)
		return err
	})
	if err != nil {
		b.close()
		return fmt.Errorf("export: %w", err)
	}
	if err := b.finish(w); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return ""
	}
	r := []rune(s)
	return strings.ToUpper(string(r[0])) + string(r[1:])
}
