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

// ComputeOverview computes the overview of what f asks within scope s.
func ComputeOverview(ctx context.Context, src Source, f Filter, s Scope, o Options) (*Overview, error) {
	q, err := query(f, s, o)
	if err != nil {
		return nil, err
	}
	ov := &Overview{Filter: applied(f, q)}

	// One scan covers the period and the months of the series before it.
	start := DayTime(q.To)
	seriesStart := time.Date(start.Year(), start.Month()-11, 1, 0, 0, 0, 0, time.UTC)
	seriesFrom := DayOf(seriesStart)
	type monthAcc struct {
		m    Month
		mins int
		bens map[ident.ID]struct{}
	}
	months := make([]monthAcc, 12)
	for i := range months {
		t := seriesStart.AddDate(0, i, 0)
		months[i].m = Month{Month: t.Format("2006-01"), Label: fmt.Sprintf("%s %d", mois[t.Month()-1], t.Year())}
		months[i].bens = map[ident.ID]struct{}{}
	}
	cur := newHeadline(q.From, q.To)
	var (
		byType, lieux, partenaires, autonomie, niveaux, redirection, durees, communes = tally{}, tally{}, tally{}, tally{}, tally{}, tally{}, tally{}, tally{}
		themes                                                                        = setTally{bits: Thematiques}
		demarches                                                                     = setTally{bits: Demarches}
		materiels                                                                     = setTally{bits: Materiels}
		anonGenres                                                                    = make([]int, len(domain.Genres.Codes))
		anonAges                                                                      = make([]int, len(domain.TranchesAge.Codes))
		anonStatuts                                                                   = make([]int, len(domain.StatutsSociaux.Codes))
		b                                                                             Beneficiaires
		orientes                                                                      int
	)
	// Meanwhile, on another read connection, the assessments and the
	// previous period, which need nothing from the main scan.
	side := make(chan sideResult, 1) // buffered: an early return leaks nothing
	go func() { side <- overviewSide(ctx, src, q) }()

	scan := q
	scan.From = min(q.From, seriesFrom)
	scan.Statistical = true
	perActivity := func(a *ActivityFact) error {
		if a.Day >= seriesFrom {
			m := &months[monthIndex(seriesStart, a.Day)]
			m.m.Activites++
			m.m.Accompagnements += a.Participants
			m.mins += a.Duree
			for _, id := range a.Beneficiaires {
				m.bens[id] = struct{}{}
			}
		}
		if a.Day < q.From {
			return nil
		}
		cur.add(a)
		acc := a.Participants
		byType.add(a.Type, 1, acc)
		lieux.add(a.TypeLieu, 1, acc)
		partenaires.add(a.StructurePartenaire, 1, acc)
		durees.add(dureeBand(a.Duree), 1, acc)
		communes.add(a.Commune, 1, acc)
		themes.add(a.Thematiques, acc)
		demarches.add(a.Demarches, acc)
		materiels.add(a.Materiel, acc)
		if a.Type == "collectif" {
			niveaux.add(a.Niveau, 1, acc)
			b.ParticipantsAteliers += a.Participants
			b.ParticipantsAnonymes += max(0, a.Participants-len(a.Beneficiaires))
			b.DejaAccompagnes += a.DejaAccompagne
			addInto(anonGenres, a.Genres)
			addInto(anonAges, a.TranchesAge)
			addInto(anonStatuts, a.StatutsSociaux)
			return nil
		}
		autonomie.add(a.Autonomie, 1, acc)
		if a.Oriente {
			orientes++
			redirection.add(a.StructureRedirection, 1, acc)
		}
		if len(a.Beneficiaires) == 0 {
			b.SansFiche++
		}
		return nil
	}
	// The scan's two halves of days run on two connections at once, the
	// tallies serialised: reading the rows is most of the cost.
	tallyActivity := serialized(perActivity)
	err = inDayHalves(scan, func(part Query) error {
		return src.Activities(ctx, part, tallyActivity)
	})
	if err != nil {
		return nil, fmt.Errorf("overview: reading activities: %w", err)
	}
	ov.Headline = cur.done()
	for i := range months {
		months[i].m.Heures = hours(months[i].mins)
		months[i].m.Beneficiaires = len(months[i].bens)
		ov.Mois = append(ov.Mois, months[i].m)
	}
	ov.ParType = byType.ordinal(domain.TypesActivite.Codes)
	ov.TypesLieu = lieux.ranked(domain.TypesLieu.Codes)
	ov.Partenaires = partenaires.ranked(domain.StructuresPartenaires.Codes)
	ov.Durees = durees.ordinal(Durees)
	ov.Communes = communes.communes()
	ov.Thematiques = themes.ranked()
	ov.Demarches = demarches.ranked()
	ov.Materiels = materiels.ranked()
	ov.Niveaux = niveaux.ordinal(domain.Niveaux.Codes)
	ov.Autonomie = autonomie.ordinal(domain.Autonomies.Codes)
	ov.Orientation = Orientation{Orientes: orientes, Individuels: ov.Headline.Individuels,
		Part: share(orientes, ov.Headline.Individuels), Structures: redirection.ranked(domain.StructuresRedirection.Codes)}

	// The people met: their records' statistical fields.
	genres, ages, statuts, residence := tally{}, tally{}, tally{}, tally{}
	ids := make([]ident.ID, 0, len(cur.bens))
	for id := range cur.bens {
		ids = append(ids, id)
	}
	known := 0
	countPerson := func(bf *BeneficiaryFact) error {
		if _, ok := cur.bens[bf.ID]; !ok {
			return nil
		}
		known++
		if bf.Suivi {
			b.Suivis++
		}
		if bf.First >= q.From && bf.First <= q.To {
			b.Nouveaux++
		}
		genres.add(orNC(bf.Genre), 1, 0)
		ages.add(orNC(bf.TrancheAge), 1, 0)
		statuts.add(orNC(bf.StatutSocial), 1, 0)
		residence.add(bf.Commune, 1, 0)
		return nil
	}
	// Sorted ids walk the index in order; two halves read on two
	// connections at once (the side work is done by now), the callback
	// serialised.
	slices.SortFunc(ids, func(a, b ident.ID) int { return bytes.Compare(a[:], b[:]) })
	tallyPerson := serialized(countPerson)
	err = inHalves(ids, func(part []ident.ID) error {
		return src.Beneficiaries(ctx, part, tallyPerson)
	})
	if err != nil {
		return nil, fmt.Errorf("overview: reading beneficiaries: %w", err)
	}

	// Records deleted since: counted, their fields unknown.
	unknown := len(cur.bens) - known
	for _, t := range []tally{genres, ages, statuts} {
		t.add("non_communique", unknown, 0)
	}
	addCounts(genres, domain.Genres, anonGenres)
	addCounts(ages, domain.TranchesAge, anonAges)
	addCounts(statuts, domain.StatutsSociaux, anonStatuts)
	b.Distincts = len(cur.bens)
	b.Anonymes = b.Distincts - b.Suivis
	b.Personnes = b.Distincts + b.SansFiche + b.ParticipantsAnonymes
	ov.Beneficiaires = b
	ov.Genres = genres.ranked(domain.Genres.Codes)
	ov.TranchesAge = ages.ordinal(domain.TranchesAge.Codes)
	ov.StatutsSociaux = statuts.ranked(domain.StatutsSociaux.Codes)
	ov.CommunesResidence = residence.communes()

	sr := <-side
	if sr.err != nil {
		return nil, sr.err
	}
	ov.Diagnostics, ov.Previous = sr.diag, sr.prev
	return ov, nil
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
	diag Diagnostics
	prev Headline
	err  error
}

// overviewSide computes the assessments part and the headline of the
// period of equal length just before q's.
func overviewSide(ctx context.Context, src Source, q Query) sideResult {
	var r sideResult
	if r.diag, r.err = diagnostics(ctx, src, q); r.err != nil {
		return r
	}
	n := int(DayTime(q.To).Sub(DayTime(q.From)).Hours()/24+0.5) + 1
	prevTo := DayTime(q.From).AddDate(0, 0, -1)
	prev := q
	prev.From, prev.To = DayOf(prevTo.AddDate(0, 0, -(n-1))), DayOf(prevTo)
	sums, err := src.Sums(ctx, prev)
	if err != nil {
		r.err = fmt.Errorf("overview: reading the previous period: %w", err)
		return r
	}
	r.prev = Headline{From: isoDay(prev.From), To: isoDay(prev.To), Accompagnements: sums.Participants,
		Activites: sums.Activites, Individuels: sums.Activites - sums.Collectifs, Collectifs: sums.Collectifs,
		Beneficiaires: sums.Beneficiaires, Minutes: sums.Minutes, Heures: hours(sums.Minutes),
		PassNumerique: sums.PassNumerique, Communes: sums.Communes}
	return r
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
