package retention

import (
	"bytes"
	"slices"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// A Census gathers what a store holds about each person — when they were
// last in contact, which records carry personal data about them — and
// plans the purge: which records to erase now. The agent feeds it every
// record it holds, decoded (Record); the hub feeds most of it from its
// fact tables (Contact, Individual, Notes) and the rest decoded.
//
// The last contact with a person is the latest of: the creation and last
// write of their beneficiary record, their first accompaniment, the date
// of every live activity they took part in (alone or in a workshop), of
// their live assessments, and of their live consents and withdrawals.
// A deleted record is no contact, but whatever personal data it still
// holds is purged on the same terms.
type Census struct {
	policy Policy
	now    time.Time
	people map[ident.ID]*person
	notes  []dated
}

type person struct {
	known      bool // a beneficiary record was seen
	identified bool
	erased     bool
	last       time.Time
	// individuals are the person's individual sessions not erased yet;
	// assessments their assessments still linked to them.
	individuals []ident.ID
	assessments []ident.ID
}

type dated struct {
	id  ident.ID
	day time.Time
}

// NewCensus returns an empty census for a purge at now under p.
func NewCensus(p Policy, now time.Time) *Census {
	return &Census{policy: p, now: now, people: map[ident.ID]*person{}}
}

func (c *Census) person(id ident.ID) *person {
	p := c.people[id]
	if p == nil {
		p = &person{}
		c.people[id] = p
	}
	return p
}

// Person notes the beneficiary record id: whether it holds identifying
// fields, whether it was erased, and when it was made or last written
// (touched, a contact).
func (c *Census) Person(id ident.ID, identified, erased bool, touched time.Time) {
	p := c.person(id)
	p.known = true
	p.identified = p.identified || identified
	p.erased = p.erased || erased
	if id.Version() == 7 { // a UUIDv7 says when it was made; an imported id may not
		c.touch(p, id.Time())
	}
	c.touch(p, touched)
}

// Contact notes a contact with person on day.
func (c *Census) Contact(person ident.ID, day time.Time) {
	if person.IsZero() || day.IsZero() {
		return
	}
	c.touch(c.person(person), day)
}

func (c *Census) touch(p *person, t time.Time) {
	if d := Day(t); d.After(p.last) {
		p.last = d
	}
}

// Individual notes an individual session of person that is not erased:
// an erasure of the person's identity erases it too (its notes).
func (c *Census) Individual(activity, person ident.ID) {
	if !person.IsZero() {
		p := c.person(person)
		p.individuals = append(p.individuals, activity)
	}
}

// Assessment notes an assessment still linked to person (not erased).
func (c *Census) Assessment(id, person ident.ID) {
	if !person.IsZero() {
		p := c.person(person)
		p.assessments = append(p.assessments, id)
	}
}

// ActivityNotes notes an activity, not erased, whose notes are filled,
// of day.
func (c *Census) ActivityNotes(id ident.ID, day time.Time) {
	c.notes = append(c.notes, dated{id, Day(day)})
}

// Record notes a decoded record: its contacts, and the personal data it
// holds. touched is when it was last written (its merged state's last
// stamp).
func (c *Census) Record(r domain.Record, deleted, erased bool, touched time.Time) {
	date := func(s string) time.Time {
		t, _ := domain.ParseDate(s)
		return t
	}
	switch v := r.(type) {
	case *domain.Beneficiary:
		c.Person(v.ID, v.Identified(), erased, touched)
		if !deleted {
			c.Contact(v.ID, date(v.PremierAccompagnement))
		}
	case *domain.Consent:
		if !deleted {
			c.Contact(v.Beneficiaire, date(v.Date))
			c.Contact(v.Beneficiaire, date(v.RetireLe))
		}
	case *domain.Assessment:
		if erased || v.Beneficiaire.IsZero() {
			return
		}
		if !deleted {
			c.Contact(v.Beneficiaire, date(v.Date))
		}
		c.Assessment(v.ID, v.Beneficiaire)
	case *domain.Activity:
		day := date(v.Date)
		if !deleted {
			if v.Beneficiaire != nil {
				c.Contact(*v.Beneficiaire, day)
			}
			if v.Participants != nil {
				for _, b := range v.Participants.Beneficiaires {
					c.Contact(b, day)
				}
			}
		}
		if erased {
			return // its notes are gone for good
		}
		if v.Type != "collectif" && v.Beneficiaire != nil {
			c.Individual(v.ID, *v.Beneficiaire)
		}
		if v.Notes != "" {
			c.ActivityNotes(v.ID, day)
		}
	}
}

// Plan is what a purge erases, each record with an erase change (the
// same as a person's request: its personal fields go, from the record and
// from every change of it still logged, on every device and at the hub).
// People come first: a person's record is erased before their
// assessments, so that an assessment erased with its person stays linked,
// in the hub's statistics, to an anonymous record only.
type Plan struct {
	People      []Expired
	Assessments []ident.ID // assessments whose diagnostics period is over
	Notes       []ident.ID // activities whose notes are due, beyond People's
}

// Expired is a person whose identity is due.
type Expired struct {
	Person      ident.ID
	LastContact time.Time
	// Individuals are their individual sessions, erased with them (the
	// notes on them go with the identity, as in an erasure).
	Individuals []ident.ID
}

// Empty reports whether the plan erases nothing.
func (p Plan) Empty() bool { return len(p.People)+len(p.Assessments)+len(p.Notes) == 0 }

// Records returns how many records the plan erases.
func (p Plan) Records() int {
	n := len(p.Assessments) + len(p.Notes)
	for _, e := range p.People {
		n += 1 + len(e.Individuals)
	}
	return n
}

// Plan decides what is due at the census's now:
//
//   - the person's identity when identite is due after their last
//     contact, for a person identified (and, so that a diagnostic kept in
//     the statistics never links to someone identified later, for an
//     anonymous person whose diagnostics go in the same purge: its
//     record is erased too, which strips nothing and forbids an identity
//     for good);
//   - their assessments when diagnostics is due after their last contact;
//   - an activity's notes when notes is due after its date.
//
// Records already erased are not erased again. The lists are in id order.
func (c *Census) Plan() Plan {
	var pl Plan
	inPeople := map[ident.ID]bool{}
	ids := make([]ident.ID, 0, len(c.people))
	for id := range c.people {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b ident.ID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		p := c.people[id]
		diag := len(p.assessments) > 0 && c.policy.Due(Diagnostics, p.last, c.now)
		if diag {
			pl.Assessments = append(pl.Assessments, p.assessments...)
		}
		if p.known && !p.erased && (p.identified || diag) && c.policy.Due(Identite, p.last, c.now) {
			e := Expired{Person: id, LastContact: p.last, Individuals: slices.Clone(p.individuals)}
			sortIDs(e.Individuals)
			pl.People = append(pl.People, e)
			for _, a := range p.individuals {
				inPeople[a] = true
			}
		}
	}
	for _, n := range c.notes {
		if !inPeople[n.id] && c.policy.Due(Notes, n.day, c.now) {
			pl.Notes = append(pl.Notes, n.id)
		}
	}
	sortIDs(pl.Assessments)
	sortIDs(pl.Notes)
	pl.Assessments = slices.Compact(pl.Assessments)
	pl.Notes = slices.Compact(pl.Notes)
	return pl
}

func sortIDs(ids []ident.ID) {
	slices.SortFunc(ids, func(a, b ident.ID) int { return bytes.Compare(a[:], b[:]) })
}
