// Package owneronly keeps the programs' data files to the account that
// runs them. New files are created 0600 and directories 0700; this package
// tightens those made before that rule, or by SQLite from a looser file:
// a store created at 0644 by an earlier version stays readable by every
// account of the machine until someone chmods it, so each open does.
package owneronly

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// enforced is false on Windows, where access is governed by ACLs (a
// user's profile is private by default) and os.Chmod only toggles the
// read-only attribute.
var enforced = runtime.GOOS != "windows"

// Dir removes the group's and others' permissions from dir.
func Dir(dir string) error {
	return tighten(dir, true)
}

// Files removes the group's and others' permissions from each file that
// exists; a missing one (a -wal not made yet) is skipped. Only access is
// taken away: a file is never made writable or readable by its owner.
func Files(paths ...string) error {
	var errs []error
	for _, p := range paths {
		errs = append(errs, tighten(p, false))
	}
	return errors.Join(errs...)
}

// SQLite returns the files of the SQLite database at p: the database,
// its write-ahead log and its shared memory.
func SQLite(p string) []string {
	return []string{p, p + "-wal", p + "-shm"}
}

func tighten(p string, dir bool) error {
	if !enforced {
		return nil
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) && !dir {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking the permissions of %s: %w", p, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil // not ours to change: the file it points to may be anyone's
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(p, perm&^0o077); err != nil {
		return fmt.Errorf("making %s private to its owner: %w", p, err)
	}
	return nil
}

// WriteFile creates path readable by its owner only, fills it with write,
// and removes it if writing fails: no half-written file is left behind.
func WriteFile(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// Within reports whether file is dir or inside it.
func Within(file, dir string) (bool, error) {
	f, err1 := filepath.Abs(file)
	d, err2 := filepath.Abs(dir)
	if err := errors.Join(err1, err2); err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, f)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)), nil
}
