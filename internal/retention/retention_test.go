package retention

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

func day(s string) time.Time {
	t, ok := domain.ParseDate(s)
	if !ok {
		panic(s)
	}
	return t
}

func TestDefaultsFromTheDomain(t *testing.T) {
	p := Default()
	for k, want := range map[Kind]int{Identite: 24, Diagnostics: 24, Notes: 24, Journal: 12} {
		if got := p.Months(k); got != want {
			t.Errorf("%s: %d months, want %d", k, got, want)
		}
		if p.IsSet(k) {
			t.Errorf("%s set in the default policy", k)
		}
	}
	if got, want := p.Describe(Identite), "24 mois (2 ans) après le dernier contact avec la personne"; got != want {
		t.Errorf("Describe: %q, want %q", got, want)
	}
}

func TestWith(t *testing.T) {
	for _, tc := range []struct {
		kind   Kind
		months int
		ok     bool
	}{
		{Identite, 12, true}, {Identite, 60, true}, {Identite, 0, false}, {Identite, 61, false},
		{Journal, 12, true}, {Journal, 13, false}, {"photos", 12, false},
	} {
		p, err := Default().With(tc.kind, tc.months)
		if tc.ok != (err == nil) {
			t.Errorf("With(%s, %d): %v", tc.kind, tc.months, err)
			continue
		}
		if err != nil {
			if apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("With(%s, %d): code %s, want invalid", tc.kind, tc.months, apperr.CodeOf(err))
			}
			continue
		}
		if p.Months(tc.kind) != tc.months || !p.IsSet(tc.kind) {
			t.Errorf("With(%s, %d): got %d", tc.kind, tc.months, p.Months(tc.kind))
		}
	}
	// With returns a copy: the policy it started from is unchanged.
	a, _ := Default().With(Notes, 6)
	b, _ := a.With(Notes, 36)
	if a.Months(Notes) != 6 || b.Months(Notes) != 36 {
		t.Errorf("With changed its receiver: %d %d", a.Months(Notes), b.Months(Notes))
	}
}

func TestJSON(t *testing.T) {
	p, _ := Default().With(Identite, 12)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"version":1,"mois":{"diagnostics":24,"identite":12,"journal":12,"notes":24}}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var q Policy
	if err := json.Unmarshal(b, &q); err != nil || !q.Equal(p) {
		t.Fatalf("round trip: %v %+v", err, q)
	}
	// A newer hub's kind is ignored; a damaged period or version refused.
	if err := json.Unmarshal([]byte(`{"version":1,"mois":{"identite":18,"photos":3}}`), &q); err != nil || q.Months(Identite) != 18 {
		t.Errorf("unknown kind: %v %d", err, q.Months(Identite))
	}
	for _, bad := range []string{`{"version":1,"mois":{"identite":0}}`, `{"version":2,"mois":{}}`, `[`} {
		if err := json.Unmarshal([]byte(bad), &q); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestParseMonths(t *testing.T) {
	for in, want := range map[string]int{"24": 24, "24 mois": 24, "2 ans": 24, "1 an": 12, " 18 ": 18} {
		if got, err := ParseMonths(in); err != nil || got != want {
			t.Errorf("ParseMonths(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "deux ans", "-3", "24 semaines", "0"} {
		if _, err := ParseMonths(in); err == nil {
			t.Errorf("ParseMonths(%q) accepted", in)
		}
	}
	if got := FormatMonths(12); got != "12 mois (1 an)" {
		t.Errorf("FormatMonths(12) = %q", got)
	}
	if got := FormatMonths(18); got != "18 mois" {
		t.Errorf("FormatMonths(18) = %q", got)
	}
}

func TestDueAndCutoff(t *testing.T) {
	p := Default()
	last := day("2024-03-15")
	for _, tc := range []struct {
		now  string
		want bool
	}{{"2026-03-14", false}, {"2026-03-15", true}, {"2027-01-01", true}, {"2025-03-15", false}} {
		if got := p.Due(Identite, last, day(tc.now).Add(13*time.Hour)); got != tc.want {
			t.Errorf("Due at %s: %v, want %v", tc.now, got, tc.want)
		}
	}
	if p.Due(Identite, time.Time{}, day("2099-01-01")) {
		t.Error("an unknown start is never due")
	}
	// Every start that is due is on or before the cutoff, month ends
	// included.
	now := day("2026-03-01")
	for d := day("2023-12-01"); d.Before(now); d = d.AddDate(0, 0, 1) {
		if p.Due(Notes, d, now) && d.After(p.Cutoff(Notes, now)) {
			t.Fatalf("%s is due at %s but after the cutoff %s", d, now, p.Cutoff(Notes, now))
		}
	}
}

// ids returns n UUIDv7 made at t. ident.NewAt would not do: ids of one
// process never go back in time, and another test may have made one now.
func ids(t time.Time, n int) []ident.ID {
	r := rand.New(rand.NewPCG(uint64(t.Unix()), 7))
	out := make([]ident.ID, n)
	for i := range out {
		out[i] = ident.FromRand(t, r.Uint64)
	}
	return out
}

func ptr(id ident.ID) *ident.ID { return &id }

func TestPlan(t *testing.T) {
	made := day("2023-01-10")
	now := day("2026-06-01")
	id := ids(made, 12)
	ana, bob, cleo, dan, eve := id[0], id[1], id[2], id[3], id[4]
	act := func(i int, who ident.ID, date, notes string) *domain.Activity {
		return &domain.Activity{ID: id[5+i], Type: "individuel", Date: date, Beneficiaire: ptr(who), Notes: notes}
	}
	type rec struct {
		r               domain.Record
		deleted, erased bool
		touched         string
	}
	recs := []rec{
		// Ana: followed, last seen in 2023: her identity, her session's
		// notes and her assessment go.
		{r: &domain.Beneficiary{ID: ana, Nom: "Ana"}, touched: "2023-01-10"},
		{r: act(0, ana, "2023-05-02", "appelle le soir")},
		{r: &domain.Assessment{ID: id[11], Beneficiaire: ana, Date: "2023-05-02", Commentaire: "x"}},
		// Bob: followed, in a workshop last year: kept.
		{r: &domain.Beneficiary{ID: bob, Nom: "Bob"}, touched: "2023-01-10"},
		{r: &domain.Activity{ID: id[6], Type: "collectif", Date: "2025-09-01", Participants: &domain.Participants{Beneficiaires: []ident.ID{bob}, Total: 5}}},
		// Cléo: followed, her only recent session was deleted: not a
		// contact, she goes.
		{r: &domain.Beneficiary{ID: cleo, Nom: "Cléo"}, touched: "2023-01-10"},
		{r: act(2, cleo, "2026-01-01", ""), deleted: true},
		// Dan: anonymous, no assessment: nothing to erase.
		{r: &domain.Beneficiary{ID: dan, Genre: "masculin"}, touched: "2023-01-10"},
		// Eve: followed, withdrew her consent recently: a contact, kept.
		{r: &domain.Beneficiary{ID: eve, Nom: "Eve"}, touched: "2023-01-10"},
		{r: &domain.Consent{ID: id[8], Beneficiaire: eve, Date: "2023-01-10", RetireLe: "2025-12-01"}},
		// A workshop's notes, in 2023: due; another, in 2025: kept.
		{r: &domain.Activity{ID: id[9], Type: "collectif", Date: "2023-04-01", Notes: "salle froide"}},
		{r: &domain.Activity{ID: id[10], Type: "collectif", Date: "2025-04-01", Notes: "salle chaude"}},
	}
	c := NewCensus(Default(), now)
	for _, r := range recs {
		var touched time.Time
		if r.touched != "" {
			touched = day(r.touched)
		}
		c.Record(r.r, r.deleted, r.erased, touched)
	}
	pl := c.Plan()
	var people []ident.ID
	for _, e := range pl.People {
		people = append(people, e.Person)
	}
	want := []ident.ID{ana, cleo}
	sortIDs(want)
	if !slices.Equal(people, want) {
		t.Errorf("people %v, want Ana and Cléo %v", people, want)
	}
	for _, got := range pl.People {
		if got.Person == ana && (!got.LastContact.Equal(day("2023-05-02")) || !slices.Equal(got.Individuals, []ident.ID{id[5]})) {
			t.Errorf("Ana: %+v", got)
		}
	}
	if want := []ident.ID{id[11]}; !slices.Equal(pl.Assessments, want) {
		t.Errorf("assessments %v, want %v", pl.Assessments, want)
	}
	// Ana's session is erased with her identity, not twice.
	if want := []ident.ID{id[9]}; !slices.Equal(pl.Notes, want) {
		t.Errorf("notes %v, want the 2023 workshop %v", pl.Notes, want)
	}
	if got, want := pl.Records(), 2+1+1+1+1; got != want {
		t.Errorf("records %d, want %d", got, want)
	}
}

func TestPlanEdges(t *testing.T) {
	made := day("2023-01-10")
	now := day("2026-06-01")
	id := ids(made, 4)
	b, a := id[0], id[1]
	for _, tc := range []struct {
		name       string
		policy     func() Policy
		identified bool
		erased     bool
		wantPeople int
		wantAssess int
	}{
		// An anonymous person's record is erased with their diagnostics,
		// so that the statistics' link never reaches an identity later.
		{"anonymous with due diagnostics", Default, false, false, 1, 1},
		{"already erased: not again", Default, false, true, 0, 1},
		{"identified", Default, true, false, 1, 1},
		// Diagnostics due before the identity: the assessments go alone.
		{"diagnostics shorter", func() Policy {
			p, _ := Default().With(Identite, 60)
			p, _ = p.With(Diagnostics, 12)
			return p
		}, true, false, 0, 1},
		{"identity shorter, anonymous", func() Policy {
			p, _ := Default().With(Diagnostics, 60)
			return p
		}, false, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCensus(tc.policy(), now)
			ben := &domain.Beneficiary{ID: b}
			if tc.identified {
				ben.Nom = "Nom"
			}
			c.Record(ben, false, tc.erased, made)
			c.Record(&domain.Assessment{ID: a, Beneficiaire: b, Date: "2023-02-01"}, false, false, made)
			pl := c.Plan()
			if len(pl.People) != tc.wantPeople || len(pl.Assessments) != tc.wantAssess {
				t.Errorf("plan %+v: want %d people, %d assessments", pl, tc.wantPeople, tc.wantAssess)
			}
		})
	}
	// An erased assessment or activity holds nothing to purge.
	c := NewCensus(Default(), now)
	c.Record(&domain.Assessment{ID: a, Date: "2023-02-01"}, false, true, made)
	c.Record(&domain.Activity{ID: id[2], Type: "individuel", Date: "2023-02-01", Beneficiaire: ptr(b)}, false, true, made)
	if pl := c.Plan(); !pl.Empty() {
		t.Errorf("erased records planned again: %+v", pl)
	}
	// An imported id that is no UUIDv7 says nothing of when it was made.
	var old ident.ID
	old[6] = 0x40
	old[0] = 0xff // far in the future, read as a UUIDv7
	c = NewCensus(Default(), now)
	c.Record(&domain.Beneficiary{ID: old, Nom: "X"}, false, false, made)
	if pl := c.Plan(); len(pl.People) != 1 {
		t.Errorf("a UUIDv4's bits were read as its creation time: %+v", pl)
	}
}

func TestErrorsAreFrench(t *testing.T) {
	_, err := Default().With("x", 3)
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Message == "" {
		t.Fatalf("%v", err)
	}
}
