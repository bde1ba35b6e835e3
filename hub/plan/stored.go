package plan

// The storage side of planning that does not depend on the database: what
// a store reads back from a tour stop record, which changes a plan makes,
// how the hub stamps and numbers them, which stops a listing shows. The
// SQLite and PostgreSQL stores share it, so that both plan alike and only
// their transactions and SQL differ.

import (
	"errors"
	"fmt"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// HubDeviceName is the name of the hub's own row in devices, the origin
// of the changes the hub makes: shown as the origin of the records it
// created (Stats.ByDevice), never enrollable, the same on every backend.
const HubDeviceName = "(hub)"

// Stored is a tour stop record as a store holds it: the stop and the
// record's merged state, which a move merges into.
type Stored struct {
	Stop
	State *merge.State
}

// DecodeStored reads a tour stop record of team from its merged state
// (merge.State.Marshal). fromHub says its origin is the hub's own device.
func DecodeStored(id ident.ID, team string, state []byte, fromHub bool) (Stored, error) {
	s := Stored{Stop: Stop{Team: team, FromHub: fromHub}}
	var err error
	if s.State, err = merge.Unmarshal(state); err != nil {
		return s, fmt.Errorf("tour stop %s: %w", id, err)
	}
	r, err := change.Decode(domain.KindTourStop, id, s.State.Live())
	if err != nil {
		return s, fmt.Errorf("tour stop %s: %w", id, err)
	}
	s.TourStop = *r.(*domain.TourStop)
	s.Cancelled, s.Updated = s.State.IsDeleted(), s.State.Last.TS
	return s, nil
}

// Write is one change the hub makes to one record, with the record's
// merged state as the store read it (an empty state for a new record).
type Write struct {
	Kind   domain.Kind
	ID     ident.ID
	Op     change.Op
	Fields change.Fields
	State  *merge.State
}

// KindOf returns the kind of the record id the hub holds, or "" when it
// holds none: Prepare asks it about an id that is no stop of the team.
type KindOf func(id ident.ID) (domain.Kind, error)

// Prepare checks stops against stored, the tour stops of team the hub
// holds (cancelled ones included), and returns them as they will be
// stored, in the order given, with the changes that store them (none for
// a stop unchanged). The rules are PlanStops' (see the stores): a zero ID
// is a new stop (given an id made at now); the ID of a live stop of the
// team moves it, as a change of the fields that differ; an ID the hub
// does not hold creates a stop under it; a cancelled stop cannot move;
// any other record's ID is ErrNotFound. Every stop is checked with Check;
// if any fails, the error joins them all and no write is returned.
func Prepare(team string, stops []domain.TourStop, stored []Stored, kindOf KindOf, now time.Time) ([]domain.TourStop, []Write, error) {
	byID := make(map[ident.ID]*Stored, len(stored))
	others := make([]Stop, 0, len(stored)+len(stops))
	for i := range stored {
		byID[stored[i].ID] = &stored[i]
		if !stored[i].Cancelled {
			others = append(others, stored[i].Stop)
		}
	}
	env := DefaultEnv()
	out := make([]domain.TourStop, len(stops))
	var (
		ws   []Write
		errs []error
	)
	for i := range stops {
		stop := stops[i] // a copy: the caller's slice is not modified
		prev, err := previous(team, &stop, byID, kindOf, now)
		if err != nil {
			if isRefusal(err) {
				errs = append(errs, err)
				continue
			}
			return nil, nil, err
		}
		var prevStop *Stop
		if prev != nil {
			prevStop = &prev.Stop
		}
		if err := Check(env, team, &stop, prevStop, others); err != nil {
			errs = append(errs, err)
			continue
		}
		w, err := write(team, &stop, prev, &others)
		if err != nil {
			return nil, nil, err
		}
		out[i] = stop
		if len(w.Fields) > 0 {
			ws = append(ws, w)
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out, ws, nil
}

// previous returns the stored stop that stop moves, nil for a new stop
// (giving a zero ID a new id). A refusal wraps ErrCancelled or
// ErrNotFound; any other error is the store's.
func previous(team string, stop *domain.TourStop, byID map[ident.ID]*Stored, kindOf KindOf, now time.Time) (*Stored, error) {
	if stop.ID.IsZero() {
		stop.ID = ident.NewAt(now)
		return nil, nil
	}
	if prev := byID[stop.ID]; prev != nil {
		if prev.Cancelled {
			return nil, fmt.Errorf("moving stop %s: %w: plan a new one", stop.ID, ErrCancelled)
		}
		return prev, nil
	}
	k, err := kindOf(stop.ID)
	if err != nil {
		return nil, fmt.Errorf("planning stop %s: %w", stop.ID, err)
	}
	if k != "" {
		return nil, fmt.Errorf("planning stop %s: %w in team %q (a %s, or a stop of another team)", stop.ID, ErrNotFound, team, k)
	}
	return nil, nil
}

// isRefusal tells a refused stop from a failure of the store.
func isRefusal(err error) bool {
	return errors.Is(err, ErrCancelled) || errors.Is(err, ErrNotFound)
}

// write returns the change storing stop, checked, and updates others, the
// team's live stops, so that the next stops of the call are checked
// against it.
func write(team string, stop *domain.TourStop, prev *Stored, others *[]Stop) (Write, error) {
	next, err := Fields(stop)
	if err != nil {
		return Write{}, err
	}
	w := Write{Kind: domain.KindTourStop, ID: stop.ID, Op: change.OpUpsert, Fields: next}
	if prev == nil {
		w.State = merge.NewState()
		*others = append(*others, Stop{TourStop: *stop, Team: team, FromHub: true})
		return w, nil
	}
	was, err := Fields(&prev.TourStop)
	if err != nil {
		return Write{}, err
	}
	w.Fields, w.State = change.Diff(was, next), prev.State
	for j := range *others {
		if (*others)[j].ID == stop.ID {
			(*others)[j].TourStop = *stop
		}
	}
	return w, nil
}

// Stamp turns ws into the hub device's changes, numbered after seq (its
// last sequence number) and stamped by clk, and merges each into its
// write's State. Before stamping, the clock observes the record's last
// stamp (zero for a new record), so that the change orders after every
// write merged into the record, whoever made it.
func Stamp(ws []Write, device string, seq uint64, clk *hlc.Clock) []change.Change {
	cs := make([]change.Change, len(ws))
	for i, w := range ws {
		clk.Observe(w.State.Last.TS)
		seq++
		cs[i] = change.Change{Kind: w.Kind, ID: w.ID, Op: w.Op, Fields: w.Fields, HLC: clk.Now(), Device: device, Seq: seq}
		merge.Apply(w.State, w.Kind, &cs[i])
	}
	return cs
}

// Select returns the stops of stored that pass f, unsorted, their
// Activities and Made not filled yet (MarkMade, then Sort).
func Select(stored []Stored, f Filter) []Stop {
	var out []Stop
	for i := range stored {
		st := &stored[i]
		if (st.Cancelled && !f.Cancelled) || !f.Match(st.Team, &st.TourStop) {
			continue
		}
		out = append(out, st.Stop)
	}
	return out
}

// arretField is Activity.Arret's field number: the link from an activity
// to the stop it was recorded at.
var arretField = func() uint64 {
	for _, f := range domain.Fields(domain.KindActivity) {
		if f.Name == "arret" {
			return f.Num
		}
	}
	panic("plan: Activity has no arret field")
}()

// Arret returns the stop a live activity's merged state refers to, if
// any: what makes a stop made (the package doc).
func Arret(st *merge.State) (ident.ID, bool, error) {
	var stop ident.ID
	raw, ok := st.Fields[arretField]
	if !ok || string(raw) == string(change.Null) {
		return stop, false, nil
	}
	if err := change.Unmarshal(raw, &stop); err != nil {
		return stop, false, fmt.Errorf("arret: %w", err)
	}
	return stop, true, nil
}
