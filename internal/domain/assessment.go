package domain

import (
	"slices"

	"numeribus/internal/ident"
)

// Assessment is a needs assessment (diagnostic des compétences et besoins)
// of one beneficiary on one date, repeated over time so that progress
// shows. It is personal data: it needs a consent covering diagnostic, and
// an erasure removes the comment and the link to the person, leaving only
// anonymous scores for the statistics.
type Assessment struct {
	ID           ident.ID `json:"id" cbor:"1,keyasint"`
	Beneficiaire ident.ID `json:"beneficiaire" cbor:"2,keyasint,omitempty" personal:"true"`
	Date         string   `json:"date" cbor:"3,keyasint,omitempty"`
	// Domaines maps each CRCN domain to "0", "1", "2" or "non_evalue".
	Domaines         map[string]string `json:"domaines,omitempty" cbor:"4,keyasint,omitempty"`
	AutonomieGlobale string            `json:"autonomie_globale,omitempty" cbor:"5,keyasint,omitempty"`
	Besoins          []string          `json:"besoins,omitempty" cbor:"6,keyasint,omitempty"`
	Equipement       string            `json:"equipement,omitempty" cbor:"7,keyasint,omitempty"`
	AccesInternet    string            `json:"acces_internet,omitempty" cbor:"8,keyasint,omitempty"`
	Outil            string            `json:"outil,omitempty" cbor:"9,keyasint,omitempty"`
	Commentaire      string            `json:"commentaire,omitempty" cbor:"10,keyasint,omitempty" personal:"true"`
	Mediateur        string            `json:"mediateur,omitempty" cbor:"11,keyasint,omitempty"`
	Commune          string            `json:"commune,omitempty" cbor:"12,keyasint,omitempty"`
}

func (*Assessment) Kind() Kind                { return KindAssessment }
func (a *Assessment) RecordID() ident.ID      { return a.ID }
func (a *Assessment) SetRecordID(id ident.ID) { a.ID = id }

// Normalize trims and sorts.
func (a *Assessment) Normalize() {
	trim(&a.AutonomieGlobale, &a.Equipement, &a.AccesInternet, &a.Outil, &a.Commentaire, &a.Mediateur, &a.Commune)
	normDate(&a.Date)
	a.Besoins = normSet(a.Besoins)
	if len(a.Domaines) == 0 {
		a.Domaines = nil
	}
}

// Validate checks the codes and the diagnostic consent.
func (a *Assessment) Validate(env Env) error {
	var c checker
	c.sizes(a)
	c.ref(env, "beneficiaire", a.Beneficiaire, KindBeneficiary)
	c.date("date", a.Date, true)
	keys := make([]string, 0, len(a.Domaines))
	for k := range a.Domaines {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, d := range keys {
		if !DomainesCRCN.Has(d) {
			c.add(Problem{Field: "domaines", Value: d, Code: ProblemUnknownCode, Message: "domaine CRCN inconnu", Allowed: DomainesCRCN.Allowed()})
			continue
		}
		if v := a.Domaines[d]; v != "" && !NiveauxCRCN.Has(v) { // the field's name made only for its problem
			c.code("domaines."+d, NiveauxCRCN, v)
		}
	}
	if !a.assessed() {
		c.add(Problem{Field: "domaines", Code: ProblemRequired,
			Message: "diagnostic vide : évaluez au moins un domaine, l'autonomie globale ou un besoin"})
	}
	c.code("autonomie_globale", Autonomies, a.AutonomieGlobale)
	c.codes("besoins", Thematiques, a.Besoins)
	c.code("equipement", Equipements, a.Equipement)
	c.code("acces_internet", AccesInternet, a.AccesInternet)
	c.code("outil", Outils, a.Outil)
	c.commune(env, "commune", a.Commune)
	if !a.Beneficiaire.IsZero() && env != nil && env.KindOf(a.Beneficiaire) == KindBeneficiary &&
		!env.ActiveFinalites(a.Beneficiaire)[FinaliteDiagnostic] {
		c.add(Problem{Field: "beneficiaire", Code: ProblemConsentRequired,
			Message: "diagnostic sans consentement « diagnostic » de la personne"})
	}
	return c.err(KindAssessment, a.ID)
}

// assessed reports whether a assesses anything: a domain scored, the
// overall autonomy, or a need. An assessment of nothing (everything « Non
// évalué ») is not recorded.
func (a *Assessment) assessed() bool {
	for d := range a.Domaines {
		if _, ok := a.Score(d); ok {
			return true
		}
	}
	return a.AutonomieGlobale != "" || len(a.Besoins) > 0
}

// Score returns the numeric level of a CRCN domain and whether it was
// evaluated.
func (a *Assessment) Score(domaine string) (int, bool) {
	switch a.Domaines[domaine] {
	case "0":
		return 0, true
	case "1":
		return 1, true
	case "2":
		return 2, true
	}
	return 0, false
}
