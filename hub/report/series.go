package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Series sets vehicles (or mediators) side by side over the 12 months
// ending with the period's last month: how much each one did, month by
// month, and the lists of vehicles, mediators and teams met on the way,
// which the dashboard's filters offer to choose from.
type Series struct {
	Filter Applied `json:"filter"`
	// By is SeriesVehicles or SeriesMediators.
	By     string     `json:"by"`
	Months []MonthRef `json:"months"`
	// Rows: one per vehicle (or mediator), most accompagnements over the
	// 12 months first, at most MaxSeriesRows; the rest are summed in
	// Others.
	Rows   []SeriesRow `json:"rows"`
	Others *SeriesRow  `json:"others,omitempty"`
	// Totals are the accompagnements of every row, month by month.
	Totals []int `json:"totals"`
	// Choices met in the 12 months within the scope (a mediator's name
	// is personal data: the caller leaves Mediateurs out for a viewer).
	Choices Choices `json:"choices"`
}

// The two kinds of Series.
const (
	SeriesVehicles  = "vehicule"
	SeriesMediators = "mediateur"
)

// MaxSeriesRows bounds the rows of a Series: a page shows a territory's
// handful of vehicles, and a région's dozens stay readable.
const MaxSeriesRows = 15

// MonthRef names one month of a series.
type MonthRef struct {
	Month string `json:"month"` // AAAA-MM
	Label string `json:"label"` // "mars 2026"
	Short string `json:"short"` // "mars 26", for a column head
}

// SeriesRow is one vehicle (or mediator) over the months.
type SeriesRow struct {
	Name string `json:"name"`
	// Appareil names the device of activities recorded without a vehicle
	// (Name is then "").
	Appareil        string `json:"appareil,omitempty"`
	Accompagnements []int  `json:"accompagnements"`
	Activites       []int  `json:"activites"`
	Total           int    `json:"total"`
}

// Choices are the values a filter may take within a scope.
type Choices struct {
	Equipes    []string `json:"equipes"`
	Vehicules  []string `json:"vehicules"`
	Mediateurs []string `json:"mediateurs,omitempty"`
}

var shortMois = [...]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."}

// seriesMonths returns the 12 months ending with day to's month, and the
// first day of the first.
func seriesMonths(to int) ([]MonthRef, time.Time) {
	end := DayTime(to)
	start := time.Date(end.Year(), end.Month()-11, 1, 0, 0, 0, 0, time.UTC)
	ms := make([]MonthRef, 12)
	for i := range ms {
		m := start.AddDate(0, i, 0)
		ms[i] = MonthRef{Month: m.Format("2006-01"), Label: fmt.Sprintf("%s %d", mois[m.Month()-1], m.Year()),
			Short: fmt.Sprintf("%s %02d", shortMois[m.Month()-1], m.Year()%100)}
	}
	return ms, start
}

// ComputeSeries computes the series by vehicle or by mediator of what f
// asks within scope s, over the 12 months ending with the period's last
// month (the filter's vehicle and mediator apply, so that a vehicle's
// mediators can be set side by side).
func ComputeSeries(ctx context.Context, src Source, f Filter, s Scope, o Options, by string) (*Series, error) {
	if by != SeriesVehicles && by != SeriesMediators {
		return nil, fmt.Errorf("%w: series by %q", ErrBadFilter, by)
	}
	q, err := query(f, s, o)
	if err != nil {
		return nil, err
	}
	months, start := seriesMonths(q.To)
	scan := q
	scan.From = DayOf(start)
	sr := &Series{Filter: applied(f, q), By: by, Months: months, Totals: make([]int, 12)}
	rows := map[[2]string]*SeriesRow{}
	teams, vehicles, mediators := map[string]bool{}, map[string]bool{}, map[string]bool{}
	err = src.Activities(ctx, scan, func(a *ActivityFact) error {
		teams[a.Team] = true
		if a.Vehicule != "" {
			vehicles[a.Vehicule] = true
		}
		if a.Mediateur != "" {
			mediators[a.Mediateur] = true
		}
		key := [2]string{a.Vehicule, ""}
		switch {
		case by == SeriesMediators:
			key = [2]string{a.Mediateur, ""}
		case a.Vehicule == "":
			key[1] = a.Device
		}
		r := rows[key]
		if r == nil {
			r = &SeriesRow{Name: key[0], Appareil: key[1], Accompagnements: make([]int, 12), Activites: make([]int, 12)}
			rows[key] = r
		}
		i := monthIndex(start, a.Day)
		r.Accompagnements[i] += a.Participants
		r.Activites[i]++
		r.Total += a.Participants
		sr.Totals[i] += a.Participants
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("series: reading activities: %w", err)
	}
	for _, r := range rows {
		sr.Rows = append(sr.Rows, *r)
	}
	slices.SortFunc(sr.Rows, func(a, b SeriesRow) int {
		if c := cmp.Compare(b.Total, a.Total); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Appareil, b.Appareil))
	})
	if len(sr.Rows) > MaxSeriesRows {
		others := SeriesRow{Accompagnements: make([]int, 12), Activites: make([]int, 12)}
		for _, r := range sr.Rows[MaxSeriesRows:] {
			for i := range 12 {
				others.Accompagnements[i] += r.Accompagnements[i]
				others.Activites[i] += r.Activites[i]
			}
			others.Total += r.Total
		}
		sr.Rows, sr.Others = sr.Rows[:MaxSeriesRows], &others
	}
	sr.Choices = Choices{Equipes: sortedKeys(teams), Vehicules: sortedKeys(vehicles), Mediateurs: sortedKeys(mediators)}
	return sr, nil
}

// ComputeChoices lists the teams, vehicles and mediators of the
// activities of scope s over the 12 months ending with the day of now,
// and the vehicles of its tour stops planned from then to six months
// ahead: what the dashboard's filters offer.
func ComputeChoices(ctx context.Context, src Source, s Scope, o Options) (Choices, error) {
	now := o.now()
	sr, err := ComputeSeries(ctx, src, Filter{From: now.AddDate(-1, 0, 1), To: now}, s, o, SeriesVehicles)
	if err != nil {
		return Choices{}, err
	}
	c := sr.Choices
	q, err := Resolve(Filter{}, s, DayOf(now.AddDate(-1, 0, 1)), DayOf(now.AddDate(0, 6, 0)))
	if err != nil {
		return Choices{}, err
	}
	vehicles := map[string]bool{}
	for _, v := range c.Vehicules {
		vehicles[v] = true
	}
	err = src.TourStops(ctx, q, func(t *TourStopFact) error {
		if t.Vehicule != "" {
			vehicles[t.Vehicule] = true
		}
		return nil
	})
	if err != nil {
		return Choices{}, fmt.Errorf("choices: reading stops: %w", err)
	}
	c.Vehicules = sortedKeys(vehicles)
	return c, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
