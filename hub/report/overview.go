package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// Applied says what a report covers once the filter met the scope, for
// the reader to see (and the JSON API to echo).
type Applied struct {
	From string `json:"from"` // AAAA-MM-JJ
	To   string `json:"to"`
	// Territory is the territory asked for ("dep:54"), "" for none.
	Territory     string `json:"territory,omitempty"`
	TerritoryName string `json:"territory_name,omitempty"`
	// Areas are the territories counted: the asked one cut to the scope;
	// empty means everywhere (activities without a commune included).
	Areas     []Territory `json:"areas,omitempty"`
	Teams     []string    `json:"teams,omitempty"`
	Vehicle   string      `json:"vehicle,omitempty"`
	Mediateur string      `json:"mediateur,omitempty"`
}

// FromDay and ToDay return the period's days (yyyymmdd).
func (a Applied) FromDay() int { d, _ := ParseDay(a.From); return d }

// ToDay: see FromDay.
func (a Applied) ToDay() int { d, _ := ParseDay(a.To); return d }

func applied(f Filter, q Query) Applied {
	a := Applied{From: isoDay(q.From), To: isoDay(q.To), Areas: q.Areas, Teams: q.Teams, Vehicle: q.Vehicle, Mediateur: q.Mediateur}
	if !f.Territory.IsZero() {
		a.Territory, a.TerritoryName = f.Territory.String(), f.Territory.Name()
	}
	return a
}

// Headline holds the figures compared between periods.
type Headline struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Accompagnements: an individual session is 1, a workshop counts its
	// participants.
	Accompagnements int `json:"accompagnements"`
	Activites       int `json:"activites"`
	Individuels     int `json:"individuels"`
	Collectifs      int `json:"collectifs"`
	// Beneficiaires: distinct beneficiary records met (see
	// [Beneficiaires.Distincts]).
	Beneficiaires int     `json:"beneficiaires"`
	Minutes       int     `json:"minutes"`
	Heures        float64 `json:"heures"`
	PassNumerique int     `json:"pass_numerique"`
	// Communes: distinct communes with at least one activity.
	Communes int `json:"communes"`
}

// Beneficiaires counts the people helped. Only beneficiary records can be
// told apart: a workshop's anonymous participants and individual sessions
// recorded without a beneficiary are counted as they come.
type Beneficiaires struct {
	// Distincts: distinct beneficiary records met in the period (the
	// person of an individual session, the followed participants of a
	// workshop).
	Distincts int `json:"distincts"`
	// Nouveaux: of Distincts, those whose first accompaniment
	// (premier_accompagnement, or their first individual activity the hub
	// knows, whichever is earlier) falls in the period.
	Nouveaux int `json:"nouveaux"`
	// Suivis: of Distincts, records with identifying data (followed with
	// consent); Anonymes the others (deleted records included).
	Suivis   int `json:"suivis"`
	Anonymes int `json:"anonymes"`
	// SansFiche: individual sessions recorded without a beneficiary.
	SansFiche int `json:"sans_fiche"`
	// ParticipantsAteliers: workshop participants (sum of totals);
	// ParticipantsAnonymes: those not listed as followed beneficiaries;
	// DejaAccompagnes: those the mediator marked as already helped.
	ParticipantsAteliers int `json:"participants_ateliers"`
	ParticipantsAnonymes int `json:"participants_anonymes"`
	DejaAccompagnes      int `json:"deja_accompagnes"`
	// Personnes = Distincts + SansFiche + ParticipantsAnonymes: the people
	// helped, an upper bound since anonymous people cannot be told apart.
	Personnes int `json:"personnes"`
}

// Orientation summarises referrals of individual sessions.
type Orientation struct {
	Orientes    int     `json:"orientes"`
	Individuels int     `json:"individuels"`
	Part        float64 `json:"part"` // Orientes / Individuels, 0..1
	// Structures: where people were referred, most frequent first.
	Structures []Count `json:"structures"`
}

// DomainScore is one CRCN domain over the assessments of the period.
type DomainScore struct {
	Code    string  `json:"code"`
	Label   string  `json:"label"`
	Evalues int     `json:"evalues"` // assessments that scored the domain
	Moyenne float64 `json:"moyenne"` // mean score, 0 to 2
	// Personnes: people scored on the domain twice or more in the period;
	// Progression their mean change from first to last score.
	Personnes   int     `json:"personnes"`
	Progression float64 `json:"progression"`
}

// Diagnostics summarises the needs assessments of the period.
type Diagnostics struct {
	Nombre        int           `json:"nombre"`
	Beneficiaires int           `json:"beneficiaires"` // distinct people assessed (erased ones excluded)
	Domaines      []DomainScore `json:"domaines"`
	// Autonomie: autonomie_globale of the assessments, in list order.
	Autonomie []Count `json:"autonomie"`
}

// Month is one month of the series.
type Month struct {
	Month           string  `json:"month"` // AAAA-MM
	Label           string  `json:"label"` // "mars 2026"
	Activites       int     `json:"activites"`
	Accompagnements int     `json:"accompagnements"`
	Heures          float64 `json:"heures"`
	Beneficiaires   int     `json:"beneficiaires"` // distinct records in the month
}

// Overview is the dashboard's main page, the indicators CSV and the
// "overview" of `hub stats`. Breakdowns of codes without an order of their
// own (themes, partners, places…) come most frequent first, with every
// code of the list (zeros last); ordinal ones (durations, age bands,
// levels, autonomy) in their order.
type Overview struct {
	Filter   Applied  `json:"filter"`
	Headline Headline `json:"headline"`
	// Previous: the same figures over the period of equal length just
	// before.
	Previous Headline `json:"previous"`
	// LastYear: the same figures over the same dates one year earlier
	// (YearBefore), which a seasonal activity — summer tours, winter
	// closures — compares with better than with the weeks just before.
	LastYear Headline `json:"last_year"`

	ParType       []Count       `json:"par_type"`
	Beneficiaires Beneficiaires `json:"beneficiaires"`
	Durees        []Count       `json:"durees"`
	Thematiques   []Count       `json:"thematiques"`
	Demarches     []Count       `json:"demarches"`
	Partenaires   []Count       `json:"partenaires"`
	Materiels     []Count       `json:"materiels"`
	TypesLieu     []Count       `json:"types_lieu"`
	Communes      []Count       `json:"communes"`
	// Beneficiary breakdowns count each record met once, plus workshops'
	// anonymous head counts as entered (which may include followed
	// participants counted already); records without the field count as
	// non_communique.
	Genres            []Count `json:"genres"`
	TranchesAge       []Count `json:"tranches_age"`
	StatutsSociaux    []Count `json:"statuts_sociaux"`
	CommunesResidence []Count `json:"communes_residence"`

	Autonomie   []Count     `json:"autonomie"`
	Orientation Orientation `json:"orientation"`
	Niveaux     []Count     `json:"niveaux"`
	Diagnostics Diagnostics `json:"diagnostics"`
	// Mois: the 12 months ending with the period's last month, whatever
	// the period's start.
	Mois []Month `json:"mois"`
}

// Duration bands of shared/DOMAIN.md.
var Durees = []domain.Code{
	{Code: "moins_30", Label: "Moins de 30 min"},
	{Code: "30_60", Label: "30 à 60 min"},
	{Code: "60_120", Label: "60 à 120 min"},
	{Code: "120_plus", Label: "120 min et plus"},
}

func dureeBand(min int) string {
	switch {
	case min < 30:
		return "moins_30"
	case min < 60:
		return "30_60"
	case min < 120:
		return "60_120"
	}
	return "120_plus"
}

var mois = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
	"septembre", "octobre", "novembre", "décembre"}

// headline accumulates a Headline.
type headline struct {
	h        Headline
	bens     map[ident.ID]struct{}
	communes map[string]struct{}
}

func newHeadline(from, to int) *headline {
	return &headline{h: Headline{From: isoDay(from), To: isoDay(to)}, bens: map[ident.ID]struct{}{}, communes: map[string]struct{}{}}
}

func (h *headline) add(a *ActivityFact) {
	h.h.Activites++
	if a.Type == "collectif" {
		h.h.Collectifs++
	} else {
		h.h.Individuels++
	}
	h.h.Accompagnements += a.Participants
	h.h.Minutes += a.Duree
	h.h.PassNumerique += a.PassNumerique
	for _, id := range a.Beneficiaires {
		h.bens[id] = struct{}{}
	}
	if a.Commune != "" {
		h.communes[a.Commune] = struct{}{}
	}
}

func (h *headline) done() Headline {
	h.h.Beneficiaires, h.h.Communes, h.h.Heures = len(h.bens), len(h.communes), hours(h.h.Minutes)
	return h.h
}

// Options tune a report; the zero value is what production uses.
type Options struct {
	// Now is the clock for default periods (nil: time.Now).
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// query resolves a filter and scope for a report.
func query(f Filter, s Scope, o Options) (Query, error) {
	from, to, err := f.Period(o.now())
	if err != nil {
		return Query{}, err
	}
	return Resolve(f, s, from, to)
}

// ComputeOverview computes the overview of what f asks within scope s:
// one scan of the activities (the period and the months of the series
// before it), then the people met, while the assessments and the previous
// period are read on another connection.
func ComputeOverview(ctx context.Context, src Source, f Filter, s Scope, o Options) (*Overview, error) {
	q, err := query(f, s, o)
	if err != nil {
		return nil, err
	}
	ov := &Overview{Filter: applied(f, q)}
	// The side work needs nothing from the main scan.
	side := make(chan sideResult, 1) // buffered: an early return leaks nothing
	go func() { side <- overviewSide(ctx, src, q) }()

	acts := newActivityTally(q)
	if err := acts.scan(ctx, src); err != nil {
		return nil, err
	}
	acts.fill(ov)
	people := newPeopleTally(q, acts.cur.bens)
	if err := people.scan(ctx, src); err != nil {
		return nil, err
	}
	people.fill(ov, acts)

	sr := <-side
	if sr.err != nil {
		return nil, sr.err
	}
	ov.Diagnostics, ov.Previous, ov.LastYear = sr.diag, sr.prev, sr.lastYear
	return ov, nil
}

// monthAcc accumulates one month of the series.
type monthAcc struct {
	m    Month
	mins int
	bens map[ident.ID]struct{}
}

// activityTally accumulates what the overview reads from activities.
type activityTally struct {
	q           Query
	seriesStart time.Time
	seriesFrom  int // first day of the series
	months      []monthAcc
	cur         *headline

	byType, lieux, partenaires, autonomie, niveaux, redirection, durees, communes tally
	themes, demarches, materiels                                                  setTally
	// Workshops' anonymous head counts, indexed like the domain lists.
	anonGenres, anonAges, anonStatuts []int
	b                                 Beneficiaires
	orientes                          int
}

// newActivityTally prepares the tallies of q and the 12 months ending
// with its last month.
func newActivityTally(q Query) *activityTally {
	end := DayTime(q.To)
	t := &activityTally{q: q, cur: newHeadline(q.From, q.To),
		seriesStart: time.Date(end.Year(), end.Month()-11, 1, 0, 0, 0, 0, time.UTC),
		byType:      tally{}, lieux: tally{}, partenaires: tally{}, autonomie: tally{}, niveaux: tally{},
		redirection: tally{}, durees: tally{}, communes: tally{},
		themes: setTally{bits: Thematiques}, demarches: setTally{bits: Demarches}, materiels: setTally{bits: Materiels},
		anonGenres:  make([]int, len(domain.Genres.Codes)),
		anonAges:    make([]int, len(domain.TranchesAge.Codes)),
		anonStatuts: make([]int, len(domain.StatutsSociaux.Codes)),
	}
	t.seriesFrom = DayOf(t.seriesStart)
	t.months = make([]monthAcc, 12)
	for i := range t.months {
		m := t.seriesStart.AddDate(0, i, 0)
		t.months[i] = monthAcc{m: Month{Month: m.Format("2006-01"), Label: fmt.Sprintf("%s %d", mois[m.Month()-1], m.Year())},
			bens: map[ident.ID]struct{}{}}
	}
	return t
}

// scan reads the activities of the period and of the series in one pass:
// the two halves of days on two connections at once, the tallies
// serialised (reading the rows is most of the cost).
func (t *activityTally) scan(ctx context.Context, src Source) error {
	scan := t.q
	scan.From = min(t.q.From, t.seriesFrom)
	scan.Statistical = true
	add := serialized(t.add)
	err := inDayHalves(scan, func(part Query) error {
		return src.Activities(ctx, part, add)
	})
	if err != nil {
		return fmt.Errorf("overview: reading activities: %w", err)
	}
	return nil
}

// add counts one activity in the series and, within the period, in the
// headline and the breakdowns.
func (t *activityTally) add(a *ActivityFact) error {
	if a.Day >= t.seriesFrom {
		t.addToMonth(a)
	}
	if a.Day < t.q.From {
		return nil
	}
	t.cur.add(a)
	acc := a.Participants
	t.byType.add(a.Type, 1, acc)
	t.lieux.add(a.TypeLieu, 1, acc)
	t.partenaires.add(a.StructurePartenaire, 1, acc)
	t.durees.add(dureeBand(a.Duree), 1, acc)
	t.communes.add(a.Commune, 1, acc)
	t.themes.add(a.Thematiques, acc)
	t.demarches.add(a.Demarches, acc)
	t.materiels.add(a.Materiel, acc)
	if a.Type == "collectif" {
		t.addWorkshop(a)
	} else {
		t.addIndividual(a)
	}
	return nil
}

func (t *activityTally) addToMonth(a *ActivityFact) {
	m := &t.months[monthIndex(t.seriesStart, a.Day)]
	m.m.Activites++
	m.m.Accompagnements += a.Participants
	m.mins += a.Duree
	for _, id := range a.Beneficiaires {
		m.bens[id] = struct{}{}
	}
}

func (t *activityTally) addWorkshop(a *ActivityFact) {
	t.niveaux.add(a.Niveau, 1, a.Participants)
	t.b.ParticipantsAteliers += a.Participants
	t.b.ParticipantsAnonymes += max(0, a.Participants-len(a.Beneficiaires))
	t.b.DejaAccompagnes += a.DejaAccompagne
	addInto(t.anonGenres, a.Genres)
	addInto(t.anonAges, a.TranchesAge)
	addInto(t.anonStatuts, a.StatutsSociaux)
}

func (t *activityTally) addIndividual(a *ActivityFact) {
	t.autonomie.add(a.Autonomie, 1, a.Participants)
	if a.Oriente {
		t.orientes++
		t.redirection.add(a.StructureRedirection, 1, a.Participants)
	}
	if len(a.Beneficiaires) == 0 {
		t.b.SansFiche++
	}
}

// fill writes the activities' part of the overview.
func (t *activityTally) fill(ov *Overview) {
	ov.Headline = t.cur.done()
	for i := range t.months {
		t.months[i].m.Heures = hours(t.months[i].mins)
		t.months[i].m.Beneficiaires = len(t.months[i].bens)
		ov.Mois = append(ov.Mois, t.months[i].m)
	}
	ov.ParType = t.byType.ordinal(domain.TypesActivite.Codes)
	ov.TypesLieu = t.lieux.ranked(domain.TypesLieu.Codes)
	ov.Partenaires = t.partenaires.ranked(domain.StructuresPartenaires.Codes)
	ov.Durees = t.durees.ordinal(Durees)
	ov.Communes = t.communes.communes()
	ov.Thematiques = t.themes.ranked()
	ov.Demarches = t.demarches.ranked()
	ov.Materiels = t.materiels.ranked()
	ov.Niveaux = t.niveaux.ordinal(domain.Niveaux.Codes)
	ov.Autonomie = t.autonomie.ordinal(domain.Autonomies.Codes)
	ov.Orientation = Orientation{Orientes: t.orientes, Individuels: ov.Headline.Individuels,
		Part: share(t.orientes, ov.Headline.Individuels), Structures: t.redirection.ranked(domain.StructuresRedirection.Codes)}
}

// peopleTally accumulates the statistical fields of the people met.
type peopleTally struct {
	q                                Query
	met                              map[ident.ID]struct{}
	known, suivis, nouveaux          int
	genres, ages, statuts, residence tally
}

func newPeopleTally(q Query, met map[ident.ID]struct{}) *peopleTally {
	return &peopleTally{q: q, met: met, genres: tally{}, ages: tally{}, statuts: tally{}, residence: tally{}}
}

// scan reads the records of the people met: sorted ids walk the index in
// order, two halves on two connections at once (the side work is done by
// now), the callback serialised.
func (p *peopleTally) scan(ctx context.Context, src Source) error {
	ids := make([]ident.ID, 0, len(p.met))
	for id := range p.met {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b ident.ID) int { return bytes.Compare(a[:], b[:]) })
	add := serialized(p.add)
	err := inHalves(ids, func(part []ident.ID) error {
		return src.Beneficiaries(ctx, part, add)
	})
	if err != nil {
		return fmt.Errorf("overview: reading beneficiaries: %w", err)
	}
	return nil
}

func (p *peopleTally) add(bf *BeneficiaryFact) error {
	if _, ok := p.met[bf.ID]; !ok {
		return nil
	}
	p.known++
	if bf.Suivi {
		p.suivis++
	}
	if bf.First >= p.q.From && bf.First <= p.q.To {
		p.nouveaux++
	}
	p.genres.add(orNC(bf.Genre), 1, 0)
	p.ages.add(orNC(bf.TrancheAge), 1, 0)
	p.statuts.add(orNC(bf.StatutSocial), 1, 0)
	p.residence.add(bf.Commune, 1, 0)
	return nil
}

// fill writes the people's part of the overview, with the workshops'
// anonymous head counts of acts.
func (p *peopleTally) fill(ov *Overview, acts *activityTally) {
	// Records deleted since: counted, their fields unknown.
	unknown := len(p.met) - p.known
	for _, t := range []tally{p.genres, p.ages, p.statuts} {
		t.add("non_communique", unknown, 0)
	}
	addCounts(p.genres, domain.Genres, acts.anonGenres)
	addCounts(p.ages, domain.TranchesAge, acts.anonAges)
	addCounts(p.statuts, domain.StatutsSociaux, acts.anonStatuts)
	b := acts.b
	b.Suivis, b.Nouveaux = p.suivis, p.nouveaux
	b.Distincts = len(p.met)
	b.Anonymes = b.Distincts - b.Suivis
	b.Personnes = b.Distincts + b.SansFiche + b.ParticipantsAnonymes
	ov.Beneficiaires = b
	ov.Genres = p.genres.ranked(domain.Genres.Codes)
	ov.TranchesAge = p.ages.ordinal(domain.TranchesAge.Codes)
	ov.StatutsSociaux = p.statuts.ranked(domain.StatutsSociaux.Codes)
	ov.CommunesResidence = p.residence.communes()
}

// inDayHalves runs fn on the two halves of q's days at once (on q alone
// when it spans less than two months).
func inDayHalves(q Query, fn func(Query) error) error {
	from, to := DayTime(q.From), DayTime(q.To)
	if to.Sub(from) < 60*24*time.Hour {
		return fn(q)
	}
	first, second := q, q
	first.To = DayOf(from.Add(to.Sub(from) / 2))
	second.From = DayOf(DayTime(first.To).AddDate(0, 0, 1))
	return concurrently(first, second, fn)
}

// inHalves runs fn on the two halves of ids at once (on one when few).
func inHalves(ids []ident.ID, fn func([]ident.ID) error) error {
	if len(ids) < 2048 {
		return fn(ids)
	}
	half := len(ids) / 2
	return concurrently(ids[:half], ids[half:], fn)
}

// concurrently runs fn on a and b at once.
func concurrently[T any](a, b T, fn func(T) error) error {
	other := make(chan error, 1)
	go func() { other <- fn(b) }()
	err := fn(a)
	return errors.Join(err, <-other)
}

// serialized returns fn behind a mutex: the callbacks of the two halves
// tally into the same maps.
func serialized[T any](fn func(T) error) func(T) error {
	var mu sync.Mutex
	return func(v T) error {
		mu.Lock()
		defer mu.Unlock()
		return fn(v)
	}
}

// sideResult is what overviewSide computes.
type sideResult struct {
	diag           Diagnostics
	prev, lastYear Headline
	err            error
}

// overviewSide computes the assessments part and the headlines of the
// period of equal length just before q's and of the same dates a year
// earlier.
func overviewSide(ctx context.Context, src Source, q Query) sideResult {
	var r sideResult
	if r.diag, r.err = diagnostics(ctx, src, q); r.err != nil {
		return r
	}
	n := int(DayTime(q.To).Sub(DayTime(q.From)).Hours()/24+0.5) + 1
	prevTo := DayTime(q.From).AddDate(0, 0, -1)
	prev := q
	prev.From, prev.To = DayOf(prevTo.AddDate(0, 0, -(n-1))), DayOf(prevTo)
	if r.prev, r.err = summed(ctx, src, prev); r.err != nil {
		r.err = fmt.Errorf("overview: reading the previous period: %w", r.err)
		return r
	}
	ly := q
	ly.From, ly.To = YearBefore(q.From), YearBefore(q.To)
	if r.lastYear, r.err = summed(ctx, src, ly); r.err != nil {
		r.err = fmt.Errorf("overview: reading the same period last year: %w", r.err)
	}
	return r
}

// summed is the headline of q from the source's sums.
func summed(ctx context.Context, src Source, q Query) (Headline, error) {
	sums, err := src.Sums(ctx, q)
	if err != nil {
		return Headline{}, err
	}
	return Headline{From: isoDay(q.From), To: isoDay(q.To), Accompagnements: sums.Participants,
		Activites: sums.Activites, Individuels: sums.Activites - sums.Collectifs, Collectifs: sums.Collectifs,
		Beneficiaires: sums.Beneficiaires, Minutes: sums.Minutes, Heures: hours(sums.Minutes),
		PassNumerique: sums.PassNumerique, Communes: sums.Communes}, nil
}

// YearBefore is day d (yyyymmdd) one year earlier; 29 February becomes 28
// February, so that a period ending with February ends with it a year
// before too.
func YearBefore(d int) int {
	y, m, day := d/10000-1, d/100%100, d%100
	if last := DayTime(y*10000+m*100+1).AddDate(0, 1, -1).Day(); day > last {
		day = last
	}
	return y*10000 + m*100 + day
}

// diagnostics computes the assessments part. Assessments have no vehicle:
// under a vehicle filter none is counted.
func diagnostics(ctx context.Context, src Source, q Query) (Diagnostics, error) {
	d := Diagnostics{}
	type score struct{ firstDay, first, lastDay, last, n int }
	var (
		sum, evalues [5]int
		people       = map[ident.ID]*[5]score{}
		autonomie    = tally{}
	)
	if q.Vehicle == "" {
		err := src.Assessments(ctx, q, func(a *AssessmentFact) error {
			d.Nombre++
			autonomie.add(a.AutonomieGlobale, 1, 0)
			var p *[5]score
			if !a.Beneficiaire.IsZero() {
				if p = people[a.Beneficiaire]; p == nil {
					p = new([5]score)
					people[a.Beneficiaire] = p
				}
			}
			for i, s := range a.Scores {
				if s < 0 {
					continue
				}
				sum[i] += s
				evalues[i]++
				if p == nil {
					continue
				}
				ps := &p[i]
				if ps.n == 0 || a.Day < ps.firstDay {
					ps.firstDay, ps.first = a.Day, s
				}
				if ps.n == 0 || a.Day >= ps.lastDay {
					ps.lastDay, ps.last = a.Day, s
				}
				ps.n++
			}
			return nil
		})
		if err != nil {
			return d, fmt.Errorf("overview: reading assessments: %w", err)
		}
	}
	d.Beneficiaires = len(people)
	for i, c := range domain.DomainesCRCN.Codes {
		ds := DomainScore{Code: c.Code, Label: c.Label, Evalues: evalues[i]}
		if evalues[i] > 0 {
			ds.Moyenne = round(float64(sum[i])/float64(evalues[i]), 2)
		}
		progress := 0
		for _, p := range people {
			if p[i].n >= 2 {
				ds.Personnes++
				progress += p[i].last - p[i].first
			}
		}
		if ds.Personnes > 0 {
			ds.Progression = round(float64(progress)/float64(ds.Personnes), 2)
		}
		d.Domaines = append(d.Domaines, ds)
	}
	d.Autonomie = autonomie.ordinal(domain.Autonomies.Codes)
	return d, nil
}

func monthIndex(seriesStart time.Time, day int) int {
	y, m := day/10000, day/100%100
	i := (y-seriesStart.Year())*12 + m - int(seriesStart.Month())
	return min(max(i, 0), 11)
}

func orNC(code string) string {
	if code == "" {
		return "non_communique"
	}
	return code
}

func addInto(dst, src []int) {
	for i := range min(len(dst), len(src)) {
		dst[i] += src[i]
	}
}

func addCounts(t tally, list *domain.CodeList, n []int) {
	for i, c := range list.Codes {
		if i < len(n) && n[i] > 0 {
			t.add(c.Code, n[i], 0)
		}
	}
}
