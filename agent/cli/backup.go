package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"numeribus/agent/store"
	"numeribus/agent/ui"
	"numeribus/internal/apperr"
	"numeribus/internal/diskspace"
	"numeribus/internal/sqlitex"
)

// The backup commands (agent/store/backup.go, restore.go), in the
// command table as one line.
var (
	backupCmd  = command{"backup", "--data DIR", "sauvegarde le magasin maintenant (dans DIR/backups, sans phrase de passe)", runBackup}
	backupsCmd = command{"backups", "--data DIR [--json]", "liste les sauvegardes du magasin", runBackups}
	restoreCmd = command{"restore", "--data DIR (--latest | --from FICHIER) [--force]", "restaure une sauvegarde, agent arrêté (le magasin remplacé est gardé de côté)", runRestore}
)

func runBackup(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "backup", "--data DIR", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("argument en trop : %q", fs.Arg(0))
	}
	s, err := store.Open(ctx, c.data, c.storeOpts(e))
	if err != nil {
		return err
	}
	defer s.Close()
	b, err := s.Backup(ctx, store.BackupManual)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Sauvegarde faite : %s (%s, %s, jusqu'à la modification n° %d).\n",
		b.Path, diskspace.Format(uint64(b.Bytes)), plural(b.Records, "enregistrement"), b.LastSeq)
	return nil
}

// backupJSON is one line of `agent backups --json`.
type backupJSON struct {
	File     string `json:"file"`
	Taken    string `json:"taken_at"`
	Reason   string `json:"reason"`
	Bytes    int64  `json:"bytes"`
	Device   string `json:"device_id,omitempty"`
	LastSeq  uint64 `json:"last_seq"`
	AckedSeq uint64 `json:"acked_seq"`
	Records  int    `json:"records"`
	Error    string `json:"error,omitempty"`
}

func runBackups(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "backups", "--data DIR [--json]", &c)
	asJSON := fs.Bool("json", false, "sortie JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	// No store opened: the list serves when the store is damaged.
	bs, err := store.Backups(ctx, c.data)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]backupJSON, 0, len(bs))
		for _, b := range bs {
			j := backupJSON{File: b.Path, Taken: b.Taken.UTC().Format(time.RFC3339), Reason: string(b.Reason), Bytes: b.Bytes,
				Device: b.Device, LastSeq: b.LastSeq, AckedSeq: b.AckedSeq, Records: b.Records}
			if b.Err != nil {
				j.Error = b.Err.Error()
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(bs) == 0 {
		fmt.Fprintf(e.Stdout, "Aucune sauvegarde dans %s (« agent backup » en fait une ; « agent serve » en fait une par jour).\n", filepath.Join(c.data, store.BackupDir))
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tRAISON\tTAILLE\tENREGISTREMENTS\tJUSQU'AU N°\tFICHIER")
	for _, b := range bs {
		recs, seq := fmt.Sprint(b.Records), fmt.Sprint(b.LastSeq)
		if b.Err != nil {
			recs, seq = "illisible", "—"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", frTime(b.Taken), reasonLabel(b.Reason), diskspace.Format(uint64(b.Bytes)), recs, seq, b.Name())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Dossier : %s\n", filepath.Join(c.data, store.BackupDir))
	return nil
}

func runRestore(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "restore", "--data DIR (--latest | --from FICHIER) [--force]", &c)
	latest := fs.Bool("latest", false, "la plus récente des sauvegardes saines de DIR/backups")
	from := fs.String("from", "", "le fichier de sauvegarde à restaurer (voir « agent backups »)")
	force := fs.Bool("force", false, "restaurer même si des modifications n'ont pas été envoyées au hub (elles restent dans la copie mise de côté)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("argument en trop : %q", fs.Arg(0))
	}
	if *latest == (*from != "") {
		return usagef("donnez --latest ou --from FICHIER (l'un des deux)")
	}
	file := *from
	if *latest {
		b, skipped, err := store.LatestBackup(ctx, c.data)
		for _, s := range skipped {
			fmt.Fprintf(e.Stderr, "Attention : la sauvegarde %s est endommagée, elle est passée.\n", s.Name())
		}
		if err != nil {
			return err
		}
		file = b.Path
	}
	res, err := store.Restore(ctx, c.data, store.RestoreOptions{From: file, Force: *force})
	if err != nil {
		return err
	}
	when := "du " + frTime(res.From.Taken)
	if res.From.Taken.IsZero() {
		when = filepath.Base(res.From.Path)
	}
	fmt.Fprintf(e.Stdout, "Sauvegarde %s restaurée : %s, jusqu'à la modification n° %d.\n", when, plural(res.From.Records, "enregistrement"), res.From.LastSeq)
	if res.Aside != "" {
		what := "Le magasin remplacé"
		if res.Damaged {
			what = "Le magasin endommagé"
		}
		fmt.Fprintf(e.Stdout, "%s est gardé de côté : %s\n", what, res.Aside)
	}
	if res.KeptSecrets {
		fmt.Fprintln(e.Stdout, "Phrase de passe : celle d'aujourd'hui ; le code de secours reste valable.")
	} else {
		fmt.Fprintln(e.Stdout, "Phrase de passe : celle du jour de la sauvegarde, ou le code de secours.")
	}
	fmt.Fprintln(e.Stdout, "À la prochaine synchronisation, le travail envoyé au hub depuis cette sauvegarde revient sur ce poste, sans doublon.")
	return nil
}

// backupMessage says the backup, restore and disk errors in French; ok
// is false for other errors.
func backupMessage(err error) (msg string, ok bool) {
	var (
		de *store.DamagedError
		dl *store.DiskLowError
		pe *store.PendingError
	)
	switch {
	case errors.As(err, &de):
		return damagedMessage(de), true
	case errors.As(err, &dl):
		return fmt.Sprintf("espace disque insuffisant : il reste %s sur ce poste, il en faut au moins %s ; rien n'a été enregistré. Libérez de la place (corbeille, téléchargements) puis recommencez",
			diskspace.Format(dl.Avail), diskspace.Format(store.MinFreeBytes)), true
	case errors.Is(err, store.ErrNoRoomForBackup):
		return fmt.Sprintf("pas assez de place sur le disque pour une sauvegarde (%s doivent rester libres) : libérez de la place puis recommencez", diskspace.Format(store.MinFreeBytes)), true
	case errors.As(err, &pe):
		return fmt.Sprintf("%d modification(s) de ce poste n'ont pas encore été envoyées au hub et ne sont pas dans la sauvegarde : synchronisez d'abord (agent sync), ou ajoutez --force pour restaurer quand même (elles resteront dans la copie mise de côté)", pe.Pending), true
	case errors.Is(err, store.ErrInUse):
		return "le magasin est ouvert par un autre programme (agent serve ?) : arrêtez-le, puis relancez la restauration", true
	case errors.Is(err, store.ErrOtherDevice):
		return "cette sauvegarde est celle d'un autre poste : elle n'est pas restaurée", true
	case errors.Is(err, store.ErrNoBackup):
		return fmt.Sprintf("aucune sauvegarde utilisable dans %s", subject(err, store.ErrNoBackup)), true
	case errors.As(err, new(*sqlitex.DamagedError)):
		return "la sauvegarde est endommagée : choisissez-en une autre (agent backups, puis agent restore --from FICHIER) : " + err.Error(), true
	}
	return "", false
}

// damagedMessage says what to do with a damaged store: the exact command
// that restores the newest sound copy, or, with none, how to start again
// from the hub.
func damagedMessage(de *store.DamagedError) string {
	msg := fmt.Sprintf("le magasin de %s est endommagé (%s).\n", de.Dir, problems(de.Problems))
	b, _, err := store.LatestBackup(context.Background(), de.Dir)
	if err != nil {
		return msg + fmt.Sprintf("Aucune sauvegarde saine dans %s : mettez le dossier %s de côté, créez un magasin neuf (agent init) "+
			"et inscrivez-le de nouveau auprès du hub avec un nouveau code (agent enroll) : le travail déjà synchronisé reviendra du hub.",
			filepath.Join(de.Dir, store.BackupDir), de.Dir)
	}
	return msg + fmt.Sprintf("Restaurez la dernière sauvegarde (%s), agent arrêté :\n\n    %s\n\n"+
		"Le magasin endommagé sera gardé de côté ; le travail envoyé au hub depuis la sauvegarde reviendra à la synchronisation suivante.",
		frTime(b.Taken), restoreCommand(de.Dir))
}

// restoreCommand is the command that restores the newest sound backup of
// the data directory dir, as a person types it.
func restoreCommand(dir string) string {
	return "agent restore --data " + shellQuote(dir) + " --latest"
}

// shellQuote quotes a path with spaces for a terminal (a Windows
// profile's "Marie Dupont").
func shellQuote(s string) string {
	if strings.ContainsAny(s, " \t'\"&;|()$") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}

func reasonLabel(r store.BackupReason) string {
	switch r {
	case store.BackupManual:
		return "manuelle"
	case store.BackupDaily:
		return "quotidienne"
	case store.BackupMigration:
		return "avant mise à jour"
	case store.BackupErasure:
		return "après effacement"
	case store.BackupAside:
		return "mise de côté (restauration)"
	}
	return string(r)
}

// frTime writes a time in the laptop's zone, the French way.
func frTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("02/01/2006 à 15:04")
}

// plural writes « 1 enregistrement », « 1 234 enregistrements ».
func plural(n int, word string) string {
	if n > 1 {
		word += "s"
	}
	return frInt(n) + " " + word
}

// frInt groups thousands with a narrow no-break space, the French way.
func frInt(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// serveDamaged tells of a damaged store, on the terminal and on ln, the
// interface's address (ui.ServeDamaged), until a restore through the page
// succeeds (nil: the caller opens the store again) or the agent is
// stopped (exit 5). It never exits on its own, so that a program that
// starts the agent again when it ends does not loop.
func serveDamaged(ctx context.Context, e *Env, ln net.Listener, de *store.DamagedError) error {
	fmt.Fprintf(e.Stderr, "agent : %s\n", damagedMessage(de))
	e.Logger.Error("store damaged: serving the restore page", "err", de)
	fmt.Fprintf(e.Stdout, "Le magasin est endommagé : la marche à suivre est sur http://%s/ ; Ctrl-C pour arrêter.\n", ln.Addr())
	restored, err := ui.ServeDamaged(ctx, ln, ui.DamagedConfig{Err: de, Command: restoreCommand(de.Dir), Logger: e.Logger})
	if err != nil {
		return fmt.Errorf("interface web : %w", err)
	}
	if !restored {
		return apperr.Errorf(apperr.State, "arrêté sans restauration : le magasin de %s reste endommagé", de.Dir)
	}
	fmt.Fprintln(e.Stdout, "Sauvegarde restaurée : l'agent démarre avec elle.")
	return nil
}

// problems says SQLite's findings in one line: the first, and how many
// more.
func problems(ps []string) string {
	switch len(ps) {
	case 0:
		return "vérification échouée"
	case 1:
		return "SQLite : " + ps[0]
	}
	return fmt.Sprintf("SQLite : %s, et %d autre(s) anomalie(s)", ps[0], len(ps)-1)
}
