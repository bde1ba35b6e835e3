package postgres

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"numeribus/internal/apperr"
)

// Backups of a PostgreSQL hub are PostgreSQL's own: pg_dump writes a
// consistent snapshot (one transaction, REPEATABLE READ) while the hubs
// keep serving, and pg_restore brings it back (RestoreCommands, the
// commands docs/OPERATIONS.md gives). The program is taken from the
// directory PG_BIN names, else from PATH: it must be the server's major
// version or newer.

// ErrNoTool: pg_dump (or pg_restore) is not installed where looked.
var ErrNoTool = apperr.New(apperr.State, "PostgreSQL client program not found")

// Tool returns the path of PostgreSQL's program name: in the directory
// pgBin when given, else on PATH.
func Tool(name, pgBin string) (string, error) {
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if pgBin != "" {
		p := filepath.Join(pgBin, name)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			return "", fmt.Errorf("%w: no %s in PG_BIN=%s", ErrNoTool, name, pgBin)
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not on PATH: install PostgreSQL's client programs (the server's major version or newer), or set PG_BIN to their directory", ErrNoTool, name)
	}
	return p, nil
}

// Dump writes the database dbURL names into out (which must not exist)
// in pg_dump's custom format, readable by the owner only. The password,
// if the URL holds one, goes to pg_dump in its environment, not on its
// command line, where other accounts of the machine could read it.
func Dump(ctx context.Context, dbURL, out, pgBin string) error {
	bin, err := Tool("pg_dump", pgBin)
	if err != nil {
		return err
	}
	target, env, err := splitPassword(dbURL)
	if err != nil {
		return err
	}
	// Made first, empty, with the owner's mode: pg_dump truncates it
	// and keeps that mode.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating the backup: %w", err)
	}
	f.Close()
	cmd := exec.CommandContext(ctx, bin, "--format=custom", "--file="+out, "--dbname="+target)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(out)
		return fmt.Errorf("pg_dump: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Size() == 0 {
		os.Remove(out)
		return fmt.Errorf("pg_dump wrote nothing to %s (%v)", out, err)
	}
	return nil
}

// splitPassword takes the password out of a database URL, into a
// PGPASSWORD assignment for the program's environment.
func splitPassword(dbURL string) (string, []string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", nil, apperr.Errorf(apperr.Usage, "PostgreSQL address: %w", err)
	}
	if u.User == nil {
		return dbURL, nil, nil
	}
	pw, ok := u.User.Password()
	if !ok {
		return dbURL, nil, nil
	}
	u.User = url.User(u.User.Username())
	return u.String(), []string{"PGPASSWORD=" + pw}, nil
}

// RestoreCommands are the commands that bring a dump back into a new
// database, NEWDB, on the server of dbURL: PostgreSQL's own tools, run by
// an operator with the hubs stopped, who then points every hub's --db at
// NEWDB (or renames it). One transaction: a restore that fails leaves an
// empty database, never half a hub.
func RestoreCommands(dbURL, file string) []string {
	u, err := url.Parse(dbURL)
	if err != nil || u.Host == "" {
		u = &url.URL{Scheme: "postgres", Host: "HOST", Path: "/numeribus"}
	}
	if u.User != nil {
		u.User = url.User(u.User.Username()) // the password comes from PGPASSWORD or ~/.pgpass
	}
	target := *u
	target.Path = "/NEWDB"
	target.RawQuery = ""
	admin := *u
	admin.Path = "/postgres"
	admin.RawQuery = ""
	return []string{
		fmt.Sprintf("psql %q -c 'CREATE DATABASE \"NEWDB\"'", admin.String()),
		fmt.Sprintf("pg_restore --no-owner --exit-on-error --single-transaction --dbname=%q %q", target.String(), file),
	}
}
