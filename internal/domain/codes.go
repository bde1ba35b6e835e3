package domain

import "strings"

// Code is one value of a code list with its French label. Codes are
// lower_snake_case ASCII and never change once stored; labels are shown to
// people and may be reworded.
type Code struct {
	Code  string
	Label string
}

// CodeList is one closed list of codes (shared/DOMAIN.md). Each list lives
// here once and drives validation, the UI's choices, exports and the docs.
type CodeList struct {
	Name  string // the field it belongs to, e.g. "thematiques"
	Codes []Code
	index map[string]int
}

func newList(name string, codes ...Code) *CodeList {
	l := &CodeList{Name: name, Codes: codes, index: make(map[string]int, len(codes))}
	for i, c := range codes {
		l.index[c.Code] = i
	}
	return l
}

// Has reports whether code belongs to the list.
func (l *CodeList) Has(code string) bool { _, ok := l.index[code]; return ok }

// Label returns the French label of code, or code itself when unknown.
func (l *CodeList) Label(code string) string {
	if i, ok := l.index[code]; ok {
		return l.Codes[i].Label
	}
	return code
}

// Allowed returns the codes of the list in order.
func (l *CodeList) Allowed() []string {
	out := make([]string, len(l.Codes))
	for i, c := range l.Codes {
		out[i] = c.Code
	}
	return out
}

// String lists the allowed codes, comma-separated, for error messages.
func (l *CodeList) String() string { return strings.Join(l.Allowed(), ", ") }

// The code lists of shared/DOMAIN.md.
var (
	TypesActivite = newList("type",
		Code{"individuel", "Accompagnement individuel"},
		Code{"collectif", "Atelier collectif"},
	)
	TypesLieu = newList("type_lieu",
		Code{"lieu_activite", "Lieu d'activité"},
		Code{"domicile", "À domicile"},
		Code{"a_distance", "À distance"},
		Code{"autre", "Autre lieu"},
	)
	Materiels = newList("materiel",
		Code{"ordinateur", "Ordinateur"},
		Code{"telephone", "Téléphone"},
		Code{"tablette", "Tablette"},
		Code{"autre", "Autre matériel"},
		Code{"aucun", "Pas de matériel"},
	)
	Thematiques = newList("thematiques",
		Code{"diagnostic_numerique", "Diagnostic numérique"},
		Code{"prendre_en_main_du_materiel", "Prendre en main du matériel"},
		Code{"maintenance_de_materiel", "Maintenance de matériel"},
		Code{"gere_ses_contenus_numeriques", "Gérer ses contenus numériques"},
		Code{"navigation_sur_internet", "Navigation sur internet"},
		Code{"email", "E-mail"},
		Code{"bureautique", "Bureautique"},
		Code{"reseaux_sociaux", "Réseaux sociaux communication"},
		Code{"sante", "Santé"},
		Code{"banque_et_achats_en_ligne", "Banque et achats en ligne"},
		Code{"entrepreneuriat", "Entrepreneuriat"},
		Code{"insertion_professionnelle", "Insertion professionnelle"},
		Code{"securite_numerique", "Prévention en sécurité numérique"},
		Code{"parentalite", "Parentalité"},
		Code{"scolarite_et_numerique", "Scolarité et numérique"},
		Code{"creer_avec_le_numerique", "Créer avec le numérique"},
		Code{"culture_numerique", "Culture numérique"},
		Code{"intelligence_artificielle", "Intelligence artificielle"},
		Code{ThemeDemarches, "Aide aux démarches administratives"},
	)
	Demarches = newList("demarches",
		Code{"papiers_elections_citoyennete", "Papiers - Élections - Citoyenneté"},
		Code{"famille_scolarite", "Famille - Scolarité"},
		Code{"social_sante", "Social - Santé"},
		Code{"travail_formation", "Travail - Formation"},
		Code{"logement", "Logement"},
		Code{"transports_mobilite", "Transports - Mobilité"},
		Code{"argent_impots", "Argent - Impôts"},
		Code{"justice", "Justice"},
		Code{"etrangers_europe", "Étrangers - Europe"},
		Code{"loisirs_sports_culture", "Loisirs - Sports - Culture"},
		Code{"associations", "Associations"},
	)
	StructuresPartenaires = newList("structure_partenaire",
		Code{"caf", "CAF"},
		Code{"cpam", "CPAM"},
		Code{"carsat", "CARSAT"},
		Code{"dgfip", "DGFIP / impôts"},
		Code{"france_travail", "France Travail"},
		Code{"ants", "ANTS"},
		Code{"prefecture", "Préfecture"},
		Code{"msa", "MSA"},
		Code{"mairie", "Mairie"},
		Code{"ccas", "CCAS"},
		Code{"mission_locale", "Mission locale"},
		Code{"france_services", "France Services"},
		Code{"autre", "Autre"},
	)
	Autonomies = newList("autonomie",
		Code{"entierement_accompagne", "Avec guidage / entièrement accompagné"},
		Code{"partiellement_autonome", "Partiellement autonome"},
		Code{"autonome", "Autonome"},
	)
	StructuresRedirection = newList("structure_de_redirection",
		Code{"administration", "Administration"},
		Code{"mediation_numerique", "Médiation numérique"},
		Code{"operateur_ou_organisme_en_charge", "Opérateur ou organisme en charge"},
		Code{"aide_sociale", "Aide sociale"},
		Code{"insertion_professionnelle", "Insertion professionnelle"},
		Code{"aide_aux_demarches_administratives", "Aide aux démarches administratives"},
		Code{"autre", "Autre"},
	)
	Niveaux = newList("niveau",
		Code{"debutant", "Débutant"},
		Code{"intermediaire", "Intermédiaire"},
		Code{"avance", "Avancé"},
	)
	Genres = newList("genre",
		Code{"masculin", "Masculin"},
		Code{"feminin", "Féminin"},
		Code{"non_communique", "Non communiqué"},
	)
	TranchesAge = newList("tranche_age",
		Code{"moins_de_douze", "-12 ans"},
		Code{"douze_dix_huit", "12-17 ans"},
		Code{"dix_huit_vingt_quatre", "18-24 ans"},
		Code{"vingt_cinq_trente_neuf", "25-39 ans"},
		Code{"quarante_cinquante_neuf", "40-59 ans"},
		Code{"soixante_soixante_neuf", "60-69 ans"},
		Code{"soixante_dix_plus", "70 ans et plus"},
		Code{"non_communique", "Non communiqué"},
	)
	StatutsSociaux = newList("statut_social",
		Code{"scolarise", "Scolarisé"},
		Code{"sans_emploi", "Sans emploi"},
		Code{"en_emploi", "En emploi"},
		Code{"retraite", "Retraité"},
		Code{"non_communique", "Non communiqué"},
	)
	Publics = newList("publics",
		Code{"beneficiaire_rsa", "Bénéficiaire du RSA"},
		Code{"jeune_moins_26", "Jeune de moins de 26 ans"},
		Code{"senior", "Senior"},
		Code{"situation_handicap", "Personne en situation de handicap (RQTH/AAH)"},
		Code{"migrant_allophone", "Personne migrante / allophone"},
		Code{"gens_du_voyage", "Gens du voyage"},
	)
	Equipements = newList("equipement",
		Code{"aucun", "Aucun équipement"},
		Code{"usage_loisirs", "Usage loisirs"},
		Code{"usage_loisirs_et_pro", "Usage loisirs et professionnel"},
	)
	AccesInternet = newList("acces_internet",
		Code{"oui", "Oui"},
		Code{"non", "Non"},
		Code{"mobile_seulement", "Mobile seulement"},
	)
	DomainesCRCN = newList("domaines",
		Code{"information_donnees", "Information et données"},
		Code{"communication_collaboration", "Communication et collaboration"},
		Code{"creation_contenu", "Création de contenus"},
		Code{"protection_securite", "Protection et sécurité"},
		Code{"environnement_numerique", "Environnement numérique"},
	)
	NiveauxCRCN = newList("niveau_domaine",
		Code{"0", "Pas de compétence"},
		Code{"1", "Compétences de base"},
		Code{"2", "Plus que des compétences de base"},
		Code{"non_evalue", "Non évalué"},
	)
	Outils = newList("outil",
		Code{"abc_diag_pix", "ABC Diag (Pix)"},
		Code{"pix", "Pix"},
		Code{"grille_interne", "Grille interne"},
		Code{"autre", "Autre"},
	)
	Finalites = newList("finalites",
		Code{FinaliteSuivi, "Suivi nominatif (garder le nom et les coordonnées pour suivre la personne)"},
		Code{FinaliteDiagnostic, "Diagnostic (enregistrer une évaluation des besoins)"},
		Code{FinalitePartage, "Partage au réseau (visible des coordinateurs de l'équipe)"},
		Code{FinaliteOrientation, "Orientation vers un partenaire (transmettre les coordonnées)"},
	)
	ModesConsentement = newList("mode",
		Code{"ecrit", "Écrit (formulaire signé)"},
		Code{"oral_trace", "Oral, tracé par le médiateur"},
		Code{"sms", "SMS"},
	)
)

// Codes with a rule attached to them.
const (
	ThemeDemarches      = "aide_aux_demarches_administratives"
	FinaliteSuivi       = "suivi_nominatif"
	FinaliteDiagnostic  = "diagnostic"
	FinalitePartage     = "partage_reseau"
	FinaliteOrientation = "orientation_partenaire"
)

// DureesPresets are the durations (minutes) the UI offers as buttons.
var DureesPresets = []int{15, 30, 45, 60, 90, 120}

// CodeLists returns every code list, for docs and the UI.
func CodeLists() []*CodeList {
	return []*CodeList{TypesActivite, TypesLieu, Materiels, Thematiques, Demarches,
		StructuresPartenaires, Autonomies, StructuresRedirection, Niveaux, Genres,
		TranchesAge, StatutsSociaux, Publics, Equipements, AccesInternet, DomainesCRCN,
		NiveauxCRCN, Outils, Finalites, ModesConsentement}
}
