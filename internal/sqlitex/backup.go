package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Backups of a database file that others keep writing, and the checks
// around them, for both programs' stores (agent/store, hub/store/sqlite).

// VacuumInto writes a consistent copy of the database at src into dst,
// which must not exist: SQLite's VACUUM INTO, run in one read transaction
// on a connection of its own, so writers of this process and of others
// go on meanwhile (WAL) and the copy is the database as of one commit.
// The copy is compact (no free pages, so nothing freed lingers in it),
// in rollback-journal mode (one self-contained file), readable by the
// owner only, and on the disk when VacuumInto returns. A failed copy
// leaves no file behind.
func VacuumInto(ctx context.Context, src, dst string) (err error) {
	// VACUUM INTO accepts an empty file: made first with the owner's
	// mode, so that no other account of the machine can read the copy.
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating the copy: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			for _, suffix := range []string{"", "-journal"} {
				os.Remove(dst + suffix)
			}
		}
	}()
	// Not a query_only connection: SQLite counts VACUUM INTO as a
	// write, although the source only gets a read transaction.
	db, err := sql.Open("sqlite", DSN(src, false))
	if err != nil {
		return fmt.Errorf("opening %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("copying %s: %w", filepath.Base(src), err)
	}
	if err := syncFile(dst); err != nil {
		return fmt.Errorf("writing the copy to the disk: %w", err)
	}
	return nil
}

// syncFile flushes a file's content to the disk.
func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// OpenCopy opens a backup file read-only and immutable: nothing is
// written beside it (no -wal, no -shm) and it is never changed, so a
// listing or a check leaves the backups as they were.
func OpenCopy(p string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: p}).EscapedPath()+"?mode=ro&immutable=1")
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Querier is a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// DamagedError says SQLite's quick_check found a database damaged.
type DamagedError struct {
	// Problems are quick_check's first lines, or the error that stopped
	// it (a file that is no database at all).
	Problems []string
}

func (e *DamagedError) Error() string {
	return "database damaged: " + strings.Join(e.Problems, "; ")
}

// QuickCheck runs PRAGMA quick_check on db: nil when SQLite finds the
// file sound, a *DamagedError when it finds it damaged or cannot read it
// as a database, another error when the check itself could not run.
// quick_check reads every page but, unlike integrity_check, does not
// match indexes against their tables: linear in the file's size.
func QuickCheck(ctx context.Context, db Querier) error {
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check(10)`)
	if err != nil {
		if IsCorrupt(err) {
			return &DamagedError{Problems: []string{err.Error()}}
		}
		return fmt.Errorf("checking the database: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("checking the database: %w", err)
		}
		// A row may hold several lines, under a header naming the
		// schema ("*** in database main ***").
		for l := range strings.Lines(line) {
			if l = strings.TrimSpace(l); l != "" && l != "ok" && !strings.HasPrefix(l, "***") {
				problems = append(problems, l)
			}
		}
	}
	if err := rows.Err(); err != nil {
		if IsCorrupt(err) {
			return &DamagedError{Problems: append(problems, err.Error())}
		}
		return fmt.Errorf("checking the database: %w", err)
	}
	if len(problems) > 0 {
		return &DamagedError{Problems: problems}
	}
	return nil
}

// IsCorrupt reports whether err is SQLite's SQLITE_CORRUPT or
// SQLITE_NOTADB: the file is damaged, or no database at all.
func IsCorrupt(err error) bool {
	var ce interface{ Code() int }
	if !errors.As(err, &ce) {
		return false
	}
	c := ce.Code() & 0xff
	return c == 11 || c == 26
}

// isBusy reports SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	var ce interface{ Code() int }
	if !errors.As(err, &ce) {
		return false
	}
	c := ce.Code() & 0xff
	return c == 5 || c == 6
}

// ErrInUse is returned by Exclusive when another connection, of this
// process or another, has the database open.
var ErrInUse = errors.New("the database is open in another program")

// Held is a database taken by Exclusive: Conn reads it (and may write
// it) while nobody else can.
type Held struct {
	Conn *sql.Conn
	db   *sql.DB
}

// Release lets others in again. A nil Held releases nothing.
func (h *Held) Release() {
	if h == nil {
		return
	}
	h.Conn.Close()
	h.db.Close()
}

// Exclusive takes the database at p for this caller alone, for an
// operation that replaces the file (a restore): it fails with ErrInUse
// at once while any other connection has it open — in WAL mode every
// open connection keeps a shared lock on the file for as long as it is
// open, idle or not — and, until Release, any program that opens the
// file gets SQLITE_BUSY at its first read. A file SQLite cannot read as
// a database is nobody's: Exclusive then returns a nil *Held and the
// *DamagedError.
func Exclusive(ctx context.Context, p string) (*Held, error) {
	// Only these two pragmas, in this order: locking_mode must be set
	// before the connection first reads the file, so that it takes the
	// file's exclusive lock instead of sharing the WAL index.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(0)")
	q.Add("_pragma", "locking_mode(EXCLUSIVE)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: p}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err == nil {
		var n int
		err = conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n)
		if err == nil {
			// The write lock too, which the read alone may not take
			// in WAL mode.
			_, err = conn.ExecContext(ctx, `BEGIN EXCLUSIVE; COMMIT`)
		}
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		db.Close()
		switch {
		case isBusy(err):
			return nil, fmt.Errorf("%s: %w", p, ErrInUse)
		case IsCorrupt(err):
			return nil, &DamagedError{Problems: []string{err.Error()}}
		}
		return nil, fmt.Errorf("taking %s for this program alone: %w", p, err)
	}
	return &Held{Conn: conn, db: db}, nil
}
