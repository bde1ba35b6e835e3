package e2e

import (
	"testing"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// A team's pull after thousands of one-field edits: the outside tester's
// reproduction of the stuck teammate. 6,000 activities, each edited twice
// (its duration), make 12,000 changes of about 45 bytes: more than
// wire.MaxChanges fit in one page by bytes alone. A hub that capped pages
// by bytes only could not encode the page, and every sync of the second
// laptop failed for good; pages are cut by count too, and it pulls all.
func TestPullAfterTenThousandSmallEdits(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	const n = 6000
	acts := make([]*domain.Activity, n)
	recs := make([]domain.Record, n)
	for i := range acts {
		acts[i] = &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30,
			TypeLieu: "lieu_activite", Commune: "88160", Thematiques: []string{"email"}}
		recs[i] = acts[i]
	}
	a.save(t, recs...)
	for _, d := range []int{45, 60} {
		for _, r := range acts {
			r.Duree = d
		}
		a.save(t, recs...)
	}
	if rep := a.sync(t); rep.Pushed != 3*n {
		t.Fatalf("pushed %d changes, want %d", rep.Pushed, 3*n)
	}
	b := newAgent(t, h, "bus-2", "cd88", nil)
	rep := b.sync(t) // failed with "internal error" on every try before
	if rep.Pulled < 3*n {
		t.Fatalf("the teammate pulled %d changes, want %d", rep.Pulled, 3*n)
	}
	if rep.Pulled/wire.MaxChanges < 1 {
		t.Fatalf("%d changes pulled: the test no longer crosses a page's count cap", rep.Pulled)
	}
	sameLines(t, "the teammate's records", b.lines(t), a.lines(t))
}
