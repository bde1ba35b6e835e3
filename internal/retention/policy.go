// Package retention holds the retention periods of personal data (durées
// de conservation, shared/DOMAIN.md) and the rule that says, from what a
// store holds, which personal data has outlived them. It does no I/O: the
// agent's store and the hub's stores gather what they hold into a
// [Census], execute its [Plan] through their erasure machinery (the same
// erase changes as a person's request, so that a purge propagates and
// never comes back), and keep the [Policy] the hub sets and pushes.
//
// What goes, and when (the defaults, from the CNIL's reference for social
// follow-up, as La Coop de la médiation numérique and DOMAIN.md give it):
//
//   - identite: the identifying fields of a beneficiary (and the notes of
//     their individual sessions, which go with them as in an erasure),
//     24 months after the last contact with the person;
//   - diagnostics: the comment of a needs assessment and its link to the
//     person, 24 months after the last contact with the person;
//   - notes: the mediator's notes on a session, 24 months after the
//     session;
//   - journal: the hub's audit log of accesses to personal data, 12
//     months after the access (the hub's stores never keep it longer).
//
// Activities and the anonymous statistical fields are kept: they hold no
// personal data, and the indicators must not change when a purge runs.
package retention

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"numeribus/internal/apperr"
)

// Path is where a hub serves its policy (JSON, GET), beside its sync
// endpoint on the same address and certificate: the agents read it after
// their sync rounds.
const Path = "/retention"

// Kind is a kind of personal data with a retention period of its own.
type Kind string

// The kinds of data with a retention period.
const (
	Identite    Kind = "identite"
	Diagnostics Kind = "diagnostics"
	Notes       Kind = "notes"
	Journal     Kind = "journal"
)

// Rule is what a kind of data is, from when its period runs, its default
// and the bounds a coordinator may set it within, in months.
type Rule struct {
	Kind  Kind
	Label string // French, for `hub retention show`, the notice and docs
	// From says when the period starts, in French ("après …").
	From              string
	Default, Min, Max int
}

// Rules lists every kind, in the order they are shown.
var Rules = []Rule{
	{Identite, "Données identifiantes des bénéficiaires (nom, prénom, téléphone, e-mail, année de naissance, adresse, notes) et notes de leurs accompagnements individuels",
		"après le dernier contact avec la personne", 24, 1, 60},
	{Diagnostics, "Diagnostics : commentaire et lien avec la personne",
		"après le dernier contact avec la personne", 24, 1, 60},
	{Notes, "Notes des accompagnements",
		"après la date de l'accompagnement", 24, 1, 60},
	{Journal, "Journal des accès aux données personnelles (hub)",
		"après l'accès", 12, 1, 12},
}

// RuleOf returns the rule of kind k.
func RuleOf(k Kind) (Rule, bool) {
	i := slices.IndexFunc(Rules, func(r Rule) bool { return r.Kind == k })
	if i < 0 {
		return Rule{}, false
	}
	return Rules[i], true
}

// KindNames lists the kinds, comma-separated, for messages.
func KindNames() string {
	names := make([]string, len(Rules))
	for i, r := range Rules {
		names[i] = string(r.Kind)
	}
	return strings.Join(names, ", ")
}

// Policy is the retention period of each kind, in months. The zero value
// is the default policy: a kind not set has its rule's default.
type Policy struct {
	months map[Kind]int
}

// Default returns the default policy.
func Default() Policy { return Policy{} }

// Months returns the period of kind k in months.
func (p Policy) Months(k Kind) int {
	if m, ok := p.months[k]; ok {
		return m
	}
	r, _ := RuleOf(k)
	return r.Default
}

// IsSet reports whether k was set, rather than left at its default.
func (p Policy) IsSet(k Kind) bool {
	_, ok := p.months[k]
	return ok
}

// With returns p with kind k set to months, or a French error naming the
// allowed kinds or bounds (apperr.Invalid).
func (p Policy) With(k Kind, months int) (Policy, error) {
	r, ok := RuleOf(k)
	if !ok {
		return p, apperr.Errorf(apperr.Invalid, "type de données %q inconnu (un de : %s)", k, KindNames())
	}
	if months < r.Min || months > r.Max {
		return p, apperr.Errorf(apperr.Invalid, "durée de conservation de « %s » : %d mois hors des bornes (de %d à %d mois)", k, months, r.Min, r.Max)
	}
	out := Policy{months: make(map[Kind]int, len(p.months)+1)}
	for kk, m := range p.months {
		out.months[kk] = m
	}
	out.months[k] = months
	return out, nil
}

// Equal reports whether p and q give every kind the same period.
func (p Policy) Equal(q Policy) bool {
	for _, r := range Rules {
		if p.Months(r.Kind) != q.Months(r.Kind) {
			return false
		}
	}
	return true
}

// Describe says the period of k in French: "24 mois après le dernier
// contact avec la personne".
func (p Policy) Describe(k Kind) string {
	r, _ := RuleOf(k)
	return FormatMonths(p.Months(k)) + " " + r.From
}

// FormatMonths writes a period in French: "24 mois (2 ans)", "18 mois",
// "1 mois".
func FormatMonths(m int) string {
	s := strconv.Itoa(m) + " mois"
	switch {
	case m%12 == 0 && m == 12:
		s += " (1 an)"
	case m%12 == 0:
		s += fmt.Sprintf(" (%d ans)", m/12)
	}
	return s
}

// ParseMonths reads a period: "24", "24 mois", "2 ans", "1 an".
func ParseMonths(s string) (int, error) {
	f := strings.Fields(strings.ToLower(s))
	if len(f) == 2 && (f[1] == "mois" || f[1] == "an" || f[1] == "ans") || len(f) == 1 {
		n, err := strconv.Atoi(f[0])
		if err == nil && n > 0 && n <= 1200 {
			if len(f) == 2 && f[1] != "mois" {
				n *= 12
			}
			return n, nil
		}
	}
	return 0, apperr.Errorf(apperr.Usage, "durée %q illisible : un nombre de mois (« 24 », « 24 mois ») ou d'années (« 2 ans »)", s)
}

// wireVersion is the version of the policy's JSON form; a reader ignores
// kinds it does not know and refuses another version.
const wireVersion = 1

type wireForm struct {
	Version int            `json:"version"`
	Months  map[string]int `json:"mois"`
}

// Periods returns the period of every kind in months, by kind name,
// defaults included, so that a reader needs no defaults of its own: what
// the JSON form and the sync's Welcome carry (wire.Welcome.Retention).
func (p Policy) Periods() map[string]int {
	m := make(map[string]int, len(Rules))
	for _, r := range Rules {
		m[string(r.Kind)] = p.Months(r.Kind)
	}
	return m
}

// FromPeriods reads what Periods writes. Kinds it does not know (a newer
// hub) are ignored; a period out of its bounds is an error, so a damaged
// policy is never applied.
func FromPeriods(m map[string]int) (Policy, error) {
	out := Policy{}
	for name, months := range m {
		if _, ok := RuleOf(Kind(name)); !ok {
			continue
		}
		var err error
		if out, err = out.With(Kind(name), months); err != nil {
			return Policy{}, fmt.Errorf("retention policy: %w", err)
		}
	}
	return out, nil
}

// MarshalJSON writes {"version":1,"mois":{"identite":24,…}}: Periods.
func (p Policy) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireForm{Version: wireVersion, Months: p.Periods()})
}

// UnmarshalJSON reads what MarshalJSON writes. Kinds it does not know (a
// newer hub) are ignored; a period out of its bounds is an error, so a
// damaged policy is never applied.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var w wireForm
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("retention policy: %w", err)
	}
	if w.Version != wireVersion {
		return fmt.Errorf("retention policy: version %d, this program reads version %d", w.Version, wireVersion)
	}
	out, err := FromPeriods(w.Months)
	if err != nil {
		return err
	}
	*p = out
	return nil
}

// Due reports whether data of kind k whose period started on from (a day)
// is due for a purge at now: from plus the period has come.
func (p Policy) Due(k Kind, from, now time.Time) bool {
	if from.IsZero() {
		return false
	}
	return !Day(now).Before(Day(from).AddDate(0, p.Months(k), 0))
}

// Cutoff returns a day after which nothing of kind k is due at now: a
// store reads what started on or before it, then asks Due. It leaves a
// few days' margin for months of different lengths (Due adds months to
// the start, which this subtracts from now).
func (p Policy) Cutoff(k Kind, now time.Time) time.Time {
	return Day(now).AddDate(0, -p.Months(k), 4)
}

// Day returns t's calendar date at midnight UTC, how record dates
// (AAAA-MM-JJ) are compared.
func Day(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
