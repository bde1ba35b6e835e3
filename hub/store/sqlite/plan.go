package sqlite

// Tour planning at the hub (package hub/plan has the rules and the API's
// documentation). The hub writes planned stops as a device of its own: a
// reserved row of devices, so that its changes enter the same change log
// as the laptops' (hub seq, team, device, device seq), are served by the
// same team-scoped ChangesSince, and merge with the same internal/merge.
//
// The reserved row is told apart by its empty team, which no enrollment
// can give (CreateEnrollment requires a team). It is created on the
// first plan, with a random UUID that stays the hub's device id for good,
// empty keys (no signature verifies with them, so nobody authenticates
// as the hub) and the name HubDeviceName, which enrollment refuses.
// Device lists, device counts and revocation skip it.
//
// The row's hwm is the hub's own last sequence number, so its changes are
// numbered without gaps like a laptop's. The hub clock's last stamp is
// not stored apart: it is the stamp of the hub's last logged change
// (stamps only grow along its sequence), read back in each write
// transaction. Log rows are never deleted and are written in the same
// transaction as the sequence number, so the clock never goes backwards,
// across restarts and across processes (`hub plan add` beside a running
// `hub serve`), whose transactions SQLite serializes.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"numeribus/hub/plan"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// HubDeviceName is the name of the hub's own row in devices: shown as the
// origin of records the hub created (Stats.ByDevice), never enrollable.
const HubDeviceName = plan.HubDeviceName

// hubTeamSQL selects the hub's own row; notHubSQL every other device.
const (
	hubTeamSQL = `team = ''`
	notHubSQL  = `team != ''`
)

// self is the hub's own device in one write transaction.
type self struct {
	num  int64
	id   string
	seq  uint64        // last sequence number issued
	last hlc.Timestamp // last stamp issued
}

// hubSelf reads the hub's own device row, creating it on first use.
func hubSelf(ctx context.Context, tx *sql.Tx, now time.Time) (self, error) {
	var (
		me  self
		hwm int64
	)
	err := tx.QueryRowContext(ctx, `SELECT num, id, hwm FROM devices WHERE `+hubTeamSQL).Scan(&me.num, &me.id, &hwm)
	if errors.Is(err, sql.ErrNoRows) {
		me.id = ident.NewAt(now).String()
		res, err := tx.ExecContext(ctx, `INSERT INTO devices(id, name, team, device_key, push_key, enrolled_at) VALUES (?, ?, '', x'', x'', ?)`,
			me.id, HubDeviceName, now.UnixMilli())
		if err != nil {
			return me, fmt.Errorf("creating the hub's own device (is a laptop enrolled as %q?): %w", HubDeviceName, err)
		}
		if me.num, err = res.LastInsertId(); err != nil {
			return me, fmt.Errorf("creating the hub's own device: %w", err)
		}
		return me, nil
	}
	if err != nil {
		return me, fmt.Errorf("reading the hub's own device: %w", err)
	}
	me.seq = uint64(hwm)
	if me.seq > 0 {
		// A backward scan of the log by hub seq, which stops at the hub's
		// latest change: as long as the changes logged since then.
		var h int64
		err := tx.QueryRowContext(ctx, `SELECT hlc FROM changes WHERE device = ? ORDER BY hseq DESC LIMIT 1`, me.num).Scan(&h)
		if err != nil {
			return me, fmt.Errorf("reading the hub clock from its last change (seq %d): %w", me.seq, err)
		}
		me.last = hlc.Timestamp(h)
	}
	return me, nil
}

// HubDeviceID returns the hub's own device id, the origin of the changes
// it makes, or "" before its first plan.
func (s *Store) HubDeviceID(ctx context.Context) (string, error) {
	var id string
	err := s.r.QueryRowContext(ctx, `SELECT id FROM devices WHERE `+hubTeamSQL).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the hub's own device: %w", err)
	}
	return id, nil
}

// apply numbers, stamps and merges ws (plan.Stamp), logs them as the
// hub's changes to records of team in tx, writes the records and moves the
// hub's high-water mark.
func (me *self) apply(ctx context.Context, tx *sql.Tx, team string, clk *hlc.Clock, ws []plan.Write) error {
	cs := plan.Stamp(ws, me.id, me.seq, clk)
	for i := range cs {
		c, w := &cs[i], &ws[i]
		me.seq, me.last = c.Seq, c.HLC
		fields, err := change.Marshal(c.Fields)
		if err != nil {
			return fmt.Errorf("encoding hub change to %s: %w", w.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO changes(team, device, dseq, kind, record_id, op, hlc, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			team, me.num, int64(c.Seq), string(w.Kind), w.ID[:], int(c.Op), int64(c.HLC), fields); err != nil {
			return fmt.Errorf("logging hub change to %s: %w", w.ID, err)
		}
		state, err := w.State.Marshal()
		if err != nil {
			return fmt.Errorf("encoding record %s: %w", w.ID, err)
		}
		// As ApplyBatch: a new record takes its team and origin, an
		// existing one keeps them.
		if _, err := tx.ExecContext(ctx, `INSERT INTO records(id, kind, team, origin, hlc, deleted, erased, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET hlc = excluded.hlc, deleted = excluded.deleted, erased = excluded.erased, state = excluded.state`,
			w.ID[:], string(w.Kind), team, me.num, int64(w.State.Last.TS), w.State.IsDeleted(), w.State.IsErased(), state); err != nil {
			return fmt.Errorf("writing record %s: %w", w.ID, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET hwm = ? WHERE num = ?`, int64(me.seq), me.num); err != nil {
		return fmt.Errorf("updating the hub's sequence number: %w", err)
	}
	return nil
}

// knownTeams lists the teams of enrolled devices and of enrollments.
func knownTeams(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT team FROM devices WHERE `+notHubSQL+` UNION SELECT team FROM enrollments ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("listing teams: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// tourStops reads the tour stops of team ("" for every team), cancelled
// ones included, in no particular order.
func tourStops(ctx context.Context, q querier, team string) ([]plan.Stored, error) {
	query := `SELECT r.id, r.team, r.state, d.` + hubTeamSQL + ` FROM records r JOIN devices d ON d.num = r.origin WHERE r.kind = ?`
	args := []any{string(domain.KindTourStop)}
	if team != "" {
		query += ` AND r.team = ?`
		args = append(args, team)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading tour stops: %w", err)
	}
	defer rows.Close()
	return plan.ScanStored(rows)
}

// PlanStops plans stops for team in one transaction: a stop with a zero
// ID is created (with a new id); one with the ID of a live stop of the
// team moves it, as a change of the fields that differ; an ID the hub
// does not hold creates a stop under that id (a retried call then finds
// it and changes nothing). Every stop is checked with plan.Check (domain
// validation, known team, no overlap for the vehicle); if any fails,
// nothing is written and the error joins every *domain.ValidationError.
// It returns the stops as stored, in the order given. The realise field
// is never written: it is the mediators'. The rules are plan.Prepare's.
func (s *Store) PlanStops(ctx context.Context, team string, stops []domain.TourStop, now time.Time) ([]domain.TourStop, error) {
	if team == "" {
		return nil, errors.New("planning stops: a team is required")
	}
	if len(stops) == 0 {
		return nil, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("planning stops: %w", err)
	}
	defer tx.Rollback()
	if err := teamKnown(ctx, tx, team); err != nil {
		return nil, err
	}
	stored, err := tourStops(ctx, tx, team)
	if err != nil {
		return nil, err
	}
	out, ws, err := plan.Prepare(team, stops, stored, kindOf(ctx, tx), now)
	if err != nil {
		return nil, err
	}
	if len(ws) > 0 {
		if err := s.hubCommit(ctx, tx, team, now, ws); err != nil {
			return nil, fmt.Errorf("planning stops for %s: %w", team, err)
		}
	}
	return out, nil
}

// teamKnown refuses a team with no device and no enrollment at the hub:
// a plan for a misspelt team would reach no one.
func teamKnown(ctx context.Context, q querier, team string) error {
	teams, err := knownTeams(ctx, q)
	if err != nil {
		return err
	}
	if !slices.Contains(teams, team) {
		return fmt.Errorf("planning stops: %w %q: no device or enrollment of it at the hub (known teams: %s)",
			plan.ErrUnknownTeam, team, strings.Join(teams, ", "))
	}
	return nil
}

// kindOf looks up the kind of any record in tx, for plan.Prepare.
func kindOf(ctx context.Context, tx *sql.Tx) plan.KindOf {
	return func(id ident.ID) (domain.Kind, error) {
		var k domain.Kind
		err := tx.QueryRowContext(ctx, `SELECT kind FROM records WHERE id = ?`, id[:]).Scan(&k)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return k, err
	}
}

// hubCommit applies ws as the hub's changes to records of team and
// commits tx.
func (s *Store) hubCommit(ctx context.Context, tx *sql.Tx, team string, now time.Time, ws []plan.Write) error {
	me, err := hubSelf(ctx, tx, now)
	if err != nil {
		return err
	}
	if err := me.apply(ctx, tx, team, plan.Clock(now, me.last), ws); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	s.checkpointed()
	return nil
}

// CancelStop cancels a tour stop: a tombstone, logged for its team and
// final (a cancelled stop is not revived; plan a new one). team limits
// the stop to one team (a coordinator's); "" allows any. Cancelling a
// cancelled stop changes nothing. A stop planned on an agent may be
// cancelled too: the coordinator has the last word on the tour.
func (s *Store) CancelStop(ctx context.Context, team string, id ident.ID, now time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cancelling stop %s: %w", id, err)
	}
	defer tx.Rollback()
	var (
		k         domain.Kind
		rteam     string
		deleted   bool
		stateBlob []byte
	)
	err = tx.QueryRowContext(ctx, `SELECT kind, team, deleted, state FROM records WHERE id = ?`, id[:]).Scan(&k, &rteam, &deleted, &stateBlob)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && (k != domain.KindTourStop || (team != "" && rteam != team))):
		where := ""
		if team != "" {
			where = " in team " + team
		}
		return fmt.Errorf("cancelling stop %s: %w%s", id, plan.ErrNotFound, where)
	case err != nil:
		return fmt.Errorf("cancelling stop %s: %w", id, err)
	case deleted:
		return nil
	}
	st, err := merge.Unmarshal(stateBlob)
	if err != nil {
		return fmt.Errorf("cancelling stop %s: %w", id, err)
	}
	if err := s.hubCommit(ctx, tx, rteam, now, []plan.Write{{Kind: k, ID: id, Op: change.OpDelete, State: st}}); err != nil {
		return fmt.Errorf("cancelling stop %s: %w", id, err)
	}
	return nil
}

// PlannedStops lists the tour stops that pass f, planned at the hub or on
// the agents, sorted as a tour sheet (plan.Sort), each with its activity
// count and whether it was made (the rule is in hub/plan's doc). It reads
// in one read transaction, so counts and stops agree. Finding the
// activities of a stop decodes the live activities of the teams listed:
// fine for a team's year; the query layer's facts can take this over.
func (s *Store) PlannedStops(ctx context.Context, f plan.Filter) ([]plan.Stop, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("listing planned stops: %w", err)
	}
	defer tx.Rollback()
	stored, err := tourStops(ctx, tx, f.Team)
	if err != nil {
		return nil, err
	}
	out := plan.Select(stored, f)
	if len(out) == 0 {
		return out, nil
	}
	counts, err := activitiesAt(ctx, tx, f.Team, out)
	if err != nil {
		return nil, err
	}
	plan.MarkMade(out, counts)
	plan.Sort(out)
	return out, nil
}

// activitiesAt counts the live activities of team ("" every team) whose
// arret is one of stops.
func activitiesAt(ctx context.Context, q querier, team string, stops []plan.Stop) (map[ident.ID]int, error) {
	query := `SELECT id, state FROM records WHERE kind = ? AND deleted = 0`
	args := []any{string(domain.KindActivity)}
	if team != "" {
		query += ` AND team = ?`
		args = append(args, team)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading activities at stops: %w", err)
	}
	defer rows.Close()
	return plan.CountAt(rows, stops)
}
