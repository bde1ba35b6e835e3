package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// skewScenario runs the same story with the given clock errors and
// returns the final stop as every replica sees it, and the hub's view of
// the devices. bus-1 edits the place first, bus-2 a moment later (in real
// time): with right clocks bus-2's value wins.
func skewScenario(t *testing.T, skew1, skew2 time.Duration) (final []string, devices string) {
	h := startHub(t)
	w1 := func() time.Time { return time.Now().Add(skew1) }
	w2 := func() time.Time { return time.Now().Add(skew2) }
	a1 := newAgent(t, h, "bus-1", "cd88", w1)
	a2 := newAgent(t, h, "bus-2", "cd88", w2)
	id, _ := ident.Parse("019b8a40-6c00-7000-8000-00000000cafe")
	stop := &domain.TourStop{ID: id, Vehicule: "Numéribus 1", Date: "2026-03-02", Lieu: "Place de la mairie", Commune: "88413"}
	a1.save(t, stop)
	a1.sync(t)
	a2.sync(t)

	// Offline: bus-1 edits, then bus-2 edits the same field.
	e1 := *stop
	e1.Lieu = "Salle des fêtes"
	e1.HeureDebut = "09:00"
	a1.save(t, &e1)
	time.Sleep(50 * time.Millisecond)
	e2 := *stop
	e2.Lieu = "Médiathèque"
	a2.save(t, &e2)

	// Back in coverage, bus-2 first.
	a2.sync(t)
	a1.sync(t)
	a2.sync(t)
	sameLines(t, "team agents", a1.lines(t), a2.lines(t))
	sameLines(t, "hub", hubLines(t, h, "cd88"), a1.lines(t))
	_, devices = h.cli(t, "devices", "--json")
	return a1.lines(t), devices
}

// Agents whose clocks are a year ahead or behind converge to the same
// state as with correct clocks, and the skew is reported.
func TestClockSkewConvergesAsWithRightClocks(t *testing.T) {
	year := 365 * 24 * time.Hour
	want, _ := skewScenario(t, 0, 0)
	if len(want) != 1 || !strings.Contains(want[0], "Médiathèque") || !strings.Contains(want[0], `"heure_debut":"09:00"`) {
		t.Fatalf("right clocks: %v", want)
	}
	for _, tt := range []struct {
		name         string
		skew1, skew2 time.Duration
	}{
		{"bus-2 a year behind", 0, -year},
		{"bus-1 a year ahead", year, 0},
		{"both off, opposite ways", year, -year},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, devices := skewScenario(t, tt.skew1, tt.skew2)
			sameLines(t, "final state vs right clocks", got, want)
			if !strings.Contains(devices, `"ClockOffsetMs":-3153`) && !strings.Contains(devices, `"ClockOffsetMs":3153`) {
				t.Fatalf("hub does not report a year of skew: %s", devices)
			}
		})
	}
	// The agent reports the offset too.
	h := startHub(t)
	a := newAgent(t, h, "bus-3", "cd88", func() time.Time { return time.Now().Add(-year) })
	a.sync(t)
	ss, _ := a.st.SyncState(context.Background())
	if d := time.Duration(ss.ClockOffsetMs) * time.Millisecond; d < year-time.Minute || d > year+time.Minute {
		t.Fatalf("agent's recorded offset %v", d)
	}
}
