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
	backupCmd  = command{"backup", "écrit une copie cohérente de la base pendant que le hub tourne (--out FICHIER)", runBackup}
	restoreCmd = command{"restore", "remet une sauvegarde à la place de la base SQLite, hub arrêté (--from FICHIER)", runRestore}
)

func runBackup(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "backup", "--data DIR --out FICHIER [--db postgres://…]", &data)
	out := fs.String("out", "", "le fichier de sauvegarde à écrire (ne doit pas exister)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out FICHIER est requis")
	}
	if _, err := os.Stat(*out); err == nil {
		return apperr.Errorf(apperr.State, "%s existe déjà : une sauvegarde n'écrase jamais un fichier", *out)
	}
	if e.db != "" {
		if err := postgres.Dump(ctx, e.db, *out, os.Getenv("PG_BIN")); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "Base %s sauvegardée dans %s (pg_dump, format custom). Restauration : docs/OPERATIONS.md, ou `hub restore --db … --from %s` affiche les commandes.\n",
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
	fmt.Fprintf(e.Stdout, "Base %s sauvegardée dans %s (%d octets, vérifiée). Gardez hub.crt, hub.key et envelope.key de %s à part.\n", db, *out, fi.Size(), data)
	return nil
}

func runRestore(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "restore", "--data DIR --from FILE", &data)
	from := fs.String("from", "", "le fichier écrit par `hub backup`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return usagef("--from FICHIER est requis")
	}
	if e.db != "" {
		return apperr.Errorf(apperr.Usage, "un hub PostgreSQL se restaure avec les outils de PostgreSQL, tous les hubs arrêtés, dans une nouvelle base NEWDB ; pointez ensuite le --db de chaque hub vers elle :\n  %s",
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
	fmt.Fprintf(e.Stdout, "Base %s restaurée depuis %s.\n", db, *from)
	if aside != "" {
		fmt.Fprintf(e.Stdout, "La base remplacée est gardée à part : %s\n", aside)
	}
	fmt.Fprintln(e.Stdout, "Démarrez le hub : à leur prochaine synchronisation, les postes renvoient ce qui manque à la sauvegarde et reçoivent ce qu'ils ont manqué.")
	return nil
}
