package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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

// Retention and the right of access on PostgreSQL, as on SQLite (its
// retention.go; hub/retain has the shared parts): the periods are rows of
// facts_meta ("retention:identite" → months), a purge erases as the hub's
// own device. The purge's writes hold the hub's own row, as a plan's do,
// so that two instances purging at once erase each record once.

var _ retain.Store = (*Store)(nil)

// RetentionPolicy returns the periods set at the hub.
func (s *Store) RetentionPolicy(ctx context.Context) (retention.Policy, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM facts_meta WHERE key LIKE 'retention:%'`)
	if err != nil {
		return retention.Default(), fmt.Errorf("reading the retention policy: %w", err)
	}
	defer rows.Close()
	return retain.ScanPolicy(rows, s.log)
}

// SetRetentionPolicy records p: a row per kind set.
func (s *Store) SetRetentionPolicy(ctx context.Context, p retention.Policy) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, r := range retention.Rules {
			key := retain.PolicyKey(r.Kind)
			var err error
			if !p.IsSet(r.Kind) {
				_, err = tx.Exec(ctx, `DELETE FROM facts_meta WHERE key = $1`, key)
			} else {
				_, err = tx.Exec(ctx, `INSERT INTO facts_meta(key, value) VALUES ($1, $2)
					ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, int64(p.Months(r.Kind)))
			}
			if err != nil {
				return fmt.Errorf("recording the retention policy: %w", err)
			}
		}
		return nil
	})
}

// pgReader reads hub/retain's queries, numbering their ? placeholders.
type pgReader struct{ q querier }

func (r pgReader) Query(ctx context.Context, q string, args ...any) (store.Rows, func(), error) {
	rows, err := r.q.Query(ctx, numbered(q), args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, rows.Close, nil
}

// BlobContains: position finds bytes in bytea.
func (pgReader) BlobContains(col string) string { return "position(? in " + col + ") > 0" }

// numbered rewrites ? placeholders as $1, $2…
func numbered(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// PurgeExpired erases what has outlived the stored policy at now, as the
// hub's own device (SQLite's PurgeExpired says how): the census read in
// one snapshot of the facts, the writes in one transaction that holds
// the hub's row, retried after a deadlock.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (retain.Purged, error) {
	p, err := s.RetentionPolicy(ctx)
	if err != nil {
		return retain.Purged{}, err
	}
	var (
		c  *retention.Census
		at int64
	)
	err = s.readFacts(ctx, func(tx pgx.Tx) error {
		c, at, err = retain.Gather(ctx, pgReader{tx}, p, now)
		return err
	})
	if err != nil {
		return retain.Purged{}, fmt.Errorf("purging: %w", err)
	}
	var out retain.Purged
	// In transactions of retain.ChunkRecords records at most, each
	// retried after a deadlock.
	rc := retain.NewRechecker(at)
	for _, chunk := range retain.Chunks(c.Plan(), retain.ChunkRecords) {
		for attempt := 0; ; attempt++ {
			n, err := s.purgeChunk(ctx, chunk, rc, now)
			if err == nil {
				out.Add(n)
				break
			}
			if !retryable(err) || attempt == 4 {
				return out, fmt.Errorf("purging: %w", err)
			}
			s.log.Info("purge retried after a conflict with another writer", "err", err)
		}
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit WHERE at < $1`, retain.AuditCutoff(p, now).UnixMilli())
	if err != nil {
		return out, fmt.Errorf("purging the audit log: %w", err)
	}
	out.Audit = int(tag.RowsAffected())
	return out, nil
}

// purgeChunk erases pl as the hub in one transaction holding the hub's
// row, once checked against what was logged since the census (rc).
func (s *Store) purgeChunk(ctx context.Context, pl retention.Plan, rc *retain.Rechecker, now time.Time) (retain.Purged, error) {
	var out retain.Purged
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = retain.Purged{}
		me, err := lockHub(ctx, tx, now)
		if err != nil {
			return err
		}
		if pl, err = rc.Check(ctx, pgReader{tx}, pl); err != nil {
			return err
		}
		byTeam := map[string][]plan.Write{}
		err = retain.EachTarget(pl, func(t retain.Target) error {
			var (
				kind, team string
				state      []byte
			)
			if err := tx.QueryRow(ctx, `SELECT kind, team, state FROM records WHERE id = $1`, t.ID[:]).Scan(&kind, &team, &state); err != nil {
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
			byTeam[team] = append(byTeam[team], plan.Write{Kind: t.Kind, ID: t.ID, Op: change.OpErase})
			return nil
		})
		if err != nil {
			return err
		}
		teams := make([]string, 0, len(byTeam))
		for team := range byTeam {
			teams = append(teams, team)
		}
		slices.Sort(teams)
		for _, team := range teams {
			if err := me.apply(ctx, tx, team, plan.Clock(now, me.last), byTeam[team]); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Dossier gathers what the hub holds about person (retain.ReadDossier),
// with the periods it keeps it for.
func (s *Store) Dossier(ctx context.Context, person ident.ID, now time.Time) (*access.Dossier, error) {
	var d *access.Dossier
	err := s.readFacts(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = retain.ReadDossier(ctx, pgReader{tx}, person, now)
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
