package postgres

// Tour planning at the hub on PostgreSQL (hub/plan has the rules, shared
// with SQLite). As on SQLite, the hub writes planned stops as a device of
// its own, the row of devices with the empty team (HubDeviceName, no
// keys), so that its changes enter the team's change log and reach the
// agents through the pull they already make.
//
// What SQLite's single writer gave for free, several hub instances over
// one database must arrange. A planning transaction takes the hub's own
// row FOR UPDATE before it reads anything: the hub's writes are one after
// the other, whichever instance makes them, so the overlap check sees
// every stop planned before, the hub's seqs have neither gap nor
// duplicate, and its clock, read back from its last logged change, never
// goes back. Then it goes the way of a device's batch (apply.go): the
// records locked in id order (new ones inserted first), merged in memory,
// written, and the changes numbered last from log_counter, in commit
// order.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/plan"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// hubTeamSQL selects the hub's own row in devices.
const hubTeamSQL = `team = ''`

// hubSelf is the hub's own device in one write transaction, its row
// locked until commit.
type hubSelf struct {
	num  int64
	id   string
	seq  uint64        // last sequence number issued
	last hlc.Timestamp // last stamp issued
}

// lockHub locks the hub's own device row, creating it on first use.
// Instances creating it at once insert one row: the second insert waits
// for the first and does nothing, and both then read the same row.
func lockHub(ctx context.Context, tx pgx.Tx, now time.Time) (hubSelf, error) {
	me, err := readHub(ctx, tx)
	if !errors.Is(err, pgx.ErrNoRows) {
		return me, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO devices(id, name, team, device_key, push_key, enrolled_at)
		VALUES ($1, $2, '', '\x', '\x', $3) ON CONFLICT DO NOTHING`,
		ident.NewAt(now).String(), HubDeviceName, now.UnixMilli()); err != nil {
		return me, fmt.Errorf("creating the hub's own device: %w", err)
	}
	me, err = readHub(ctx, tx)
	if errors.Is(err, pgx.ErrNoRows) {
		return me, fmt.Errorf("creating the hub's own device: the name %q is taken by a laptop", HubDeviceName)
	}
	return me, err
}

// readHub locks and reads the hub's own row and its clock: pgx.ErrNoRows
// when the hub never wrote.
func readHub(ctx context.Context, tx pgx.Tx) (hubSelf, error) {
	var (
		me  hubSelf
		hwm int64
	)
	err := tx.QueryRow(ctx, `SELECT num, id, hwm FROM devices WHERE `+hubTeamSQL+` FOR UPDATE`).Scan(&me.num, &me.id, &hwm)
	if errors.Is(err, pgx.ErrNoRows) {
		return me, err
	}
	if err != nil {
		return me, fmt.Errorf("reading the hub's own device: %w", err)
	}
	me.seq = uint64(hwm)
	if me.seq == 0 {
		return me, nil
	}
	// Stamps only grow along the hub's seqs: its last change holds the
	// last stamp it issued.
	var h int64
	if err := tx.QueryRow(ctx, `SELECT hlc FROM changes WHERE device = $1 AND dseq = $2`, me.num, int64(me.seq)).Scan(&h); err != nil {
		return me, fmt.Errorf("reading the hub clock from its last change (seq %d): %w", me.seq, err)
	}
	me.last = hlc.Timestamp(h)
	return me, nil
}

// HubDeviceID returns the hub's own device id, the origin of the changes
// it makes, or "" before its first plan.
func (s *Store) HubDeviceID(ctx context.Context) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id FROM devices WHERE `+hubTeamSQL).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the hub's own device: %w", err)
	}
	return id, nil
}

// hubChanges decides, in a transaction holding the hub's own row, the
// changes the hub makes to records of team: none leaves the database as
// it was. Its errors reach the caller as they are, so that a refused plan
// is the join of its *domain.ValidationError, as on SQLite.
type hubChanges func(tx pgx.Tx) (team string, ws []plan.Write, err error)

// hubWrite runs decide and applies its changes as the hub's, in one
// transaction, retried when PostgreSQL aborts it for a deadlock or a
// serialization failure. what is the context of hubWrite's own errors.
func (s *Store) hubWrite(ctx context.Context, what string, now time.Time, decide hubChanges) error {
	for attempt := 0; ; attempt++ {
		err := s.hubWriteOnce(ctx, what, now, decide)
		if !retryable(err) || attempt == 4 {
			return err
		}
		s.log.Info("hub change retried after a conflict with another writer", "what", what, "err", err)
	}
}

func (s *Store) hubWriteOnce(ctx context.Context, what string, now time.Time, decide hubChanges) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	me, err := lockHub(ctx, tx, now)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	team, ws, err := decide(tx)
	if err != nil || len(ws) == 0 {
		return err
	}
	if err := me.apply(ctx, tx, team, plan.Clock(now, me.last), ws); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if s.beforeCommit != nil {
		s.beforeCommit(me.id)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: committing: %w", what, err)
	}
	return nil
}

// apply locks the records ws change (creating new ones in team), merges
// the changes into the states just locked, stamped and numbered
// (plan.Stamp), writes them and logs them, and moves the hub's mark.
func (me *hubSelf) apply(ctx context.Context, tx pgx.Tx, team string, clk *hlc.Clock, ws []plan.Write) error {
	todo := make([]change.Change, len(ws))
	for i, w := range ws {
		todo[i] = change.Change{Kind: w.Kind, ID: w.ID}
	}
	recs, order, err := loadLocked(ctx, tx, todo, me.num, team)
	if err != nil {
		return err
	}
	for i := range ws {
		p := recs[ws[i].ID]
		if p.team != team || p.kind != ws[i].Kind {
			// A record made under this id meanwhile, by an agent of
			// another team or of another kind.
			return fmt.Errorf("stop %s: %w in team %q (a %s of team %q)", p.id, plan.ErrNotFound, team, p.kind, p.team)
		}
		ws[i].State, p.dirty = p.st, true
		p.scrub = ws[i].Op == change.OpErase // a purge's (retention.go)
	}
	cs := plan.Stamp(ws, me.id, me.seq, clk)
	rows := make([]logRow, len(cs))
	for i := range cs {
		rows[i] = logRow{c: &cs[i], fields: cs[i].Fields.Encode()}
	}
	d := batchDevice{id: me.id, num: me.num, team: team, hwm: me.seq}
	var b pgx.Batch
	if err := writeBatch(ctx, tx, &b, d, order, rows); err != nil {
		return err
	}
	me.seq, me.last = cs[len(cs)-1].Seq, cs[len(cs)-1].HLC
	b.Queue(`UPDATE devices SET hwm = $1 WHERE num = $2`, int64(me.seq), me.num)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("writing the hub's changes: %w", err)
	}
	return nil
}

// PlanStops plans stops for team in one transaction, by plan.Prepare's
// rules (as SQLite's PlanStops): new stops, moves of live stops of the
// team as changes of the fields that differ, all refused at once if any
// breaks a rule. It returns the stops as stored, in the order given.
func (s *Store) PlanStops(ctx context.Context, team string, stops []domain.TourStop, now time.Time) ([]domain.TourStop, error) {
	if team == "" {
		return nil, errors.New("planning stops: a team is required")
	}
	if len(stops) == 0 {
		return nil, nil
	}
	var out []domain.TourStop
	err := s.hubWrite(ctx, "planning stops for "+team, now, func(tx pgx.Tx) (string, []plan.Write, error) {
		if err := teamKnown(ctx, tx, team); err != nil {
			return "", nil, err
		}
		stored, err := storedStops(ctx, tx, team)
		if err != nil {
			return "", nil, err
		}
		var ws []plan.Write
		out, ws, err = plan.Prepare(team, stops, stored, recordKind(ctx, tx), now)
		return team, ws, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// teamKnown refuses a team with no device and no enrollment at the hub:
// a plan for a misspelt team would reach no one.
func teamKnown(ctx context.Context, q querier, team string) error {
	rows, err := q.Query(ctx, `SELECT team FROM devices WHERE `+notHubSQL+` UNION SELECT team FROM enrollments ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("listing teams: %w", err)
	}
	teams, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing teams: %w", err)
	}
	if !slices.Contains(teams, team) {
		return fmt.Errorf("planning stops: %w %q: no device or enrollment of it at the hub (known teams: %s)",
			plan.ErrUnknownTeam, team, strings.Join(teams, ", "))
	}
	return nil
}

// recordKind looks up the kind of any record, for plan.Prepare.
func recordKind(ctx context.Context, q querier) plan.KindOf {
	return func(id ident.ID) (domain.Kind, error) {
		var k string
		err := q.QueryRow(ctx, `SELECT kind FROM records WHERE id = $1`, id[:]).Scan(&k)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", nil
		}
		return domain.Kind(k), err
	}
}

// storedStops reads the tour stops of team ("" for every team), cancelled
// ones included, in no particular order.
func storedStops(ctx context.Context, q querier, team string) ([]plan.Stored, error) {
	rows, err := q.Query(ctx, `SELECT r.id, r.team, r.state, d.`+hubTeamSQL+` FROM records r JOIN devices d ON d.num = r.origin
		WHERE r.kind = $1 AND ($2 = '' OR r.team = $2)`, string(domain.KindTourStop), team)
	if err != nil {
		return nil, fmt.Errorf("reading tour stops: %w", err)
	}
	defer rows.Close()
	return plan.ScanStored(rows)
}

// CancelStop cancels a tour stop: a tombstone, logged for its team and
// final. team limits the stop to one team; "" allows any. Cancelling a
// cancelled stop changes nothing (read under the hub's lock: two
// instances cancelling at once log one tombstone).
func (s *Store) CancelStop(ctx context.Context, team string, id ident.ID, now time.Time) error {
	what := fmt.Sprintf("cancelling stop %s", id)
	return s.hubWrite(ctx, what, now, func(tx pgx.Tx) (string, []plan.Write, error) {
		var (
			k, rteam string
			deleted  bool
		)
		err := tx.QueryRow(ctx, `SELECT kind, team, deleted FROM records WHERE id = $1`, id[:]).Scan(&k, &rteam, &deleted)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || (err == nil && (domain.Kind(k) != domain.KindTourStop || (team != "" && rteam != team))):
			if team != "" {
				return "", nil, fmt.Errorf("%s: %w in team %s", what, plan.ErrNotFound, team)
			}
			return "", nil, fmt.Errorf("%s: %w", what, plan.ErrNotFound)
		case err != nil:
			return "", nil, fmt.Errorf("%s: %w", what, err)
		case deleted:
			return "", nil, nil
		}
		return rteam, []plan.Write{{Kind: domain.KindTourStop, ID: id, Op: change.OpDelete}}, nil
	})
}

// PlannedStops lists the tour stops that pass f, planned at the hub or on
// the agents, sorted as a tour sheet (plan.Sort), each with its activity
// count and whether it was made. It reads in one repeatable-read
// transaction, so that counts and stops agree.
func (s *Store) PlannedStops(ctx context.Context, f plan.Filter) ([]plan.Stop, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	var out []plan.Stop
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		stored, err := storedStops(ctx, tx, f.Team)
		if err != nil {
			return err
		}
		if out = plan.Select(stored, f); len(out) == 0 {
			return nil
		}
		counts, err := activitiesAtStops(ctx, tx, f.Team, out)
		if err != nil {
			return err
		}
		plan.MarkMade(out, counts)
		plan.Sort(out)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing planned stops: %w", err)
	}
	return out, nil
}

// activitiesAtStops counts the live activities of team ("" every team)
// whose arret is one of stops. It decodes the team's live activities:
// fine for a team's year; the facts can take this over.
func activitiesAtStops(ctx context.Context, q querier, team string, stops []plan.Stop) (map[ident.ID]int, error) {
	rows, err := q.Query(ctx, `SELECT id, state FROM records WHERE kind = $1 AND NOT deleted AND ($2 = '' OR team = $2)`,
		string(domain.KindActivity), team)
	if err != nil {
		return nil, fmt.Errorf("reading activities at stops: %w", err)
	}
	defer rows.Close()
	return plan.CountAt(rows, stops)
}
