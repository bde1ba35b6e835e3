// Package postgres is the hub's store on PostgreSQL, for a hub that
// outgrows one machine: several stateless `hub serve` instances over one
// database. It holds the same four jobs as hub/store/sqlite, behind the
// same interfaces and checked by the same conformance suites:
//
//   - the sync store (hub/store.Store, hub/store/storetest);
//   - the facts that follow the change log, read as hub/report.Source;
//   - the dashboard's accounts (hub/accounts.Store);
//   - the coordinators' planning (tour stops as hub-authored changes).
//
// What is not SQL stays outside, shared with SQLite: the merge rule, what
// a record contributes to the indicators, which index ranges a report
// reads, the erasure scrub, the checks of pushed changes.
//
// Two things differ from SQLite, which has one writer. Hub sequence
// numbers are handed out in commit order (log_counter, bumped as the last
// step of a writing transaction), so that a pull or the facts follower
// paging "after cursor" never steps over a change that commits late. And
// a device's batches are applied under a row lock on the device, so that
// two instances serving one device (a reconnection landing elsewhere)
// neither apply a seq twice nor skip one.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"numeribus/hub/store"
	"numeribus/internal/apperr"
	"numeribus/schema"
)

// ErrTooNew is returned by Open for a database written by a newer hub.
var ErrTooNew = apperr.New(apperr.State, "database schema is newer than this program")

// Options tune a store. The zero value is what production uses.
type Options struct {
	// Logger receives warnings (nil: discarded).
	Logger *slog.Logger
	// MaxConns bounds the connection pool (0: pgxpool's default, the
	// larger of 4 and the number of CPUs). The facts follower listens on
	// one more connection of its own.
	MaxConns int32

	// facts tunes the facts follower (tests only; zero: production's).
	facts factsOptions
}

// Store is an open hub store on PostgreSQL, safe for concurrent use, and
// by several processes at once.
type Store struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	chain *store.LogChain // the pull cursors' tags
	// beforeCommit, set by tests only, runs before a batch commits: a
	// slow transaction at will.
	beforeCommit func(deviceID string)
	// afterPins, set by tests only, runs when a batch has checked and
	// locked the consents it pinned (ApplyPinned), before its writes.
	afterPins func(deviceID string)
	// facts follows the change log into the fact tables (facts_follow.go).
	facts *facts
	// deviceIDs maps device numbers to ids for the pull pages (read.go):
	// a device's number and id never change once enrolled.
	deviceIDs sync.Map // int64 → string
	// rowBytes is the average size of a logged change's fields in the
	// pages read lately (read.go: pageRows).
	rowBytes atomic.Int64
}

// Open connects to the database at url (postgres://…), applies pending
// migrations (one instance at a time) and returns the store. A database
// from a newer hub is refused with ErrTooNew.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, apperr.Errorf(apperr.Usage, "PostgreSQL address: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	s := &Store{pool: pool, log: log}
	s.chain = store.NewLogChain(s.scanLog)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.facts = startFacts(s, opts.facts)
	return s, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes the pool.
func (s *Store) Close() error {
	s.facts.close()
	s.pool.Close()
	return nil
}

// Migrations returns the PostgreSQL schema's migrations.
func Migrations() ([]schema.Migration, error) {
	return schema.Load(schema.HubPG, "hubpg")
}

// migrateLock is the advisory lock key under which one instance at a time
// applies migrations.
var migrateLock = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("numeribus hub migrations"))
	return int64(h.Sum64())
}()

// migrate applies the pending migrations, each in its transaction, under
// an advisory lock: instances starting together wait for the first.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("waiting for another hub's migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	v := 0
	err = conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if v > len(ms) {
		return fmt.Errorf("%w (version %d, this hub knows %d)", ErrTooNew, v, len(ms))
	}
	for _, m := range ms[v:] {
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version(version) VALUES ($1)`, m.Version)
			return err
		}); err != nil {
			return fmt.Errorf("applying migration %s: %w", m.Name, err)
		}
		s.log.Info("schema migrated", "version", m.Version, "name", m.Name)
	}
	return nil
}
