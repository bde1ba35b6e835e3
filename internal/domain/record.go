package domain

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"time"

	"numeribus/internal/ident"
)

// Kind names a type of record. It is stored in clear next to each record
// and change: sync and status need it, and it says nothing about a person.
type Kind string

// The kinds of records.
const (
	KindActivity    Kind = "activity"
	KindBeneficiary Kind = "beneficiary"
	KindConsent     Kind = "consent"
	KindAssessment  Kind = "assessment"
	KindTourStop    Kind = "tourstop"
)

// Kinds lists every kind, referenced kinds before the kinds that refer to
// them (a beneficiary before its consents and activities). Order within a
// batch does not matter for validation: the store validates a batch as a
// whole, so a beneficiary's identity and the consent allowing it can come
// in either order.
var Kinds = []Kind{KindTourStop, KindBeneficiary, KindConsent, KindAssessment, KindActivity}

// Label returns the French name of a kind.
func (k Kind) Label() string {
	switch k {
	case KindActivity:
		return "Activité"
	case KindBeneficiary:
		return "Bénéficiaire"
	case KindConsent:
		return "Consentement"
	case KindAssessment:
		return "Diagnostic"
	case KindTourStop:
		return "Arrêt de tournée"
	}
	return string(k)
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// Record is one domain record. Field numbers in the `cbor` tags are the
// stable identity of each field in the store and on the wire (like
// protobuf field numbers): never reuse or renumber one.
type Record interface {
	Kind() Kind
	RecordID() ident.ID
	SetRecordID(ident.ID)
	// Normalize trims text, sorts sets and derives computed fields, so
	// that equal content always encodes to equal bytes.
	Normalize()
	// Validate returns a *ValidationError listing every problem.
	Validate(env Env) error
}

// Env is what validation needs to know beyond the record itself. The
// store implements it; a nil Env skips the checks that need it.
type Env interface {
	// CommuneExists reports whether an INSEE commune code exists.
	CommuneExists(code string) bool
	// KindOf returns the kind of an existing record, or "" if unknown.
	KindOf(id ident.ID) Kind
	// ActiveFinalites returns the consent purposes currently given by a
	// beneficiary (over all their consents, withdrawals removed).
	ActiveFinalites(beneficiary ident.ID) map[string]bool
}

// New returns an empty record of kind k, or nil for an unknown kind.
func New(k Kind) Record {
	switch k {
	case KindActivity:
		return &Activity{}
	case KindBeneficiary:
		return &Beneficiary{}
	case KindConsent:
		return &Consent{}
	case KindAssessment:
		return &Assessment{}
	case KindTourStop:
		return &TourStop{}
	}
	return nil
}

// DateLayout is the ISO layout of dates in records, JSON and exports for
// machines; the UI shows JJ/MM/AAAA.
const DateLayout = "2006-01-02"

// ParseDate reads an ISO date (AAAA-MM-JJ) or a French one (JJ/MM/AAAA).
func ParseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if t, ok := isoDate(s); ok {
		return t, true
	}
	if t, err := time.Parse(DateLayout, s); err == nil {
		return t, true
	}
	if t, err := time.Parse("02/01/2006", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// normDate rewrites a French date to ISO; other text is left for
// validation to reject.
func normDate(s *string) {
	*s = strings.TrimSpace(*s)
	if t, ok := ParseDate(*s); ok {
		*s = t.Format(DateLayout)
	}
}

// dateShape matches what looks like a date in either accepted layout.
var dateShape = regexp.MustCompile(`^(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})$`)

func (c *checker) date(field, value string, required bool) {
	if value == "" {
		if required {
			c.required(field, value)
		}
		return
	}
	t, ok := ParseDate(value)
	if !ok {
		// The forms say JJ/MM/AAAA; files and the API may write
		// AAAA-MM-JJ. A date of the right shape that does not exist
		// (31/02) is told as such.
		msg := "date invalide, attendue au format JJ/MM/AAAA"
		if dateShape.MatchString(strings.TrimSpace(value)) {
			msg = "cette date n'existe pas : vérifiez le jour et le mois (JJ/MM/AAAA)"
		}
		c.invalid(field, value, msg)
		return
	}
	if t.Year() < 2000 || t.Year() > 2100 {
		c.invalid(field, value, "date hors de la période 2000-2100")
	}
}

func (c *checker) commune(env Env, field, code string) {
	if code == "" || env == nil {
		return
	}
	if !env.CommuneExists(code) {
		c.add(Problem{Field: field, Value: code, Code: ProblemUnknownCode, Message: "code INSEE de commune inconnu"})
	}
}

func (c *checker) ref(env Env, field string, id ident.ID, want Kind) {
	if id.IsZero() {
		c.required(field, "")
		return
	}
	if env == nil {
		return
	}
	if got := env.KindOf(id); got != want {
		c.add(Problem{Field: field, Value: id.String(), Code: ProblemUnknownRef,
			Message: "référence inconnue : aucun enregistrement « " + want.Label() + " » avec cet identifiant"})
	}
}

func trim(ps ...*string) {
	for _, p := range ps {
		*p = strings.TrimSpace(*p)
	}
}

// normSet sorts a set of codes and drops empty entries, so that a set's
// encoding does not depend on the order it was ticked in.
func normSet(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// normIDs sorts and de-duplicates a set of references (a copy).
func normIDs(s []ident.ID) []ident.ID {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b ident.ID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// normCounts drops zero entries, so that {"feminin":0} and no entry
// encode alike.
func normCounts(m map[string]int) map[string]int {
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
