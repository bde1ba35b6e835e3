// Package sqlitex opens SQLite files the way every store of this project
// wants them (shared/TECH-NOTES.md): WAL, foreign keys, a busy timeout,
// one writer connection with immediate transactions and a separate
// read-only pool; and applies numbered, embedded migrations.
package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"numeribus/internal/apperr"
	"numeribus/schema"
)

// pragmas every connection gets. secure_delete overwrites freed content so
// deleted (even sealed) bytes do not linger in the file; temp_store keeps
// sorts and temporary tables in memory, never in a temp file.
var pragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"synchronous(NORMAL)",
	"foreign_keys(1)",
	"secure_delete(1)",
	"temp_store(MEMORY)",
}

// DSN returns the data source name for the file at p; extra pragmas
// follow the defaults, and one named like a default replaces it (the
// driver keeps the first of two).
func DSN(p string, readOnly bool, extra ...string) string {
	q := url.Values{}
	for _, pr := range withExtra(extra) {
		q.Add("_pragma", pr)
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: p}).EscapedPath() + "?" + q.Encode()
}

// withExtra returns the default pragmas with extra, those named like a
// default in its place.
func withExtra(extra []string) []string {
	out := slices.Clone(pragmas)
	for _, e := range extra {
		name, _, _ := strings.Cut(e, "(")
		i := slices.IndexFunc(out, func(p string) bool { return strings.HasPrefix(p, name+"(") })
		if i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

// OpenWriter opens the single writer connection; extra pragmas follow
// the defaults (a later busy_timeout replaces the default one).
func OpenWriter(p string, extra ...string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(p, false, extra...))
	if err != nil {
		return nil, fmt.Errorf("opening %s for writing: %w", p, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// OpenReader opens a pool of read-only connections.
func OpenReader(p string, conns int, extra ...string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(p, true, extra...))
	if err != nil {
		return nil, fmt.Errorf("opening %s for reading: %w", p, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// IsFull reports whether err is SQLite's "database or disk is full"
// (SQLITE_FULL): a write found no room left on the disk.
func IsFull(err error) bool {
	var ce interface{ Code() int }
	return errors.As(err, &ce) && ce.Code()&0xff == 13
}

// Migration is one numbered SQL file (schema.Migration).
type Migration = schema.Migration

// ErrTooNew is returned when the database was written by a newer binary.
var ErrTooNew = apperr.New(apperr.State, "database schema is newer than this program")

// Load reads the numbered migrations of dir in fsys (schema.Load).
func Load(fsys fs.FS, dir string) ([]Migration, error) { return schema.Load(fsys, dir) }

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`

// Version returns the schema version recorded in db (0 for a new file).
func Version(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_migrations'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return int(v.Int64), nil
}

// CheckVersion refuses a database newer than the migrations known.
func CheckVersion(ctx context.Context, db *sql.DB, ms []Migration) (int, error) {
	v, err := Version(ctx, db)
	if err != nil {
		return 0, err
	}
	if v > len(ms) {
		return v, fmt.Errorf("%w: the file is at version %d, this program knows up to %d; install the newer version of the program", ErrTooNew, v, len(ms))
	}
	return v, nil
}

// Migrate applies the migrations not yet recorded, each in its own
// transaction with its record, and returns the resulting version.
func Migrate(ctx context.Context, db *sql.DB, ms []Migration) (int, error) {
	if _, err := db.ExecContext(ctx, createTable); err != nil {
		return 0, fmt.Errorf("creating schema_migrations: %w", err)
	}
	v, err := CheckVersion(ctx, db, ms)
	if err != nil {
		return v, err
	}
	for _, m := range ms[v:] {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return v, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return v, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return v, fmt.Errorf("recording migration %s: %w", m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return v, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		v = m.Version
	}
	return v, nil
}
