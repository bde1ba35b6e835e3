package domain

import (
	"strings"

	"numeribus/internal/ident"
)

// Beneficiary is a person helped. Anonymous by default: only the
// statistical fields are filled. The identifying fields (marked
// `personal`) need a consent covering suivi_nominatif, and are removed by
// an erasure, which leaves an anonymous record behind.
type Beneficiary struct {
	ID ident.ID `json:"id" cbor:"1,keyasint"`

	Prenom         string `json:"prenom,omitempty" cbor:"2,keyasint,omitempty" personal:"true"`
	Nom            string `json:"nom,omitempty" cbor:"3,keyasint,omitempty" personal:"true"`
	Telephone      string `json:"telephone,omitempty" cbor:"4,keyasint,omitempty" personal:"true"`
	Email          string `json:"email,omitempty" cbor:"5,keyasint,omitempty" personal:"true"`
	AnneeNaissance int    `json:"annee_naissance,omitempty" cbor:"6,keyasint,omitempty" personal:"true"`
	Adresse        string `json:"adresse,omitempty" cbor:"7,keyasint,omitempty" personal:"true"`
	Notes          string `json:"notes,omitempty" cbor:"8,keyasint,omitempty" personal:"true"`

	Commune               string   `json:"commune,omitempty" cbor:"9,keyasint,omitempty"`
	Genre                 string   `json:"genre,omitempty" cbor:"10,keyasint,omitempty"`
	TrancheAge            string   `json:"tranche_age,omitempty" cbor:"11,keyasint,omitempty"`
	StatutSocial          string   `json:"statut_social,omitempty" cbor:"12,keyasint,omitempty"`
	PremierAccompagnement string   `json:"premier_accompagnement,omitempty" cbor:"13,keyasint,omitempty"`
	Publics               []string `json:"publics,omitempty" cbor:"14,keyasint,omitempty"`
	Equipement            string   `json:"equipement,omitempty" cbor:"15,keyasint,omitempty"`
	AccesInternet         string   `json:"acces_internet,omitempty" cbor:"16,keyasint,omitempty"`
}

func (*Beneficiary) Kind() Kind                { return KindBeneficiary }
func (b *Beneficiary) RecordID() ident.ID      { return b.ID }
func (b *Beneficiary) SetRecordID(id ident.ID) { b.ID = id }

// Identified reports whether any identifying field is filled.
//
// It reads the `personal` tags, so a personal field added later counts
// without a second list to keep in step.
func (b *Beneficiary) Identified() bool { return hasPersonal(b) }

// Normalize trims, lower-cases the e-mail, compacts the phone number and
// derives tranche_age from annee_naissance, at the year of the first
// accompaniment, or else of the record's creation (its UUIDv7 time).
func (b *Beneficiary) Normalize() {
	trim(&b.Prenom, &b.Nom, &b.Telephone, &b.Email, &b.Adresse, &b.Notes, &b.Commune,
		&b.Genre, &b.TrancheAge, &b.StatutSocial, &b.Equipement, &b.AccesInternet)
	normDate(&b.PremierAccompagnement)
	b.Email = strings.ToLower(b.Email)
	b.Telephone = phoneSeparators.Replace(b.Telephone)
	b.Publics = normSet(b.Publics)
	if b.AnneeNaissance > 0 {
		// The reference year comes from the record, never from the
		// clock: equal content must normalize to equal bytes.
		ref := b.ID.Time()
		if t, ok := ParseDate(b.PremierAccompagnement); ok {
			ref = t
		}
		if !b.ID.IsZero() || b.PremierAccompagnement != "" {
			b.TrancheAge = TrancheAgeFor(b.AnneeNaissance, ref.Year())
		}
	}
}

// TrancheAgeFor returns the age band of someone born in year, in year now.
// The band uses the age reached during the year, the only one a birth year
// gives.
func TrancheAgeFor(year, now int) string {
	age := now - year
	switch {
	case age < 12:
		return "moins_de_douze"
	case age < 18:
		return "douze_dix_huit"
	case age < 25:
		return "dix_huit_vingt_quatre"
	case age < 40:
		return "vingt_cinq_trente_neuf"
	case age < 60:
		return "quarante_cinquante_neuf"
	case age < 70:
		return "soixante_soixante_neuf"
	}
	return "soixante_dix_plus"
}

var phoneSeparators = strings.NewReplacer(" ", "", ".", "", "-", "")

// Validate checks codes and formats, and that identifying data is backed
// by a consent covering suivi_nominatif.
func (b *Beneficiary) Validate(env Env) error {
	var c checker
	c.sizes(b)
	c.code("genre", Genres, b.Genre)
	c.code("tranche_age", TranchesAge, b.TrancheAge)
	c.code("statut_social", StatutsSociaux, b.StatutSocial)
	c.code("equipement", Equipements, b.Equipement)
	c.code("acces_internet", AccesInternet, b.AccesInternet)
	c.codes("publics", Publics, b.Publics)
	c.commune(env, "commune", b.Commune)
	c.date("premier_accompagnement", b.PremierAccompagnement, false)
	if b.Telephone != "" && !isPhone(b.Telephone) {
		c.invalid("telephone", b.Telephone, "numéro de téléphone invalide")
	}
	if b.Email != "" {
		if len(b.Email) > 254 || !isEmail(b.Email) {
			c.invalid("email", b.Email, "adresse e-mail invalide")
		}
	}
	if y := b.AnneeNaissance; y != 0 && (y < 1900 || y > 2100) {
		c.invalid("annee_naissance", "", "année de naissance invalide")
	}
	if b.Identified() && env != nil && !env.ActiveFinalites(b.ID)[FinaliteSuivi] {
		c.add(Problem{Field: firstIdentifying(b), Code: ProblemConsentRequired,
			Message: "données identifiantes sans consentement « suivi nominatif » de la personne"})
	}
	return c.err(KindBeneficiary, b.ID)
}

func firstIdentifying(b *Beneficiary) string {
	switch {
	case b.Prenom != "":
		return "prenom"
	case b.Nom != "":
		return "nom"
	case b.Telephone != "":
		return "telephone"
	case b.Email != "":
		return "email"
	case b.AnneeNaissance != 0:
		return "annee_naissance"
	case b.Adresse != "":
		return "adresse"
	}
	return "notes"
}
