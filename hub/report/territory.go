package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/territoire"
)

// Level is the kind of a territory.
type Level uint8

// The levels, smallest first.
const (
	Commune Level = iota + 1
	EPCI
	Departement
	Region
)

var levelPrefix = map[Level]string{Commune: "com", EPCI: "epci", Departement: "dep", Region: "reg"}

// Territory is a commune (INSEE code), an EPCI (SIREN), a département or a
// région. Its text form, in URLs, flags, JSON and scopes, is the level's
// prefix and the code: "com:54395", "epci:245400676", "dep:54", "reg:44".
// The zero Territory means "no territory".
type Territory struct {
	Level Level
	Code  string
}

// Errors of filters and scopes.
var (
	// ErrOutOfScope: the filter asks for a territory or team the user may
	// not see. Never answered with zeros.
	ErrOutOfScope = apperr.New(apperr.Forbidden, "filter outside the user's scope")
	// ErrUnknownTerritory: no such commune, EPCI, département or région.
	ErrUnknownTerritory = apperr.New(apperr.Usage, "unknown territory")
	// ErrBadFilter: dates missing, reversed or unreadable.
	ErrBadFilter = apperr.New(apperr.Usage, "invalid filter")
)

// ParseTerritory reads the text form of a territory. Without a prefix, a
// 5-character code is a commune, 9 digits an EPCI and anything else a
// département ("54", "2A", "971"): a région always needs "reg:", its
// codes looking like départements'. The territory must exist.
func ParseTerritory(s string) (Territory, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Territory{}, nil
	}
	var t Territory
	if p, code, ok := strings.Cut(s, ":"); ok {
		for l, lp := range levelPrefix {
			if strings.EqualFold(p, lp) {
				t = Territory{l, strings.ToUpper(strings.TrimSpace(code))}
			}
		}
		if t.Level == 0 {
			return Territory{}, fmt.Errorf("%w: %q: the prefix must be com, epci, dep or reg", ErrUnknownTerritory, s)
		}
	} else {
		code := strings.ToUpper(s)
		switch {
		case len(code) == 5:
			t = Territory{Commune, code}
		case len(code) == 9 && strings.Trim(code, "0123456789") == "":
			t = Territory{EPCI, code}
		default:
			t = Territory{Departement, code}
		}
	}
	if !t.exists() {
		return Territory{}, fmt.Errorf("%w: %s", ErrUnknownTerritory, t)
	}
	return t, nil
}

// IsZero reports whether t is "no territory".
func (t Territory) IsZero() bool { return t.Level == 0 }

// String returns the text form ("dep:54"), "" for the zero Territory.
func (t Territory) String() string {
	if t.IsZero() {
		return ""
	}
	return levelPrefix[t.Level] + ":" + t.Code
}

// Name returns the territory's French name ("Meurthe-et-Moselle"), or
// its code when unknown.
func (t Territory) Name() string {
	x := territoire.Default()
	switch t.Level {
	case Commune:
		if c, ok := x.Commune(t.Code); ok {
			return c.Nom
		}
	case EPCI:
		if e, ok := x.EPCI(t.Code); ok {
			return e.Nom
		}
	case Departement:
		if d, ok := x.Departement(t.Code); ok {
			return d.Nom
		}
	case Region:
		if r, ok := x.Region(t.Code); ok {
			return r.Nom
		}
	}
	return t.Code
}

// MarshalJSON writes the text form.
func (t Territory) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON reads the text form.
func (t *Territory) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseTerritory(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func (t Territory) exists() bool {
	x := territoire.Default()
	var ok bool
	switch t.Level {
	case Commune:
		_, ok = x.Commune(t.Code)
	case EPCI:
		_, ok = x.EPCI(t.Code)
	case Departement:
		_, ok = x.Departement(t.Code)
	case Region:
		_, ok = x.Region(t.Code)
	}
	return ok
}

// communes returns the communes of t.
func (t Territory) communes() []territoire.Commune {
	x := territoire.Default()
	switch t.Level {
	case Commune:
		if c, ok := x.Commune(t.Code); ok {
			return []territoire.Commune{c}
		}
	case EPCI:
		return x.CommunesOfEPCI(t.Code)
	case Departement:
		return x.CommunesOfDepartement(t.Code)
	case Region:
		var out []territoire.Commune
		for _, d := range x.Departements() {
			if d.Region == t.Code {
				out = append(out, x.CommunesOfDepartement(d.Code)...)
			}
		}
		return out
	}
	return nil
}

// Filter is what a user asks for: a period, a territory, a team, a
// vehicle, a mediator. The zero value of each field means "any", but for
// the dates, see [Filter.Period].
type Filter struct {
	From, To  time.Time // calendar dates, inclusive
	Territory Territory
	Team      string
	Vehicle   string
	Mediateur string
}

// Period returns the filter's inclusive days. A zero To is today (in
// now's location); a zero From is the day after To a year earlier, so
// that the default is the last twelve months.
func (f Filter) Period(now time.Time) (from, to int, err error) {
	end := f.To
	if end.IsZero() {
		end = now
	}
	start := f.From
	if start.IsZero() {
		start = end.AddDate(-1, 0, 1)
	}
	from, to = DayOf(start), DayOf(end)
	if from > to {
		return 0, 0, fmt.Errorf("%w: the period starts (%s) after it ends (%s)", ErrBadFilter, FormatDay(from), FormatDay(to))
	}
	return from, to, nil
}

// Scope is what a user may see: territories and teams. An empty list
// allows everything of its kind; an empty Scope is an administrator's.
type Scope struct {
	Territories []Territory
	Teams       []string
}

// ParseScope reads territories in text form ("dep:54", …).
func ParseScope(territories []string, teams []string) (Scope, error) {
	s := Scope{Teams: teams}
	for _, c := range territories {
		t, err := ParseTerritory(c)
		if err != nil {
			return Scope{}, fmt.Errorf("scope: %w", err)
		}
		if !t.IsZero() {
			s.Territories = append(s.Territories, t)
		}
	}
	return s, nil
}

// Resolve intersects f with the user's scope into the query a Source runs,
// for the period [from, to]. A territory or team outside the scope gives
// ErrOutOfScope; with no territory in f, the scope's territories are
// queried (all of them), and with neither, everywhere.
func Resolve(f Filter, s Scope, from, to int) (Query, error) {
	q := Query{From: from, To: to, Vehicle: strings.TrimSpace(f.Vehicle), Mediateur: strings.TrimSpace(f.Mediateur)}
	team := strings.TrimSpace(f.Team)
	switch {
	case len(s.Teams) == 0 && team != "":
		q.Teams = []string{team}
	case len(s.Teams) > 0 && team == "":
		q.Teams = slices.Clone(s.Teams)
	case len(s.Teams) > 0:
		if !slices.Contains(s.Teams, team) {
			return Query{}, fmt.Errorf("%w: team %s", ErrOutOfScope, team)
		}
		q.Teams = []string{team}
	}
	if !f.Territory.IsZero() && !f.Territory.exists() {
		return Query{}, fmt.Errorf("%w: %s", ErrUnknownTerritory, f.Territory)
	}
	var areas []Territory
	switch {
	case f.Territory.IsZero() && len(s.Territories) == 0:
		return q, nil // everywhere
	case f.Territory.IsZero():
		areas = s.Territories
	case len(s.Territories) == 0:
		areas = []Territory{f.Territory}
	default:
		for _, st := range s.Territories {
			areas = append(areas, intersect(f.Territory, st)...)
		}
		if len(areas) == 0 {
			return Query{}, fmt.Errorf("%w: %s (%s)", ErrOutOfScope, f.Territory, f.Territory.Name())
		}
	}
	q.Areas = disjoint(areas)
	if len(q.Areas) == 0 {
		return Query{}, fmt.Errorf("%w: no commune in the territories asked", ErrOutOfScope)
	}
	return q, nil
}

// intersect returns a ∩ b as territories: a or b when one holds the
// other, else the communes they share (none when disjoint).
func intersect(a, b Territory) []Territory {
	if a == b {
		return []Territory{a}
	}
	ca, cb := a.communes(), b.communes()
	inB := make(map[string]bool, len(cb))
	for _, c := range cb {
		inB[c.Code] = true
	}
	var shared []Territory
	for _, c := range ca {
		if inB[c.Code] {
			shared = append(shared, Territory{Commune, c.Code})
		}
	}
	switch {
	case len(shared) == 0:
		return nil
	case len(shared) == len(ca):
		return []Territory{a} // a ⊆ b
	case len(shared) == len(cb):
		return []Territory{b} // b ⊆ a
	}
	return shared
}

// disjoint rewrites a union of territories as départements, EPCI and
// communes that share no commune, so that a Source can sum them: régions
// become their départements; an EPCI inside a listed département goes,
// one straddling it becomes its communes outside; a commune inside a
// listed département or EPCI goes.
func disjoint(ts []Territory) []Territory {
	x := territoire.Default()
	deps := map[string]bool{}
	for _, t := range ts {
		switch t.Level {
		case Departement:
			deps[t.Code] = true
		case Region:
			for _, d := range x.Departements() {
				if d.Region == t.Code {
					deps[d.Code] = true
				}
			}
		}
	}
	epcis := map[string]bool{}
	communes := map[string]bool{}
	for _, t := range ts {
		if t.Level != EPCI || epcis[t.Code] {
			continue
		}
		cs := x.CommunesOfEPCI(t.Code)
		var outside []string
		for _, c := range cs {
			if !deps[c.Departement] {
				outside = append(outside, c.Code)
			}
		}
		switch {
		case len(outside) == len(cs):
			epcis[t.Code] = true
		default:
			for _, c := range outside {
				communes[c] = true
			}
		}
	}
	for _, t := range ts {
		if t.Level != Commune {
			continue
		}
		c, ok := x.Commune(t.Code)
		if ok && (deps[c.Departement] || epcis[c.EPCI]) {
			continue
		}
		communes[t.Code] = true
	}
	var out []Territory
	for _, m := range []struct {
		l Level
		s map[string]bool
	}{{Departement, deps}, {EPCI, epcis}, {Commune, communes}} {
		codes := make([]string, 0, len(m.s))
		for c := range m.s {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		for _, c := range codes {
			out = append(out, Territory{m.l, c})
		}
	}
	return out
}
