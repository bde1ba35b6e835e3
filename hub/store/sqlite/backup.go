package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"numeribus/internal/sqlitex"
)

// Backups of the hub's file: `hub backup` beside a running `hub serve`,
// `hub restore` with the hub stopped. The agents then reconcile with the
// restored hub at their next sync (docs/PROTOCOL.md, "A hub that went
// back in time").

// ErrHubRunning: a hub (or a hub command) has the file open.
var ErrHubRunning = errors.New("la base du hub est ouverte : arrêtez d'abord `hub serve` (et toute commande hub)")

// Backup writes a consistent copy of the database at path into out,
// which must not exist, while `hub serve` and other commands keep
// working: VACUUM INTO reads the file in one read transaction, so the
// copy is the database as of one commit, and writers are not held up
// (sqlitex.VacuumInto). The copy is checked before Backup returns.
func Backup(ctx context.Context, path, out string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("aucune base du hub à sauvegarder : %w", err)
	}
	if err := sqlitex.VacuumInto(ctx, path, out); err != nil {
		return err
	}
	if err := checkCopy(ctx, out); err != nil {
		os.Remove(out)
		return err
	}
	return nil
}

// checkCopy opens a copy read-only: sound (quick_check), a hub database
// this program can open.
func checkCopy(ctx context.Context, p string) error {
	db, err := sqlitex.OpenCopy(p)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := sqlitex.QuickCheck(ctx, db); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	ms, err := Migrations()
	if err != nil {
		return err
	}
	v, err := sqlitex.CheckVersion(ctx, db, ms)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'devices'`).Scan(&n); err != nil || n == 0 || v == 0 {
		return fmt.Errorf("%s n'est pas une base du hub", p)
	}
	return nil
}

// Restore puts the copy from in place of the database at path, with no
// program using it (ErrHubRunning otherwise). The database it replaces,
// with its WAL, is moved aside beside it (path.before-restore-TIME), not
// deleted; the copy comes in through a temporary file renamed once
// whole, switched back to WAL. It returns where the old database went
// ("" when there was none).
func Restore(ctx context.Context, path, from string) (aside string, err error) {
	if err := checkCopy(ctx, from); err != nil {
		return "", fmt.Errorf("la sauvegarde ne peut pas être restaurée : %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		held, err := sqlitex.Exclusive(ctx, path)
		switch {
		case errors.Is(err, sqlitex.ErrInUse):
			return "", ErrHubRunning
		case err != nil && !errors.As(err, new(*sqlitex.DamagedError)):
			return "", err
		}
		held.Release() // closing folds the WAL into the file
		aside = path + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(path+"-wal", aside+"-wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("mise à l'écart de la base : %w", err)
		}
		if err := os.Rename(path, aside); err != nil {
			os.Rename(aside+"-wal", path+"-wal")
			return "", fmt.Errorf("mise à l'écart de la base : %w", err)
		}
		os.Remove(path + "-shm")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := bringIn(ctx, from, path); err != nil {
		if aside != "" {
			os.Rename(aside, path)
			os.Rename(aside+"-wal", path+"-wal")
		}
		return "", err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return aside, nil
}

// bringIn copies from to path through a temporary file, in WAL mode.
func bringIn(ctx context.Context, from, path string) error {
	tmp := path + ".restoring"
	clean := func() {
		for _, s := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(tmp + s)
		}
	}
	clean()
	if err := copyFile(from, tmp); err != nil {
		clean()
		return fmt.Errorf("copie de la sauvegarde : %w", err)
	}
	w, err := sqlitex.OpenWriter(tmp) // its pragmas switch it to WAL
	if err == nil {
		_, err = w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		clean()
		return fmt.Errorf("préparation de la base restaurée : %w", err)
	}
	os.Remove(tmp + "-wal")
	os.Remove(tmp + "-shm")
	if err := os.Rename(tmp, path); err != nil {
		clean()
		return fmt.Errorf("putting the restored database in place: %w", err)
	}
	return nil
}

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
