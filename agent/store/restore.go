package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/sqlitex"
)

// ErrDamaged is what a *DamagedError is (errors.Is).
var ErrDamaged = apperr.New(apperr.State, "the store is damaged")

// DamagedError: SQLite's quick_check found the store damaged when it was
// opened. The way out is a restore (Restore, `agent restore --latest`).
type DamagedError struct {
	Dir      string   // the data directory
	Problems []string // quick_check's first lines
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.Dir, ErrDamaged, strings.Join(e.Problems, "; "))
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// ErrorCode: the store is not in a state to be used (apperr).
func (e *DamagedError) ErrorCode() apperr.Code { return apperr.State }

// Errors of a restore.
var (
	// ErrInUse: a program (agent serve, another command) has the store
	// open; a restore waits for it to stop.
	ErrInUse = apperr.New(apperr.State, "the store is open in another program")
	// ErrPending: the store holds changes the hub has not acknowledged,
	// which the restored copy lacks.
	ErrPending = apperr.New(apperr.State, "the store holds changes not yet sent to the hub")
	// ErrOtherDevice: the copy is another laptop's store.
	ErrOtherDevice = apperr.New(apperr.State, "the backup is another device's store")
)

// PendingError refuses a restore that would put aside changes the hub
// has not acknowledged.
type PendingError struct{ Pending uint64 }

func (e *PendingError) Error() string {
	return fmt.Sprintf("%v: %d", ErrPending, e.Pending)
}

// Is makes errors.Is(err, ErrPending) true.
func (e *PendingError) Is(target error) bool { return target == ErrPending }

// ErrorCode: apperr.State.
func (e *PendingError) ErrorCode() apperr.Code { return apperr.State }

// RestoreOptions say what to restore and how far to go.
type RestoreOptions struct {
	// From is the copy to bring back.
	From string
	// Force restores although the current store holds changes not yet
	// sent (they stay in the copy put aside).
	Force bool
}

// Restored says what a restore did.
type Restored struct {
	From BackupFile
	// Aside is where the store that was replaced now is ("" when there
	// was none).
	Aside string
	// KeptSecrets: the current store's key slots replaced the copy's, so
	// today's passphrase opens the restored store. False when the
	// current store could not be read: then it opens with the passphrase
	// of the day of the copy, or the recovery code.
	KeptSecrets bool
	// Damaged: the store replaced was damaged.
	Damaged bool
}

// Restore brings the copy opts.From back as the store of the data
// directory dir, with no program using the store (it takes it for itself
// alone; ErrInUse otherwise). The store it replaces is not deleted but
// moved aside into the backup directory, whole (with its WAL), as a copy
// of reason BackupAside: `agent restore --from` brings it back. The copy
// must be sound (quick_check) and this device's (same device id). The
// restored store has gone back in time: its next sync finds it out and
// recovers what the hub holds of the work since (docs/PROTOCOL.md, "A
// store that went back in time"). Changes the hub has not acknowledged
// would not come back that way: while the current store holds some, the
// restore is refused unless opts.Force.
func Restore(ctx context.Context, dir string, opts RestoreOptions) (Restored, error) {
	var out Restored
	from, err := inspectBackup(ctx, opts.From, true)
	if err != nil {
		return out, fmt.Errorf("the backup cannot be restored: %w", err)
	}
	if t, reason, ok := parseBackupName(filepath.Base(opts.From)); ok {
		from.Taken, from.Reason = t, reason
	}
	out.From = from.BackupFile
	cur := filepath.Join(dir, FileName)
	if same, _ := sameFile(opts.From, cur); same {
		return out, apperr.Errorf(apperr.Usage, "the backup given is the store itself")
	}
	var slots []slotRow
	if _, err := os.Stat(cur); err == nil {
		held, err := sqlitex.Exclusive(ctx, cur)
		switch {
		case errors.Is(err, sqlitex.ErrInUse):
			return out, fmt.Errorf("%s: %w", dir, ErrInUse)
		case errors.As(err, new(*sqlitex.DamagedError)):
			out.Damaged = true
		case err != nil:
			return out, err
		}
		if held != nil {
			var damaged bool
			slots, damaged, err = checkReplaced(ctx, held.Conn, from, opts.Force)
			if err != nil {
				held.Release()
				return out, err
			}
			out.Damaged = damaged
			// Let go just before the files move: on Windows an open
			// file cannot be renamed. Closing the last connection also
			// folds the WAL into the file.
			held.Release()
		}
		aside, err := putAside(dir)
		if err != nil {
			return out, err
		}
		out.Aside = aside
	} else if !errors.Is(err, fs.ErrNotExist) {
		return out, fmt.Errorf("opening the store: %w", err)
	}
	if err := bringBack(ctx, opts.From, cur, slots); err != nil {
		if out.Aside != "" {
			if uerr := undoAside(out.Aside, cur); uerr != nil {
				return out, fmt.Errorf("%w; and the store put aside could not be put back: %v (it is %s)", err, uerr, out.Aside)
			}
			out.Aside = ""
		}
		return out, err
	}
	out.KeptSecrets = len(slots) > 0
	syncDir(dir)
	return out, nil
}

// sameFile reports whether a and b are one file.
func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// slotRow is a key slot row, copied as is.
type slotRow struct {
	kind                  string
	salt, wrapped         []byte
	time, memory, threads int64
	created               string
}

// checkReplaced reads the store about to be replaced through the
// connection that holds it: it must be the same device's and hold no
// change that neither the hub has acknowledged nor the copy holds
// (unless force, or unless it is
// damaged: then it cannot be used anyway, and the copy put aside keeps
// what can be saved of it). Its key slots are returned, to go into the
// restored store; damaged reports what quick_check found.
func checkReplaced(ctx context.Context, c *sql.Conn, from inspected, force bool) (slots []slotRow, damaged bool, err error) {
	if err := sqlitex.QuickCheck(ctx, c); err != nil {
		if !errors.As(err, new(*sqlitex.DamagedError)) {
			return nil, false, err
		}
		damaged = true
	}
	var device string
	var last, acked uint64
	err = c.QueryRowContext(ctx, `SELECT
		(SELECT CAST(value AS TEXT) FROM meta WHERE key = ?),
		(SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?),
		(SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?)`,
		metaDevice, metaLastSeq, metaAckedSeq).Scan(&device, &last, &acked)
	if err != nil {
		if damaged || sqlitex.IsCorrupt(err) {
			return nil, true, nil // nothing to check it by
		}
		return nil, false, fmt.Errorf("reading the store to replace: %w", err)
	}
	if device != from.Device {
		return nil, damaged, fmt.Errorf("%w (%s, this one is %s)", ErrOtherDevice, from.Device, device)
	}
	// Changes up to the copy's last are in the copy; the hub has those
	// up to acked: the others would be lost but for the copy put aside.
	if lost := max(acked, from.LastSeq); last > lost && !force && !damaged {
		return nil, false, &PendingError{Pending: last - lost}
	}
	rows, err := c.QueryContext(ctx, `SELECT kind, salt, kdf_time, kdf_memory, kdf_threads, wrapped, created_at FROM keyslots ORDER BY id`)
	if err != nil {
		if damaged || sqlitex.IsCorrupt(err) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("reading the key slots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r slotRow
		if err := rows.Scan(&r.kind, &r.salt, &r.time, &r.memory, &r.threads, &r.wrapped, &r.created); err != nil {
			return nil, damaged, fmt.Errorf("reading the key slots: %w", err)
		}
		slots = append(slots, r)
	}
	if err := rows.Err(); err != nil {
		if damaged || sqlitex.IsCorrupt(err) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("reading the key slots: %w", err)
	}
	return slots, damaged, nil
}

// putAside moves the store's files into the backup directory as a copy of
// reason BackupAside, and returns its path.
func putAside(dir string) (string, error) {
	bdir := filepath.Join(dir, BackupDir)
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", bdir, err)
	}
	cur := filepath.Join(dir, FileName)
	aside := filepath.Join(bdir, backupName(time.Now(), BackupAside))
	// The WAL first: a store file without its WAL put aside would be an
	// older store, but a WAL without its file is nothing.
	if err := os.Rename(cur+"-wal", aside+"-wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("putting the store aside: %w", err)
	}
	if err := os.Rename(cur, aside); err != nil {
		os.Rename(aside+"-wal", cur+"-wal")
		return "", fmt.Errorf("putting the store aside: %w", err)
	}
	os.Remove(cur + "-shm") // rebuilt from the WAL by whoever opens it
	syncDir(bdir)
	return aside, nil
}

// undoAside puts the store back where it was.
func undoAside(aside, cur string) error {
	if err := os.Rename(aside, cur); err != nil {
		return err
	}
	if err := os.Rename(aside+"-wal", cur+"-wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// bringBack copies from into cur, by way of a temporary file renamed into
// place once whole: a cut restore leaves no half store. The copy is
// switched back to WAL and given the key slots of the store it replaces.
func bringBack(ctx context.Context, from, cur string, slots []slotRow) error {
	tmp := cur + ".restoring"
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(tmp + suffix)
	}
	if err := copyFile(from, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copying the backup: %w", err)
	}
	if err := prepareRestored(ctx, tmp, slots); err != nil {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(tmp + suffix)
		}
		return err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(tmp + suffix) // empty once its last connection closed
	}
	if err := os.Rename(tmp, cur); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("putting the restored store in place: %w", err)
	}
	return nil
}

func prepareRestored(ctx context.Context, p string, slots []slotRow) error {
	w, err := sqlitex.OpenWriter(p) // its pragmas switch it back to WAL
	if err != nil {
		return err
	}
	defer w.Close()
	if len(slots) > 0 {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("restoring the key slots: %w", err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `DELETE FROM keyslots`); err != nil {
			return fmt.Errorf("restoring the key slots: %w", err)
		}
		for _, r := range slots {
			if _, err := tx.ExecContext(ctx, `INSERT INTO keyslots(kind, salt, kdf_time, kdf_memory, kdf_threads, wrapped, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, r.kind, r.salt, r.time, r.memory, r.threads, r.wrapped, r.created); err != nil {
				return fmt.Errorf("restoring the key slots: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("restoring the key slots: %w", err)
		}
	}
	if err := sqlitex.QuickCheck(ctx, w); err != nil {
		return fmt.Errorf("the restored copy: %w", err)
	}
	if _, err := w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("the restored copy: %w", err)
	}
	return w.Close()
}

// copyFile copies src into a new file dst, readable by the owner only,
// flushed to the disk.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
