package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"numeribus/hub/store/postgres"
	"numeribus/hub/store/sqlite"
	"numeribus/internal/apperr"
)

// The backup commands, in the command table as one line.
var (
	backupCmd  = command{"backup", "writes a consistent copy of the database while the hub runs (--out FILE)", runBackup}
	restoreCmd = command{"restore", "puts a backup in place of the SQLite database, hub stopped (--from FILE)", runRestore}
)

func runBackup(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "backup", "--data DIR --out FILE [--db postgres://…]", &data)
	out := fs.String("out", "", "the backup file to write (must not exist)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out FILE is required")
	}
	if _, err := os.Stat(*out); err == nil {
		return apperr.Errorf(apperr.State, "%s exists: a backup never overwrites a file", *out)
	}
	if e.db != "" {
		if err := postgres.Dump(ctx, e.db, *out, os.Getenv("PG_BIN")); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "Backed up %s into %s (pg_dump, custom format). Restore: docs/OPERATIONS.md, or `hub restore --db … --from %s` prints the commands.\n",
			redactURL(e.db), *out, *out)
		return nil
	}
	db := filepath.Join(data, DBFile)
	if err := sqlite.Backup(ctx, db, *out); err != nil {
		return err
	}
	fi, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Backed up %s into %s (%d bytes, checked). Keep hub.crt, hub.key and envelope.key of %s apart from it.\n", db, *out, fi.Size(), data)
	return nil
}

func runRestore(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "restore", "--data DIR --from FILE", &data)
	from := fs.String("from", "", "the backup file `hub backup` wrote")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return usagef("--from FILE is required")
	}
	if e.db != "" {
		return apperr.Errorf(apperr.Usage, "a PostgreSQL hub is restored with PostgreSQL's tools, all hubs stopped, into a new database NEWDB; then point every hub's --db at it:\n  %s",
			strings.Join(postgres.RestoreCommands(e.db, *from), "\n  "))
	}
	db := filepath.Join(data, DBFile)
	aside, err := sqlite.Restore(ctx, db, *from)
	if errors.Is(err, sqlite.ErrHubRunning) {
		return apperr.Errorf(apperr.State, "%v", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Restored %s from %s.\n", db, *from)
	if aside != "" {
		fmt.Fprintf(e.Stdout, "The database it replaced is kept aside: %s\n", aside)
	}
	fmt.Fprintln(e.Stdout, "Start the hub: at their next sync the agents send again what the backup lacks and pull what they missed.")
	return nil
}
