package plan

import (
	"errors"
	"slices"
	"testing"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

func stop(vehicle, date, start, end, lieu, commune string) domain.TourStop {
	return domain.TourStop{ID: ident.New(), Vehicule: vehicle, Date: date, HeureDebut: start, HeureFin: end, Lieu: lieu, Commune: commune}
}

func fields(t *testing.T, err error) []string {
	t.Helper()
	var ve *domain.ValidationError
	if err == nil {
		return nil
	}
	if !errors.As(err, &ve) {
		t.Fatalf("not a validation error: %v", err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.Field)
	}
	slices.Sort(out)
	return out
}

func TestCheck(t *testing.T) {
	env := DefaultEnv()
	morning := Stop{TourStop: stop("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"), Team: "cd88"}
	others := []Stop{morning}
	cases := []struct {
		name string
		s    domain.TourStop
		prev *Stop
		want []string
	}{
		{"fine", stop("N1", "2026-03-02", "14:00", "17:00", "Marché", "88160"), nil, nil},
		{"back to back", stop("N1", "2026-03-02", "12:00", "13:00", "Marché", "88160"), nil, nil},
		{"other vehicle", stop("N2", "2026-03-02", "09:00", "12:00", "Marché", "88160"), nil, nil},
		{"other day", stop("N1", "2026-03-03", "10:00", "11:00", "Marché", "88160"), nil, nil},
		{"no times", stop("N1", "2026-03-02", "", "", "Marché", "88160"), nil, nil},
		{"overlap", stop("N1", "2026-03-02", "11:30", "13:00", "Marché", "88160"), nil, []string{"heure_debut"}},
		{"inside", stop("N1", "2026-03-02", "10:00", "11:00", "Marché", "88160"), nil, []string{"heure_debut"}},
		{"twice", stop("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"), nil, []string{"lieu"}},
		{"unknown commune", stop("N1", "2026-03-04", "", "", "Mairie", "88999"), nil, []string{"commune"}},
		{"domain rules", domain.TourStop{ID: ident.New(), HeureDebut: "14:00", HeureFin: "13:00"}, nil,
			[]string{"commune", "date", "heure_fin", "lieu", "vehicule"}},
		{"other team", func() domain.TourStop {
			s := stop("N1", "2026-03-04", "", "", "Mairie", "88413")
			s.Equipe = "cd23"
			return s
		}(), nil, []string{"equipe"}},
		{"made when planned", func() domain.TourStop {
			s := stop("N1", "2026-03-04", "", "", "Mairie", "88413")
			s.Realise = true
			return s
		}(), nil, []string{"realise"}},
		// Moving the morning stop itself is no overlap with itself.
		{"move itself", func() domain.TourStop { s := morning.TourStop; s.HeureFin = "12:30"; return s }(), &morning, nil},
	}
	for _, c := range cases {
		s := c.s
		if got := fields(t, Check(env, "cd88", &s, c.prev, others)); !slices.Equal(got, c.want) {
			t.Errorf("%s: problems on %v, want %v", c.name, got, c.want)
		}
		if s.Equipe != "cd88" {
			t.Errorf("%s: equipe %q after Check", c.name, s.Equipe)
		}
	}
	// A move keeps the stored realise, whatever the caller says.
	made := morning
	made.Realise = true
	s := morning.TourStop
	if err := Check(env, "cd88", &s, &made, others); err != nil || !s.Realise {
		t.Fatalf("move of a made stop: realise %v, %v", s.Realise, err)
	}
	s.Realise = true
	if err := Check(env, "cd88", &s, &morning, others); err != nil || s.Realise {
		t.Fatalf("move marking a stop made: realise %v, %v", s.Realise, err)
	}
}

func TestFieldsNeverCarryRealise(t *testing.T) {
	s := stop("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413")
	s.Realise = true
	f, err := Fields(&s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f[realiseField]; ok || len(f) != 6 {
		t.Fatalf("plan fields %v", f.Nums())
	}
}

func TestClockNeverGoesBack(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	last := hlc.FromTime(now.Add(time.Hour)) + 5 // issued before the clock was set back
	c := Clock(now, last)
	a, b := c.Now(), c.Now()
	if a <= last || b <= a {
		t.Fatalf("stamps %s, %s after %s", a, b, last)
	}
	// Within the bound (hlc.MaxAhead): stamps beyond it move no clock.
	c.Observe(hlc.FromTime(now.Add(20 * time.Hour)))
	if n := c.Now(); n <= hlc.FromTime(now.Add(20*time.Hour)) {
		t.Fatalf("stamp %s does not follow what was observed", n)
	}
}

func TestFilter(t *testing.T) {
	s := stop("N1", "2026-03-02", "", "", "Mairie", "88413")
	for _, c := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Team: "cd88", Vehicle: "N1", From: "2026-03-02", To: "2026-03-02"}, true},
		{Filter{Team: "cd23"}, false},
		{Filter{Vehicle: "N2"}, false},
		{Filter{From: "2026-03-03"}, false},
		{Filter{To: "2026-03-01"}, false},
	} {
		if got := c.f.Match("cd88", &s); got != c.want {
			t.Errorf("%+v: %v", c.f, got)
		}
	}
	for _, bad := range []Filter{{From: "02/03/2026"}, {To: "demain"}, {From: "2026-03-02", To: "2026-03-01"}} {
		if bad.Check() == nil {
			t.Errorf("filter %+v accepted", bad)
		}
	}
}

func TestMarkMadeAndSummarize(t *testing.T) {
	a := Stop{TourStop: stop("N1", "2026-03-02", "09:00", "12:00", "Mairie", "88413"), Team: "cd88"}
	b := Stop{TourStop: stop("N1", "2026-03-02", "14:00", "17:00", "Marché", "88160"), Team: "cd88"}
	b.Realise = true
	c := Stop{TourStop: stop("N1", "2026-03-03", "09:00", "12:00", "Mairie", "88413"), Team: "cd88"}
	d := Stop{TourStop: stop("N1", "2026-03-04", "09:00", "12:00", "Église", "88465"), Team: "cd88", Cancelled: true}
	d.Realise = true
	stops := []Stop{a, b, c, d}
	MarkMade(stops, map[ident.ID]int{a.ID: 2, c.ID: 1, d.ID: 1})
	if !stops[0].Made || stops[0].Activities != 2 || !stops[1].Made || !stops[2].Made || stops[3].Made {
		t.Fatalf("made: %+v", stops)
	}
	got := Summarize(stops)
	if len(got) != 1 || got[0].Planned != 3 || got[0].Made != 3 || !slices.Equal(got[0].Communes, []string{"88160", "88413"}) {
		t.Fatalf("summary: %+v", got)
	}
}
