package report

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// The activity exports (CSV, XLSX, « format La Coop ») stream: they read
// the period a window of exportWindow days at a time — that window's
// facts, sorted by day then id, its people and its details — and write it
// before reading the next. Their memory depends on a week's activity,
// never on the period's: a million-activity export runs in the memory of
// one week (`make bench` measures it). Each window is its own read: an
// activity whose date is changed by a sync while an export runs may be
// written twice or not at all, as with any export of a live base.

// exportWindow is how many days of activities an export holds at a time.
const exportWindow = 7

// ExportInfo says who asked for an export and when: the header rows of
// the XLSX files show it.
type ExportInfo struct {
	By   string    // the user's e-mail
	Role string    // their role in French ("coordinateur")
	At   time.Time // when the export was asked
	// Loc is the time zone times are written in (the dashboard's: Paris);
	// nil means UTC.
	Loc *time.Location
}

func (x ExportInfo) loc() *time.Location {
	if x.Loc == nil {
		return time.UTC
	}
	return x.Loc
}

// exportRow is one activity as the exports write it.
type exportRow struct {
	ActivityFact // its slices belong to the row
	Detail       ActivityDetail
	// Person is the beneficiary of an individual session: nil without
	// one, or when the record is unknown (deleted).
	Person *BeneficiaryFact
	// Followed are the followed participants of a workshop, in the
	// record's order; an entry is nil for an unknown record.
	Followed []*BeneficiaryFact
}

// Created is when the activity was recorded: the time in its UUIDv7 id,
// taken on the laptop when the record was made (zero for another kind of
// id).
func (r *exportRow) Created() time.Time {
	if r.ID.Version() != 7 {
		return time.Time{}
	}
	return r.ID.Time()
}

// eachActivity calls fn for each activity of q in day then id order, a
// window of exportWindow days at a time (see above). fn must not keep
// the row.
func eachActivity(ctx context.Context, src Source, q Query, fn func(*exportRow) error) error {
	var (
		rows   []exportRow
		people = map[ident.ID]*BeneficiaryFact{}
		ids    []ident.ID
	)
	for from := q.From; from <= q.To; {
		to := min(addDays(from, exportWindow-1), q.To)
		wq := q
		wq.From, wq.To, wq.Statistical = from, to, false
		rows = rows[:0]
		clear(people)
		err := src.Activities(ctx, wq, func(a *ActivityFact) error {
			r := exportRow{ActivityFact: *a}
			// The source reuses its slices from one fact to the next.
			r.Beneficiaires = slices.Clone(a.Beneficiaires)
			r.Genres, r.TranchesAge, r.StatutsSociaux = slices.Clone(a.Genres), slices.Clone(a.TranchesAge), slices.Clone(a.StatutsSociaux)
			for _, b := range r.Beneficiaires {
				people[b] = nil
			}
			rows = append(rows, r)
			return nil
		})
		if err != nil {
			return fmt.Errorf("export: reading activities: %w", err)
		}
		ctx = WithFactsAsIs(ctx) // brought up to date by this first read
		slices.SortFunc(rows, func(a, b exportRow) int {
			if c := cmp.Compare(a.Day, b.Day); c != 0 {
				return c
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
		ids = ids[:0]
		for id := range people {
			ids = append(ids, id)
		}
		if len(ids) > 0 {
			err = src.Beneficiaries(ctx, ids, func(b *BeneficiaryFact) error {
				c := *b
				people[b.ID] = &c
				return nil
			})
			if err != nil {
				return fmt.Errorf("export: reading beneficiaries: %w", err)
			}
		}
		ids = ids[:0]
		for i := range rows {
			ids = append(ids, rows[i].ID)
		}
		details := make(map[ident.ID]ActivityDetail, len(rows))
		if len(ids) > 0 {
			err = src.ActivityDetails(ctx, ids, func(d *ActivityDetail) error {
				details[d.ID] = *d
				return nil
			})
			if err != nil {
				return fmt.Errorf("export: reading activity details: %w", err)
			}
		}
		for i := range rows {
			r := &rows[i]
			r.Detail = details[r.ID]
			if r.Type == "collectif" {
				r.Followed = make([]*BeneficiaryFact, len(r.Beneficiaires))
				for j, b := range r.Beneficiaires {
					r.Followed[j] = people[b]
				}
			} else if len(r.Beneficiaires) > 0 {
				r.Person = people[r.Beneficiaires[0]]
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		from = addDays(to, 1)
	}
	return nil
}

type asIsKey struct{}

// WithFactsAsIs returns ctx marked so that a Source reads its facts as
// they stand, without first bringing them up to the end of the change
// log. An export brings them up to date once, with its first read, then
// reads its later windows under it: catching up before each of a year's
// 53 windows would wait as many times for a writer another process holds
// (a command beside a running hub waits its busy timeout each time).
func WithFactsAsIs(ctx context.Context) context.Context {
	return context.WithValue(ctx, asIsKey{}, true)
}

// FactsAsIs reports whether ctx asks a Source to read its facts as they
// stand (see WithFactsAsIs).
func FactsAsIs(ctx context.Context) bool {
	v, _ := ctx.Value(asIsKey{}).(bool)
	return v
}

// addDays returns day d (yyyymmdd) plus n days.
func addDays(d, n int) int { return DayOf(DayTime(d).AddDate(0, 0, n)) }

// exportQuery resolves an export's filter and scope, refusing what the
// user may not see before any byte is written.
func exportQuery(f Filter, s Scope, o Options) (Query, error) {
	q, err := query(f, s, o)
	if err != nil {
		return Query{}, err
	}
	q.Statistical = false
	return q, nil
}

// infoLine is one line of an export's header block: a label and its
// value, in French.
type infoLine struct{ Label, Value string }

// describeFilter says, in French, what an export covers: the filter as
// the scope cut it.
func describeFilter(a Applied) []infoLine {
	all := func(v, none string) string {
		if v == "" {
			return none
		}
		return v
	}
	lines := []infoLine{{"Période", "du " + FormatDay(a.FromDay()) + " au " + FormatDay(a.ToDay())}}
	terr := "Tout le périmètre du compte"
	if t, err := ParseTerritory(a.Territory); err == nil && !t.IsZero() {
		terr = territoryLabel(t)
	}
	lines = append(lines, infoLine{"Territoire", terr})
	areas := make([]string, len(a.Areas))
	for i, t := range a.Areas {
		areas[i] = territoryLabel(t)
	}
	return append(lines,
		infoLine{"Zones comptées", all(strings.Join(areas, ", "), "Partout")},
		infoLine{"Équipes", all(strings.Join(a.Teams, ", "), "Toutes")},
		infoLine{"Véhicule", all(a.Vehicle, "Tous")},
		infoLine{"Médiateur", all(a.Mediateur, "Tous")})
}

// territoryLabel is a territory's name and code: "Meurthe-et-Moselle (54)".
func territoryLabel(t Territory) string {
	if n := t.Name(); n != t.Code {
		return n + " (" + t.Code + ")"
	}
	return t.Code
}

// communeOf returns the commune of code in the embedded territories.
func communeOf(code string) (territoire.Commune, bool) {
	if code == "" {
		return territoire.Commune{}, false
	}
	return territoire.Default().Commune(code)
}

// departementName returns the name of département code ("" for none).
func departementName(code string) string {
	if code == "" {
		return ""
	}
	if d, ok := territoire.Default().Departement(code); ok {
		return d.Nom
	}
	return code
}

// splitName splits a mediator's name as the agent asks for it — « votre
// prénom et l'initiale de votre nom » — at its first space: "Camille D."
// gives "Camille" and "D.". A single word is a first name.
func splitName(s string) (first, last string) {
	s = strings.TrimSpace(s)
	first, last, _ = strings.Cut(s, " ")
	return first, strings.TrimSpace(last)
}
