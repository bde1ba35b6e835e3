// Package plan holds the rules of tour planning at the hub (issue #6,
// "Tournées"): coordinators plan the stops of each vehicle of a team
// (date, times, place, commune); the plan reaches the team's agents at
// their next sync and shows on the mediators' "today" page; the dashboard
// compares stops planned and stops made, per vehicle.
//
// A planned stop is an ordinary domain.TourStop record whose Equipe is the
// team. The hub writes it as a device of its own would: field-level
// changes, stamped with a hybrid logical clock, logged in the hub's change
// log under the team with the hub's own sequence numbers, merged with
// internal/merge. Agents therefore receive plans through the pull they
// already make (ChangesSince is scoped by team), with no protocol change,
// and an agent marking a stop made (realise) merges field by field with
// a coordinator moving it (last writer wins per field, by HLC). Cancelling
// is a tombstone: final, as every delete.
//
// This package is the domain side and does no I/O: the types the
// dashboard and the CLI use, the checks (domain validation plus the
// planning rules below), the fields a plan writes, the hub clock and the
// "made" rule; stored.go the storage-neutral side of the stores.
// hub/store/sqlite and hub/store/postgres implement the storage, in one
// write transaction per call, with these methods (the API the dashboard
// calls), checked by the conformance suite hub/plan/plantest:
//
//	// PlanStops creates stops (zero ID: a new one is given) or moves
//	// existing ones of team; it returns them as stored.
//	PlanStops(ctx context.Context, team string, stops []domain.TourStop, now time.Time) ([]domain.TourStop, error)
//	// CancelStop tombstones a stop; team "" means any team.
//	CancelStop(ctx context.Context, team string, id ident.ID, now time.Time) error
//	// PlannedStops lists stops with whether each was made.
//	PlannedStops(ctx context.Context, f plan.Filter) ([]plan.Stop, error)
//	// HubDeviceID is the origin of the hub's changes ("" before any).
//	HubDeviceID(ctx context.Context) (string, error)
//
// Errors: a refused plan joins one *domain.ValidationError per bad stop
// (French messages per field, as in the mediators' UI); ErrUnknownTeam,
// ErrNotFound and ErrCancelled are wrapped with their context.
//
// and plan.Summarize turns the list into the per-vehicle table (planned,
// made, communes reached).
//
// Rules checked at planning, beyond TourStop.Validate (vehicle, date,
// place and a commune that exists in internal/territoire, HH:MM times):
//   - the team must be known at the hub (a device or an enrollment of it):
//     a plan for a misspelt team would reach no one, silently;
//   - Equipe, when given, is the team: a stop belongs to one team for good
//     (the hub log and the agents' pulls are partitioned by team);
//   - realise is not planned: whether a stop was made is reported by the
//     mediators, so the hub never writes that field, not even when it
//     moves a stop the agents already marked;
//   - one vehicle is at one place at a time: two live stops of a vehicle
//     on one date may not overlap in time, and the same stop (vehicle,
//     date, start, place, commune) is not planned twice — re-running a
//     `hub plan add` must not double a tour.
//
// A stop counts as made (Stop.Made) when the mediators said so
// (realise true) or when at least one live activity refers to it
// (Activity.Arret, which the agent's UI sets when an activity is started
// from the stop on the "today" page). Matching activities by vehicle,
// commune and date instead was rejected: an activity at someone's home
// (domicile) in the commune, or a second vehicle passing by, would mark a
// stop made that never happened, and two stops of a vehicle in one commune
// on one day could not be told apart.
package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// Errors the callers map to messages and exit codes.
var (
	// ErrUnknownTeam: no device and no enrollment of the team at the hub.
	ErrUnknownTeam = errors.New("unknown team")
	// ErrNotFound: no tour stop with this id (in this team).
	ErrNotFound = errors.New("tour stop not found")
	// ErrCancelled: the stop was cancelled; a tombstone is final, so a
	// cancelled stop cannot be moved (plan a new one).
	ErrCancelled = errors.New("tour stop cancelled")
)

// Stop is a tour stop as the hub holds it, with what the dashboard shows
// beside it.
type Stop struct {
	domain.TourStop
	// Team is the team the record belongs to at the hub: the team whose
	// agents receive it. It equals Equipe for stops planned at the hub.
	Team string `json:"team"`
	// FromHub says the stop was planned at the hub rather than on an agent.
	FromHub bool `json:"from_hub"`
	// Cancelled is set for tombstones (listed only on request).
	Cancelled bool `json:"cancelled,omitempty"`
	// Activities counts the live activities whose arret is this stop.
	Activities int `json:"activities"`
	// Made: Realise, or at least one activity (see the package doc).
	Made bool `json:"made"`
	// Updated is the stamp of the last write to the stop, any device.
	Updated hlc.Timestamp `json:"-"`
}

// Filter selects stops for PlannedStops. Empty fields select all.
type Filter struct {
	Team    string
	Vehicle string
	// From and To bound the stop's date, inclusive, AAAA-MM-JJ.
	From, To string
	// Cancelled includes cancelled stops.
	Cancelled bool
}

// Check validates the filter's dates.
func (f Filter) Check() error {
	for _, d := range []struct{ name, v string }{{"from", f.From}, {"to", f.To}} {
		if d.v == "" {
			continue
		}
		if _, err := time.Parse(domain.DateLayout, d.v); err != nil {
			return fmt.Errorf("filter: %s %q is not a date AAAA-MM-JJ", d.name, d.v)
		}
	}
	if f.From != "" && f.To != "" && f.To < f.From {
		return fmt.Errorf("filter: to %s is before from %s", f.To, f.From)
	}
	return nil
}

// Match reports whether a stop of team passes the filter (the Cancelled
// flag aside).
func (f Filter) Match(team string, s *domain.TourStop) bool {
	return (f.Team == "" || f.Team == team) &&
		(f.Vehicle == "" || f.Vehicle == s.Vehicule) &&
		(f.From == "" || s.Date >= f.From) &&
		(f.To == "" || s.Date <= f.To)
}

// MarkMade fills Activities and Made from the activity count per stop.
func MarkMade(stops []Stop, activities map[ident.ID]int) {
	for i := range stops {
		s := &stops[i]
		s.Activities = activities[s.ID]
		s.Made = !s.Cancelled && (s.Realise || s.Activities > 0)
	}
}

// Sort orders stops by date, start time, team, vehicle, place: the order
// of a tour sheet.
func Sort(stops []Stop) {
	slices.SortFunc(stops, func(a, b Stop) int {
		return cmpStrings(a.Date, b.Date, a.HeureDebut, b.HeureDebut, a.Team, b.Team,
			a.Vehicule, b.Vehicule, a.Lieu, b.Lieu, a.ID.String(), b.ID.String())
	})
}

// cmpStrings compares pairs (a1, b1), (a2, b2)… in turn.
func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// VehicleSummary is one line of the dashboard's "planned vs made" table.
type VehicleSummary struct {
	Team    string `json:"team"`
	Vehicle string `json:"vehicle"`
	Planned int    `json:"planned"` // live stops
	Made    int    `json:"made"`
	// Communes are the distinct INSEE codes of the stops made: the
	// communes the vehicle reached.
	Communes []string `json:"communes"`
}

// Summarize counts stops planned and made per team and vehicle, and the
// communes reached; cancelled stops are not counted. Sorted by team and
// vehicle.
func Summarize(stops []Stop) []VehicleSummary {
	type key struct{ team, vehicle string }
	idx := map[key]int{}
	var out []VehicleSummary
	for i := range stops {
		s := &stops[i]
		if s.Cancelled {
			continue
		}
		k := key{s.Team, s.Vehicule}
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, VehicleSummary{Team: s.Team, Vehicle: s.Vehicule, Communes: []string{}})
		}
		v := &out[j]
		v.Planned++
		if s.Made {
			v.Made++
			if !slices.Contains(v.Communes, s.Commune) {
				v.Communes = append(v.Communes, s.Commune)
			}
		}
	}
	for i := range out {
		slices.Sort(out[i].Communes)
	}
	slices.SortFunc(out, func(a, b VehicleSummary) int { return cmpStrings(a.Team, b.Team, a.Vehicle, b.Vehicle) })
	return out
}

// Env is the validation environment of planning: communes from the
// embedded territory tables. Tour stops refer to no other record and
// need no consent, so the other look-ups answer nothing.
type Env struct{ Territoire *territoire.Index }

// DefaultEnv validates against the embedded territory tables.
func DefaultEnv() Env { return Env{Territoire: territoire.Default()} }

// CommuneExists implements domain.Env.
func (e Env) CommuneExists(code string) bool {
	_, ok := e.Territoire.Commune(code)
	return ok
}

// KindOf implements domain.Env; a tour stop refers to no record.
func (Env) KindOf(ident.ID) domain.Kind { return "" }

// ActiveFinalites implements domain.Env; a tour stop needs no consent.
func (Env) ActiveFinalites(ident.ID) map[string]bool { return nil }

var _ domain.Env = Env{}

// Check normalizes s, sets its Equipe to team, and checks it with the
// domain rules and the planning rules of the package doc against others,
// the team's other live stops (s itself among them is ignored). prev is
// the stored stop when s moves one, nil for a new stop: a move keeps the
// stored realise, whatever s says, since the hub does not write it (the
// dashboard may hand back a stop it listed). Every problem is returned at
// once, as a *domain.ValidationError, so that a coordinator fixes a form
// in one go.
func Check(env domain.Env, team string, s *domain.TourStop, prev *Stop, others []Stop) error {
	s.Normalize()
	var problems []domain.Problem
	if s.Equipe != "" && s.Equipe != team {
		problems = append(problems, domain.Problem{Field: "equipe", Value: s.Equipe, Code: domain.ProblemInvalid,
			Message: fmt.Sprintf("l'arrêt est planifié pour l'équipe %q", team)})
	}
	s.Equipe = team
	switch {
	case prev != nil:
		s.Realise = prev.Realise
	case s.Realise:
		problems = append(problems, domain.Problem{Field: "realise", Code: domain.ProblemNotAllowed,
			Message: "un arrêt se planifie non réalisé : ce sont les médiateurs qui le déclarent réalisé"})
	}
	if err := s.Validate(env); err != nil {
		var ve *domain.ValidationError
		if !errors.As(err, &ve) {
			return fmt.Errorf("validating tour stop %s: %w", s.ID, err)
		}
		problems = append(problems, ve.Problems...)
	}
	for i := range others {
		o := &others[i]
		if o.ID == s.ID || o.Cancelled || o.Vehicule != s.Vehicule || o.Date != s.Date {
			continue
		}
		if o.HeureDebut == s.HeureDebut && o.Lieu == s.Lieu && o.Commune == s.Commune {
			problems = append(problems, domain.Problem{Field: "lieu", Value: s.Lieu, Code: domain.ProblemInvalid,
				Message: fmt.Sprintf("cet arrêt est déjà planifié (%s)", o.ID)})
			continue
		}
		if overlap(s, &o.TourStop) {
			problems = append(problems, domain.Problem{Field: "heure_debut", Value: s.HeureDebut, Code: domain.ProblemInvalid,
				Message: fmt.Sprintf("le véhicule %s est déjà à %s (%s) de %s à %s ce jour-là", s.Vehicule, o.Lieu, o.Commune, o.HeureDebut, o.HeureFin)})
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &domain.ValidationError{Kind: domain.KindTourStop, ID: s.ID.String(), Problems: problems}
}

// overlap reports whether two stops of one day share some time. Stops
// without both times cannot be checked and never overlap.
func overlap(a, b *domain.TourStop) bool {
	if a.HeureDebut == "" || a.HeureFin == "" || b.HeureDebut == "" || b.HeureFin == "" {
		return false
	}
	// HH:MM strings compare as times.
	return a.HeureDebut < b.HeureFin && b.HeureDebut < a.HeureFin
}

// realiseField is TourStop.Realise's field number, which the hub never
// writes.
var realiseField = func() uint64 {
	for _, f := range domain.Fields(domain.KindTourStop) {
		if f.Name == "realise" {
			return f.Num
		}
	}
	panic("plan: TourStop has no realise field")
}()

// Fields returns the fields a plan sets for s: all but realise, which
// belongs to the mediators. Diffing the planned fields of the stored stop
// with these gives the change of a move (change.Diff).
func Fields(s *domain.TourStop) (change.Fields, error) {
	f, err := change.Encode(s)
	if err != nil {
		return nil, fmt.Errorf("encoding tour stop %s: %w", s.ID, err)
	}
	delete(f, realiseField)
	return f, nil
}

// Clock returns the hub's clock for one write transaction: wall time now,
// never before last, the greatest stamp the hub ever issued (read back
// from its change log in that transaction, so that the clock survives
// restarts and several processes writing one database, whose hub writes
// SQLite serializes, and PostgreSQL by the lock on the hub's own row). Before stamping a change to an existing record,
// the writer observes the record's last stamp: a coordinator's move then
// orders after every write the hub had merged into that stop, whatever a
// laptop's clock said.
func Clock(now time.Time, last hlc.Timestamp) *hlc.Clock {
	return hlc.New(func() time.Time { return now }, last)
}
