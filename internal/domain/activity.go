package domain

import (
	"fmt"
	"slices"
	"strconv"

	"numeribus/internal/ident"
)

// Activity is one session of help: an individual accompaniment (help with
// an administrative procedure is one, with the theme
// aide_aux_demarches_administratives) or a collective workshop.
type Activity struct {
	ID                  ident.ID  `json:"id" cbor:"1,keyasint"`
	Type                string    `json:"type" cbor:"2,keyasint,omitempty"`
	Date                string    `json:"date" cbor:"3,keyasint,omitempty"`
	Duree               int       `json:"duree" cbor:"4,keyasint,omitempty"`
	TypeLieu            string    `json:"type_lieu" cbor:"5,keyasint,omitempty"`
	Commune             string    `json:"commune,omitempty" cbor:"6,keyasint,omitempty"`
	Materiel            []string  `json:"materiel,omitempty" cbor:"7,keyasint,omitempty"`
	Thematiques         []string  `json:"thematiques" cbor:"8,keyasint,omitempty"`
	Demarches           []string  `json:"demarches,omitempty" cbor:"9,keyasint,omitempty"`
	PrecisionsDemarche  string    `json:"precisions_demarche,omitempty" cbor:"10,keyasint,omitempty"`
	StructurePartenaire string    `json:"structure_partenaire,omitempty" cbor:"11,keyasint,omitempty"`
	PassNumerique       int       `json:"pass_numerique,omitempty" cbor:"12,keyasint,omitempty"`
	Notes               string    `json:"notes,omitempty" cbor:"13,keyasint,omitempty" personal:"true"`
	Mediateur           string    `json:"mediateur,omitempty" cbor:"14,keyasint,omitempty"`
	Vehicule            string    `json:"vehicule,omitempty" cbor:"15,keyasint,omitempty"`
	Arret               *ident.ID `json:"arret,omitempty" cbor:"16,keyasint,omitempty"`

	// Individual session only.
	Beneficiaire *ident.ID    `json:"beneficiaire,omitempty" cbor:"17,keyasint,omitempty"`
	Autonomie    string       `json:"autonomie,omitempty" cbor:"18,keyasint,omitempty"`
	Orientation  *Orientation `json:"orientation,omitempty" cbor:"19,keyasint,omitempty"`

	// Collective workshop only.
	TitreAtelier string        `json:"titre_atelier,omitempty" cbor:"20,keyasint,omitempty"`
	Niveau       string        `json:"niveau,omitempty" cbor:"21,keyasint,omitempty"`
	Participants *Participants `json:"participants,omitempty" cbor:"22,keyasint,omitempty"`
}

// Orientation is a referral of the person to another structure.
type Orientation struct {
	Oriente                bool   `json:"oriente" cbor:"1,keyasint,omitempty"`
	StructureDeRedirection string `json:"structure_de_redirection,omitempty" cbor:"2,keyasint,omitempty"`
}

// Participants of a workshop: followed beneficiaries by reference, plus
// anonymous counts that need no personal data.
type Participants struct {
	Beneficiaires  []ident.ID     `json:"beneficiaires,omitempty" cbor:"1,keyasint,omitempty"`
	Total          int            `json:"total" cbor:"2,keyasint,omitempty"`
	DejaAccompagne int            `json:"deja_accompagne,omitempty" cbor:"3,keyasint,omitempty"`
	Genre          map[string]int `json:"genre,omitempty" cbor:"4,keyasint,omitempty"`
	TrancheAge     map[string]int `json:"tranche_age,omitempty" cbor:"5,keyasint,omitempty"`
	StatutSocial   map[string]int `json:"statut_social,omitempty" cbor:"6,keyasint,omitempty"`
}

// MaxParticipants bounds a workshop's head count (a typo guard).
const MaxParticipants = 10000

// MaxDuree bounds a session's duration in minutes.
const MaxDuree = 24 * 60

func (*Activity) Kind() Kind                { return KindActivity }
func (a *Activity) RecordID() ident.ID      { return a.ID }
func (a *Activity) SetRecordID(id ident.ID) { a.ID = id }

// Accompagnements counts the activity as coordinators do: a session with
// one person is 1, a workshop with 10 participants is 10.
func (a *Activity) Accompagnements() int {
	if a.Type == "collectif" {
		if a.Participants == nil {
			return 0
		}
		return a.Participants.Total
	}
	return 1
}

// Normalize trims and sorts.
func (a *Activity) Normalize() {
	trim(&a.Type, &a.TypeLieu, &a.Commune, &a.PrecisionsDemarche, &a.StructurePartenaire,
		&a.Notes, &a.Mediateur, &a.Vehicule, &a.Autonomie, &a.TitreAtelier, &a.Niveau)
	normDate(&a.Date)
	a.Materiel = normSet(a.Materiel)
	a.Thematiques = normSet(a.Thematiques)
	a.Demarches = normSet(a.Demarches)
	if a.Participants != nil {
		p := a.Participants
		p.Beneficiaires = normIDs(p.Beneficiaires)
		p.Genre, p.TrancheAge, p.StatutSocial = normCounts(p.Genre), normCounts(p.TrancheAge), normCounts(p.StatutSocial)
	}
	if a.Orientation != nil && !a.Orientation.Oriente && a.Orientation.StructureDeRedirection == "" {
		a.Orientation = nil
	}
}

// Validate checks every field and the rules between them.
func (a *Activity) Validate(env Env) error {
	var c checker
	c.sizes(a)
	if c.required("type", a.Type) {
		c.code("type", TypesActivite, a.Type)
	}
	c.date("date", a.Date, true)
	if a.Duree <= 0 || a.Duree > MaxDuree {
		c.invalid("duree", strconv.Itoa(a.Duree), fmt.Sprintf("durée en minutes, entre 1 et %d", MaxDuree))
	}
	if c.required("type_lieu", a.TypeLieu) {
		c.code("type_lieu", TypesLieu, a.TypeLieu)
	}
	if a.TypeLieu != "a_distance" {
		if a.Commune == "" {
			c.add(Problem{Field: "commune", Code: ProblemRequired, Message: "commune obligatoire, sauf à distance"})
		}
	}
	c.commune(env, "commune", a.Commune)
	c.codes("materiel", Materiels, a.Materiel)
	if slices.Contains(a.Materiel, "aucun") && len(a.Materiel) > 1 {
		c.invalid("materiel", "aucun", "« Pas de matériel » exclut les autres choix")
	}
	if len(a.Thematiques) == 0 {
		c.add(Problem{Field: "thematiques", Code: ProblemRequired, Message: "au moins une thématique", Allowed: Thematiques.Allowed()})
	}
	c.codes("thematiques", Thematiques, a.Thematiques)
	c.codes("demarches", Demarches, a.Demarches)
	if len(a.Demarches) > 0 && !slices.Contains(a.Thematiques, ThemeDemarches) {
		c.notAllowed("demarches", "les démarches vont avec la thématique « Aide aux démarches administratives »")
	}
	c.code("structure_partenaire", StructuresPartenaires, a.StructurePartenaire)
	if a.PassNumerique < 0 {
		c.invalid("pass_numerique", strconv.Itoa(a.PassNumerique), "nombre de pass numériques positif ou nul")
	}
	if a.Arret != nil {
		c.ref(env, "arret", *a.Arret, KindTourStop)
	}
	switch a.Type {
	case "individuel":
		a.validateIndividuel(env, &c)
	case "collectif":
		a.validateCollectif(env, &c)
	}
	return c.err(KindActivity, a.ID)
}

func (a *Activity) validateIndividuel(env Env, c *checker) {
	if a.Beneficiaire != nil {
		c.ref(env, "beneficiaire", *a.Beneficiaire, KindBeneficiary)
	}
	c.code("autonomie", Autonomies, a.Autonomie)
	if o := a.Orientation; o != nil {
		c.code("orientation.structure_de_redirection", StructuresRedirection, o.StructureDeRedirection)
		if !o.Oriente && o.StructureDeRedirection != "" {
			c.invalid("orientation.structure_de_redirection", o.StructureDeRedirection, "structure indiquée sans orientation")
		}
	}
	if a.TitreAtelier != "" || a.Niveau != "" || a.Participants != nil {
		c.notAllowed("participants", "titre, niveau et participants sont réservés aux ateliers collectifs")
	}
}

func (a *Activity) validateCollectif(env Env, c *checker) {
	if a.Beneficiaire != nil || a.Autonomie != "" || a.Orientation != nil {
		c.notAllowed("beneficiaire", "bénéficiaire, autonomie et orientation sont réservés aux accompagnements individuels")
	}
	c.code("niveau", Niveaux, a.Niveau)
	p := a.Participants
	if p == nil || p.Total <= 0 {
		c.add(Problem{Field: "participants.total", Code: ProblemRequired, Message: "nombre de participants obligatoire (au moins 1)"})
		return
	}
	if p.Total > MaxParticipants {
		c.invalid("participants.total", strconv.Itoa(p.Total), fmt.Sprintf("au plus %d participants", MaxParticipants))
	}
	if p.DejaAccompagne < 0 || p.DejaAccompagne > p.Total {
		c.invalid("participants.deja_accompagne", strconv.Itoa(p.DejaAccompagne), "entre 0 et le total")
	}
	if len(p.Beneficiaires) > p.Total {
		c.invalid("participants.beneficiaires", strconv.Itoa(len(p.Beneficiaires)), "plus de bénéficiaires suivis que de participants")
	}
	for _, id := range p.Beneficiaires {
		c.ref(env, "participants.beneficiaires", id, KindBeneficiary)
	}
	for _, br := range []struct {
		field string
		list  *CodeList
		m     map[string]int
	}{{"participants.genre", Genres, p.Genre}, {"participants.tranche_age", TranchesAge, p.TrancheAge}, {"participants.statut_social", StatutsSociaux, p.StatutSocial}} {
		sum := 0
		keys := make([]string, 0, len(br.m))
		for k := range br.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			c.code(br.field, br.list, k)
			if br.m[k] < 0 {
				c.invalid(br.field+"."+k, strconv.Itoa(br.m[k]), "effectif négatif")
			}
			sum += br.m[k]
		}
		if sum > p.Total {
			c.invalid(br.field, strconv.Itoa(sum), "la répartition dépasse le total des participants")
		}
	}
}
