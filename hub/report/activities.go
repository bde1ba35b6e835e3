package report

import "numeribus/internal/domain"

// The activity export (activites.csv, activites.xlsx): one line per
// activity, French headers, labels rather than codes (INSEE codes aside,
// which are what people join communes on). docs/EXPORTS.md lists the
// columns; they only ever grow at the end of a group, never move.

// breakdown is one anonymous head-count criterion of workshops, with the
// codes of its columns in a fixed order (not the domain list's, which the
// UI may reorder).
type breakdown struct {
	list  *domain.CodeList
	codes []string
	// unknown names the column of non_communique, whose label the three
	// lists share.
	unknown string
	of      func(*ActivityFact) []int
}

var breakdowns = []breakdown{
	{domain.Genres, []string{"masculin", "feminin", "non_communique"}, "genre non communiqué",
		func(a *ActivityFact) []int { return a.Genres }},
	{domain.TranchesAge, []string{"moins_de_douze", "douze_dix_huit", "dix_huit_vingt_quatre", "vingt_cinq_trente_neuf",
		"quarante_cinquante_neuf", "soixante_soixante_neuf", "soixante_dix_plus", "non_communique"}, "âge non communiqué",
		func(a *ActivityFact) []int { return a.TranchesAge }},
	{domain.StatutsSociaux, []string{"scolarise", "sans_emploi", "en_emploi", "retraite", "non_communique"}, "statut non communiqué",
		func(a *ActivityFact) []int { return a.StatutsSociaux }},
}

// count returns the head count of code in a workshop's breakdown (its
// slice is indexed like the domain list).
func (b breakdown) count(a *ActivityFact, code string) int {
	counts := b.of(a)
	for i, c := range b.list.Codes {
		if c.Code == code && i < len(counts) {
			return counts[i]
		}
	}
	return 0
}

// ActivityColumns are the headers of the activity export, in order.
var ActivityColumns = func() []string {
	cols := []string{
		"Identifiant", "Date", "Enregistré le", "Dernière modification le", "Type", "Durée (min)",
		"Type de lieu", "Nom du lieu", "Code Insee", "Commune", "Département",
		"Véhicule", "Poste", "Équipe", "Médiateur",
		"Thématiques", "Démarches", "Précisions sur la démarche", "Matériel", "Structure partenaire",
		"Autonomie", "Orienté", "Structure de redirection",
		"Titre de l'atelier", "Niveau de l'atelier", "Accompagnements", "Participants suivis", "Participants déjà accompagnés",
	}
	for _, b := range breakdowns {
		for _, c := range b.codes {
			l := b.list.Label(c)
			if c == "non_communique" {
				l = b.unknown
			}
			cols = append(cols, "Participants – "+l)
		}
	}
	return append(cols, "Pass numériques",
		"Genre du bénéficiaire", "Tranche d'âge du bénéficiaire", "Statut social du bénéficiaire",
		"Code Insee du bénéficiaire", "Commune du bénéficiaire")
}()

// listColumns are the columns of ActivityColumns that may hold several
// labels (one a line in XLSX).
var listColumns = []string{"Thématiques", "Démarches", "Matériel"}

// activityCells appends to dst the cells of r in ActivityColumns' order.
func activityCells(dst []cell, r *exportRow) []cell {
	a := &r.ActivityFact
	communeNom := ""
	if c, ok := communeOf(a.Commune); ok {
		communeNom = c.Nom
	}
	collectif := a.Type == "collectif"
	ifWorkshop := func(n int) cell {
		if !collectif {
			return cell{}
		}
		return intCell(n)
	}
	oriente := cell{}
	if !collectif {
		oriente = textCell(yesNo(a.Oriente))
	}
	dst = append(dst,
		textCell(a.ID.String()), dayCell(a.Day), timeCell(r.Created()), timeCell(r.Detail.Modified),
		textCell(label(domain.TypesActivite, a.Type)), intCell(a.Duree),
		textCell(label(domain.TypesLieu, a.TypeLieu)), textCell(r.Detail.Lieu), textCell(a.Commune), textCell(communeNom),
		textCell(departementName(a.Departement)),
		textCell(a.Vehicule), textCell(a.Device), textCell(a.Team), textCell(a.Mediateur),
		listCell(labelsOf(domain.Thematiques, Thematiques.CodesOf(a.Thematiques))),
		listCell(labelsOf(domain.Demarches, Demarches.CodesOf(a.Demarches))),
		textCell(r.Detail.PrecisionsDemarche),
		listCell(labelsOf(domain.Materiels, Materiels.CodesOf(a.Materiel))),
		textCell(label(domain.StructuresPartenaires, a.StructurePartenaire)),
		textCell(label(domain.Autonomies, a.Autonomie)), oriente,
		textCell(label(domain.StructuresRedirection, a.StructureRedirection)),
		textCell(r.Detail.TitreAtelier), textCell(label(domain.Niveaux, a.Niveau)),
		intCell(a.Participants), ifWorkshop(len(a.Beneficiaires)), ifWorkshop(a.DejaAccompagne))
	for _, b := range breakdowns {
		for _, c := range b.codes {
			dst = append(dst, ifWorkshop(b.count(a, c)))
		}
	}
	dst = append(dst, intCell(a.PassNumerique))
	if p := r.Person; p != nil {
		bc := ""
		if c, ok := communeOf(p.Commune); ok {
			bc = c.Nom
		}
		return append(dst, textCell(label(domain.Genres, p.Genre)), textCell(label(domain.TranchesAge, p.TrancheAge)),
			textCell(label(domain.StatutsSociaux, p.StatutSocial)), textCell(p.Commune), textCell(bc))
	}
	return append(dst, cell{}, cell{}, cell{}, cell{}, cell{})
}

func yesNo(b bool) string {
	if b {
		return "Oui"
	}
	return "Non"
}

func label(l *domain.CodeList, code string) string {
	if code == "" {
		return ""
	}
	return l.Label(code)
}

func labelsOf(l *domain.CodeList, codes []string) []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = l.Label(c)
	}
	return out
}
