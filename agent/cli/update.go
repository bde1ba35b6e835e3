package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"numeribus/agent/store"
	"numeribus/agent/update"
	"numeribus/internal/release"
)

// Self-updates (agent/update, issue #14): the release key pinned after
// enrollment, releases checked during serve's background sync, and the
// switch to a staged release at serve's next start.

// switchesAtStart are the commands at whose start a staged release is
// installed: the long-running agent, started at boot or by a double
// click. The others run as they are, so that `agent status` shows the
// update still pending.
var switchesAtStart = map[string]bool{"serve": true, "app": true}

// switchAtStart installs a staged release before serve starts, and runs
// the command through it (or through the previous version put back).
// ran: the command ran in a child, code is its exit code.
func switchAtStart(ctx context.Context, args []string, e *Env) (code int, ran bool) {
	if len(args) == 0 || !switchesAtStart[args[0]] || !release.IsRelease(Version) || e.Getenv(update.MarkerEnv) != "" {
		return 0, false // a development build, or the new version on trial
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		e.Logger.Warn("updates: the program's path is unknown", "err", err)
		return 0, false
	}
	sw := &update.Switch{Dir: dataDirOf(e, args), Exe: exe, Version: Version, Args: args, Env: os.Environ(),
		FS: update.OSFS{}, Run: update.OSRunner{}, Log: e.Logger,
		Say: func(msg string) { fmt.Fprintln(e.Stderr, "agent : "+msg) }}
	out := sw.AtStart(ctx)
	return out.Exit, out.Ran
}

// dataDirOf finds --data in a command line before its flags are parsed,
// with the default every command has.
func dataDirOf(e *Env, args []string) string {
	var c common
	dir := newFlags(e, args[0], "", &c).Lookup("data").DefValue
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--data="); ok {
			dir = v
		} else if v, ok := strings.CutPrefix(a, "-data="); ok {
			dir = v
		} else if (a == "--data" || a == "-data") && i+1 < len(args) {
			dir = args[i+1]
			i++
		}
	}
	return dir
}

// markStarted is what a new version on trial says once it has started
// (serve: its store opened): the previous version, waiting, keeps it.
func markStarted(e *Env) {
	if p := e.Getenv(update.MarkerEnv); p != "" {
		if err := update.MarkStarted(p, Version); err != nil {
			e.Logger.Warn("updates: start not marked", "err", err)
		}
	}
}

func (c *common) updater(e *Env, s *store.Store, insecure bool) *update.Updater {
	return &update.Updater{Dir: c.data, Version: Version, OS: runtime.GOOS, Arch: runtime.GOARCH, Store: s, Insecure: insecure,
		Log: e.Logger, Notify: func(msg string) { fmt.Fprintln(e.Stdout, msg) }}
}

// startUpdates makes serve's sync check for releases after its rounds.
func (c *common) startUpdates(ctx context.Context, e *Env, s *store.Store, insecure bool, set func(synced func())) {
	up := c.updater(e, s, insecure)
	set(up.Kick)
	go up.Run(ctx)
}

// pinReleaseKey pins the hub's release key after an enrollment or a
// sync, if none is pinned yet, and says so. It fails nothing: without a
// key no update is installed, and the next sync tries again.
func (c *common) pinReleaseKey(ctx context.Context, e *Env, s *store.Store, insecure bool, enrolling bool) {
	k, now, err := c.updater(e, s, insecure).PinKey(ctx)
	switch {
	case errors.Is(err, update.ErrNoKey):
		if enrolling {
			fmt.Fprintln(e.Stdout, "Le hub ne publie pas encore de versions : sa clé de publication sera épinglée à une prochaine synchronisation.")
		}
	case err != nil:
		e.Logger.Info("updates: release key not pinned", "err", err)
		if enrolling {
			fmt.Fprintf(e.Stderr, "agent : clé de publication des mises à jour non épinglée (%v) : nouvel essai à la prochaine synchronisation.\n", err)
		}
	case now && enrolling:
		fmt.Fprintf(e.Stdout, "Clé de publication des mises à jour épinglée : %s.\n", release.KeyID(k))
	case now:
		fmt.Fprintf(e.Stdout, "Clé de publication des mises à jour épinglée (%s) : ce poste avait été inscrit avant les mises à jour automatiques.\n", release.KeyID(k))
	}
}

// updateStatus is the version and update lines of `agent status`.
func updateStatus(ctx context.Context, c *common, s *store.Store) (update.Status, error) {
	k, err := s.ReleaseKey(ctx)
	if err != nil {
		return update.Status{}, err
	}
	id := ""
	if k != nil {
		id = release.KeyID(k)
	}
	return update.ReadStatus(c.data, Version, id), nil
}

func printUpdateStatus(tw io.Writer, st update.Status) {
	fmt.Fprintf(tw, "Version de l'agent\t%s (%s)\n", st.Version, st.Platform)
	switch {
	case !st.Updates:
		fmt.Fprintf(tw, "Mises à jour\tversion de développement : pas de mise à jour automatique\n")
	case st.ReleaseKey == "":
		fmt.Fprintf(tw, "Mises à jour\tclé de publication pas encore épinglée (à la prochaine synchronisation)\n")
	default:
		fmt.Fprintf(tw, "Mises à jour\tclé de publication %s épinglée\n", st.ReleaseKey)
	}
	if p := st.Pending; p != nil {
		if p.Verified {
			fmt.Fprintf(tw, "Mise à jour en attente\t%s, vérifiée : installée au prochain démarrage de l'agent\n", p.Version)
		} else {
			fmt.Fprintf(tw, "Mise à jour en attente\t%s, non vérifiée : téléchargement en cours (%s sur %s)\n", p.Version, frSize(p.Downloaded), frSize(p.Size))
		}
	}
	if lc := st.LastCheck; lc != nil {
		fmt.Fprintf(tw, "Dernière vérification\t%s : %s\n", lc.At.Local().Format("02/01/2006 15:04"), lc.Message)
	}
	for _, b := range st.Refused {
		fmt.Fprintf(tw, "Version écartée\t%s (%s, le %s) : ne sera plus installée\n", b.Version, b.Reason, b.At.Local().Format("02/01/2006 15:04"))
	}
}

// frSize is a size the French way: 12,3 Mio, 850 Kio, 12 o.
func frSize(n int64) string {
	unit, div := "o", int64(1)
	switch {
	case n >= 1<<20:
		unit, div = "Mio", 1<<20
	case n >= 1<<10:
		unit, div = "Kio", 1<<10
	}
	if div == 1 {
		return strconv.FormatInt(n, 10) + "\u202fo"
	}
	return strings.Replace(strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64), ".", ",", 1) + "\u202f" + unit
}
