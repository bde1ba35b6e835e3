package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"numeribus/hub/plan"
	"numeribus/hub/retain"
	"numeribus/hub/store"
	"numeribus/internal/access"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/retention"
)

// Retention and the right of access at the hub (hub/retain has the
// shared parts). The periods live in facts_meta, the hub's table of small
// counters and settings, one row per kind set ("retention:identite" →
// months); a kind without a row has its default. Who set them, and when,
// is in the audit log.

var _ retain.Store = (*Store)(nil)

// RetentionPolicy returns the periods set at the hub. A stored period out
// of its bounds (written by hand) is ignored, with a warning: the default
// applies.
func (s *Store) RetentionPolicy(ctx context.Context) (retention.Policy, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key, value FROM facts_meta WHERE key LIKE 'retention:%'`)
	if err != nil {
		return retention.Default(), fmt.Errorf("reading the retention policy: %w", err)
	}
	defer rows.Close()
	return retain.ScanPolicy(rows, s.log)
}

// SetRetentionPolicy records p: a row per kind set, none for a kind left
// at its default.
func (s *Store) SetRetentionPolicy(ctx context.Context, p retention.Policy) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording the retention policy: %w", err)
	}
	defer tx.Rollback()
	for _, r := range retention.Rules {
		key := retain.PolicyKey(r.Kind)
		if !p.IsSet(r.Kind) {
			_, err = tx.ExecContext(ctx, `DELETE FROM facts_meta WHERE key = ?`, key)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO facts_meta(key, value) VALUES (?, ?)
				ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, p.Months(r.Kind))
		}
		if err != nil {
			return fmt.Errorf("recording the retention policy: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording the retention policy: %w", err)
	}
	return nil
}

// sqlReader reads hub/retain's queries on a connection or a transaction.
type sqlReader struct{ q querier }

func (r sqlReader) Query(ctx context.Context, q string, args ...any) (store.Rows, func(), error) {
	rows, err := r.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, func() { rows.Close() }, nil
}

// BlobContains: instr compares blobs byte for byte.
func (sqlReader) BlobContains(col string) string { return "instr(" + col + ", ?) > 0" }

// PurgeExpired erases what has outlived the stored policy at now, as the
// hub's own device: the census is read beside the sync (a read
// transaction, the facts brought to the log's end first), then one write
// transaction checks that nothing logged since changes it
// (retain.Recheck), logs an erase change per record in its team's log,
// scrubs their earlier changes, and deletes the audit entries older than
// the journal period. The WAL is then folded into the file, whose freed
// cells secure_delete has zeroed.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (retain.Purged, error) {
	p, err := s.RetentionPolicy(ctx)
	if err != nil {
		return retain.Purged{}, err
	}
	if err := s.catchUpFacts(ctx); err != nil {
		return retain.Purged{}, fmt.Errorf("purging: %w", err)
	}
	var (
		c  *retention.Census
		at int64
	)
	err = s.readOnly(ctx, func(tx *sql.Tx) error {
		c, at, err = retain.Gather(ctx, sqlReader{tx}, p, now)
		return err
	})
	if err != nil {
		return retain.Purged{}, fmt.Errorf("purging: %w", err)
	}
	var out retain.Purged
	// In transactions of retain.ChunkRecords records at most: the sync's
	// writers wait for each one only.
	rc := retain.NewRechecker(at)
	for _, chunk := range retain.Chunks(c.Plan(), retain.ChunkRecords) {
		n, err := s.purgeChunk(ctx, chunk, rc, now)
		if err != nil {
			return out, fmt.Errorf("purging: %w", err)
		}
		out.Add(n)
	}
	done := s.hostWrite()
	res, err := s.exec(ctx, `DELETE FROM audit WHERE at < ?`, retain.AuditCutoff(p, now).UnixMilli())
	done()
	if err != nil {
		return out, fmt.Errorf("purging the audit log: %w", err)
	}
	n, _ := res.RowsAffected()
	out.Audit = int(n)
	s.checkpointed()
	if out.Records > 0 {
		s.checkpointErased(ctx)
	}
	return out, nil
}

// purgeChunk erases pl as the hub in one transaction, once checked
// against what was logged since the census (rc).
func (s *Store) purgeChunk(ctx context.Context, pl retention.Plan, rc *retain.Rechecker, now time.Time) (retain.Purged, error) {
	defer s.hostWrite()()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return retain.Purged{}, err
	}
	defer tx.Rollback()
	if pl, err = rc.Check(ctx, sqlReader{tx}, pl); err != nil {
		return retain.Purged{}, err
	}
	out, err := s.eraseAsHub(ctx, tx, pl, now)
	if err != nil {
		return out, err
	}
	if err := tx.Commit(); err != nil {
		return retain.Purged{}, fmt.Errorf("committing: %w", err)
	}
	s.factsChanged()
	return out, nil
}

// eraseAsHub logs an erase change of the hub per record of pl, in the
// log of the record's team, and scrubs each record's earlier changes.
// Records erased meanwhile, or of another kind than planned, are left and
// not counted.
func (s *Store) eraseAsHub(ctx context.Context, tx *sql.Tx, pl retention.Plan, now time.Time) (retain.Purged, error) {
	var out retain.Purged
	byTeam := map[string][]plan.Write{}
	err := retain.EachTarget(pl, func(t retain.Target) error {
		var (
			kind, team string
			state      []byte
		)
		err := tx.QueryRowContext(ctx, `SELECT kind, team, state FROM records WHERE id = ?`, t.ID[:]).Scan(&kind, &team, &state)
		if err != nil {
			return fmt.Errorf("reading %s %s: %w", t.Kind, t.ID, err)
		}
		st, err := merge.Unmarshal(state)
		if err != nil {
			return fmt.Errorf("reading %s %s: %w", t.Kind, t.ID, err)
		}
		if domain.Kind(kind) != t.Kind || st.IsErased() {
			return nil
		}
		out.Count(t)
		byTeam[team] = append(byTeam[team], plan.Write{Kind: t.Kind, ID: t.ID, Op: change.OpErase, State: st})
		return nil
	})
	if err != nil || out.Records == 0 {
		return out, err
	}
	me, err := hubSelf(ctx, tx, now)
	if err != nil {
		return out, err
	}
	clk := plan.Clock(now, me.last)
	teams := make([]string, 0, len(byTeam))
	for team := range byTeam {
		teams = append(teams, team)
	}
	slices.Sort(teams)
	for _, team := range teams {
		ws := byTeam[team]
		if err := me.apply(ctx, tx, team, clk, ws); err != nil {
			return out, err
		}
		for _, w := range ws {
			if err := scrub(ctx, tx, &pending{id: w.ID, kind: w.Kind}); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// Dossier gathers what the hub holds about person (retain.ReadDossier),
// with the periods it keeps it for.
func (s *Store) Dossier(ctx context.Context, person ident.ID, now time.Time) (*access.Dossier, error) {
	var d *access.Dossier
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = retain.ReadDossier(ctx, sqlReader{tx}, person, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	p, err := s.RetentionPolicy(ctx)
	if err != nil {
		return nil, err
	}
	d.Policy = &p
	return d, nil
}
