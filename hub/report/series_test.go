package report

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestYearBefore(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{20260315, 20250315},
		{20260101, 20250101},
		{20251231, 20241231},
		{20240229, 20230228}, // no 29 February in 2023
		{20250228, 20240228},
		{20250301, 20240301},
	} {
		if got := YearBefore(tc.in); got != tc.want {
			t.Errorf("YearBefore(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// lastYearFacts: one activity a month of 2025 and 2026 in team cd88 (a
// workshop of 10 on the 10th, 60 minutes, in Épinal, for odd months; an
// individual session of 30 minutes in Saint-Dié, for even ones), and
// 29 February 2024, a workshop of 7.
func lastYearFacts() *memSource {
	src := &memSource{}
	for _, y := range []int{2025, 2026} {
		for m := 1; m <= 12; m++ {
			a := ActivityFact{Day: y*10000 + m*100 + 10, Team: "cd88", Type: "individuel", Duree: 30, Participants: 1, Commune: "88413"}
			if m%2 == 1 {
				a.Type, a.Duree, a.Participants, a.Commune = "collectif", 60, 10, "88160"
			}
			src.acts = append(src.acts, a)
		}
	}
	src.acts = append(src.acts, ActivityFact{Day: 20240229, Team: "cd88", Type: "collectif", Duree: 90, Participants: 7, Commune: "88160"})
	return src
}

// The overview's comparison with the same dates a year earlier, for
// periods of every shape: a month, a quarter across a new year, a whole
// year, a period ending on 29 February, a period with nothing a year
// before.
func TestOverviewSamePeriodLastYear(t *testing.T) {
	day := func(s string) time.Time {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			panic(err)
		}
		return t
	}
	for _, tc := range []struct {
		name                     string
		from, to                 string
		wantFrom, wantTo         string
		acts, acc, minutes, coms int
	}{
		{"a month", "2026-03-01", "2026-03-31", "2025-03-01", "2025-03-31", 1, 10, 60, 1},
		{"an even month", "2026-04-01", "2026-04-30", "2025-04-01", "2025-04-30", 1, 1, 30, 1},
		{"a quarter across the new year", "2025-12-01", "2026-02-28", "2024-12-01", "2025-02-28", 2, 11, 90, 2},
		{"a year", "2026-01-01", "2026-12-31", "2025-01-01", "2025-12-31", 12, 66, 540, 2},
		{"ending on 29 February", "2024-02-01", "2024-02-29", "2023-02-01", "2023-02-28", 0, 0, 0, 0},
		{"from 29 February", "2025-02-01", "2025-02-28", "2024-02-01", "2024-02-28", 0, 0, 0, 0},
		{"March 2025 sees 29 February 2024 outside", "2025-03-01", "2025-03-31", "2024-03-01", "2024-03-31", 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ov, err := ComputeOverview(context.Background(), lastYearFacts(), Filter{From: day(tc.from), To: day(tc.to)}, Scope{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ly := ov.LastYear
			if ly.From != tc.wantFrom || ly.To != tc.wantTo {
				t.Fatalf("last year %s to %s, want %s to %s", ly.From, ly.To, tc.wantFrom, tc.wantTo)
			}
			if ly.Activites != tc.acts || ly.Accompagnements != tc.acc || ly.Minutes != tc.minutes || ly.Communes != tc.coms || ly.Heures != hours(tc.minutes) {
				t.Fatalf("last year %+v, want %d activities, %d accompagnements, %d minutes, %d communes", ly, tc.acts, tc.acc, tc.minutes, tc.coms)
			}
			// This year's headline over the same kind of dates.
			if tc.name == "a year" && (ov.Headline.Activites != 12 || ov.Headline.Accompagnements != 66) {
				t.Fatalf("headline %+v", ov.Headline)
			}
		})
	}
}

// Vehicles and mediators side by side over the 12 months ending with
// the period: hand-counted facts, rows ordered by total, activities
// without a vehicle under their device, months outside the window left
// out, the filter's mediator applied, and the choices met.
func TestSeries(t *testing.T) {
	src := &memSource{acts: []ActivityFact{
		{Day: 20260105, Team: "cd88", Vehicule: "Numéribus 1", Mediateur: "Ana", Participants: 1},
		{Day: 20260110, Team: "cd88", Vehicule: "Numéribus 1", Mediateur: "Bob", Participants: 12},
		{Day: 20260310, Team: "cd88", Vehicule: "Numéribus 2", Mediateur: "Ana", Participants: 3},
		{Day: 20260311, Team: "cd88", Device: "bus-9", Mediateur: "Bob", Participants: 1},
		{Day: 20250331, Team: "cd88", Vehicule: "Numéribus 3", Mediateur: "Eve", Participants: 5}, // before the window
		{Day: 20260401, Team: "cd88", Vehicule: "Numéribus 3", Mediateur: "Eve", Participants: 5}, // after the period
		{Day: 20260201, Team: "cd23", Vehicule: "Creuse 1", Mediateur: "Zoé", Participants: 2},
	}}
	f := Filter{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)}
	sc := Scope{Teams: []string{"cd88"}}
	sr, err := ComputeSeries(context.Background(), src, f, sc, Options{}, SeriesVehicles)
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Months) != 12 || sr.Months[0].Month != "2025-04" || sr.Months[11].Month != "2026-03" || sr.Months[11].Short != "mars 26" || sr.Months[9].Short != "janv. 26" {
		t.Fatalf("months %+v", sr.Months)
	}
	type row struct {
		name, device string
		jan, mar     int
		total        int
	}
	var got []row
	for _, r := range sr.Rows {
		got = append(got, row{r.Name, r.Appareil, r.Accompagnements[9], r.Accompagnements[11], r.Total})
	}
	want := []row{{"Numéribus 1", "", 13, 0, 13}, {"Numéribus 2", "", 0, 3, 3}, {"", "bus-9", 0, 1, 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
	if sr.Totals[9] != 13 || sr.Totals[11] != 4 || sr.Totals[0] != 0 {
		t.Fatalf("totals %v", sr.Totals)
	}
	if c := sr.Choices; !slices.Equal(c.Equipes, []string{"cd88"}) || !slices.Equal(c.Vehicules, []string{"Numéribus 1", "Numéribus 2"}) ||
		!slices.Equal(c.Mediateurs, []string{"Ana", "Bob"}) {
		t.Fatalf("choices %+v", c)
	}

	fm := f
	fm.Mediateur = "Ana"
	sr, err = ComputeSeries(context.Background(), src, fm, sc, Options{}, SeriesMediators)
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Rows) != 1 || sr.Rows[0].Name != "Ana" || sr.Rows[0].Total != 4 || sr.Rows[0].Activites[9] != 1 || sr.Rows[0].Activites[11] != 1 {
		t.Fatalf("by mediator, Ana only: %+v", sr.Rows)
	}
	if _, err := ComputeSeries(context.Background(), src, f, sc, Options{}, "equipe"); err == nil {
		t.Fatal("a series by an unknown criterion accepted")
	}
}

// Past MaxSeriesRows vehicles, the smallest are summed in Others.
func TestSeriesOthers(t *testing.T) {
	src := &memSource{}
	for i := range MaxSeriesRows + 3 {
		src.acts = append(src.acts, ActivityFact{Day: 20260310, Team: "t", Vehicule: string(rune('A' + i)), Participants: i + 1})
	}
	sr, err := ComputeSeries(context.Background(), src, Filter{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)},
		Scope{}, Options{}, SeriesVehicles)
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Rows) != MaxSeriesRows || sr.Rows[0].Total != MaxSeriesRows+3 || sr.Others == nil || sr.Others.Total != 1+2+3 || sr.Totals[11] != (MaxSeriesRows+3)*(MaxSeriesRows+4)/2 {
		t.Fatalf("%d rows, first %+v, others %+v, totals %v", len(sr.Rows), sr.Rows[0], sr.Others, sr.Totals)
	}
}
