package domain

import (
	"slices"

	"numeribus/internal/ident"
)

// Consent records what a beneficiary agreed to, how and when. It is
// recorded before any identifying data or assessment, and withdrawing a
// purpose erases what that purpose covered (see Withdraw).
type Consent struct {
	ID           ident.ID `json:"id" cbor:"1,keyasint"`
	Beneficiaire ident.ID `json:"beneficiaire" cbor:"2,keyasint"`
	Finalites    []string `json:"finalites" cbor:"3,keyasint,omitempty"`
	Mode         string   `json:"mode" cbor:"4,keyasint,omitempty"`
	TexteVersion string   `json:"texte_version,omitempty" cbor:"5,keyasint,omitempty"`
	Date         string   `json:"date" cbor:"6,keyasint,omitempty"`
	Mediateur    string   `json:"mediateur,omitempty" cbor:"7,keyasint,omitempty"`
	// RetireLe is set when every purpose has been withdrawn.
	RetireLe string `json:"retire_le,omitempty" cbor:"8,keyasint,omitempty"`
	// Retraits lists the purposes withdrawn so far (with RetireLe, or
	// alone when only some purposes were withdrawn).
	Retraits []string `json:"retraits,omitempty" cbor:"9,keyasint,omitempty"`
}

func (*Consent) Kind() Kind                { return KindConsent }
func (c *Consent) RecordID() ident.ID      { return c.ID }
func (c *Consent) SetRecordID(id ident.ID) { c.ID = id }

// Normalize trims and sorts.
func (c *Consent) Normalize() {
	trim(&c.Mode, &c.TexteVersion, &c.Mediateur)
	normDate(&c.Date)
	normDate(&c.RetireLe)
	c.Finalites = normSet(c.Finalites)
	c.Retraits = normSet(c.Retraits)
}

// Active returns the purposes still in force.
func (c *Consent) Active() []string {
	if c.RetireLe != "" {
		return nil
	}
	var out []string
	for _, f := range c.Finalites {
		if !slices.Contains(c.Retraits, f) {
			out = append(out, f)
		}
	}
	return out
}

// Validate checks the consent.
func (c *Consent) Validate(env Env) error {
	var ch checker
	ch.sizes(c)
	ch.ref(env, "beneficiaire", c.Beneficiaire, KindBeneficiary)
	if len(c.Finalites) == 0 {
		ch.add(Problem{Field: "finalites", Code: ProblemRequired, Message: "au moins une finalité", Allowed: Finalites.Allowed()})
	}
	ch.codes("finalites", Finalites, c.Finalites)
	ch.codes("retraits", Finalites, c.Retraits)
	for _, r := range c.Retraits {
		if !slices.Contains(c.Finalites, r) {
			ch.between("retraits", r, "finalité retirée qui n'avait pas été donnée")
		}
	}
	if ch.required("mode", c.Mode) {
		ch.code("mode", ModesConsentement, c.Mode)
	}
	ch.date("date", c.Date, true)
	ch.date("retire_le", c.RetireLe, false)
	if c.RetireLe != "" && c.Date != "" && c.RetireLe < c.Date {
		ch.between("retire_le", c.RetireLe, "le retrait ne peut précéder le consentement")
	}
	return ch.err(KindConsent, c.ID)
}

// Effects says what a withdrawal must erase.
type Effects struct {
	// EraseIdentity: the beneficiary's identifying fields (suivi_nominatif
	// is no longer given by any consent).
	EraseIdentity bool
	// EraseAssessments: the beneficiary's assessments (diagnostic is no
	// longer given by any consent).
	EraseAssessments bool
}

// Withdraw withdraws purposes (all of them when finalites is empty) on
// date, and returns what must now be erased given the purposes other
// consents of the same person still give (stillGiven, may be nil).
func (c *Consent) Withdraw(finalites []string, date string, stillGiven map[string]bool) Effects {
	before := c.Active()
	if len(finalites) == 0 {
		finalites = before
	}
	for _, f := range finalites {
		if slices.Contains(c.Finalites, f) && !slices.Contains(c.Retraits, f) {
			c.Retraits = append(c.Retraits, f)
		}
	}
	c.Retraits = normSet(c.Retraits)
	if len(c.Active()) == 0 {
		c.RetireLe = date
	}
	var e Effects
	for _, f := range before {
		if slices.Contains(c.Active(), f) || stillGiven[f] {
			continue
		}
		switch f {
		case FinaliteSuivi:
			e.EraseIdentity = true
		case FinaliteDiagnostic:
			e.EraseAssessments = true
		}
	}
	return e
}
