package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"time"

	"numeribus/agent/store"
	"numeribus/agent/ui"
)

// defaultDataDir is where the agent keeps its data when neither --data
// nor NUMERIBUS_DATA says: under the person's profile, in the system's
// usual place for program settings — %APPDATA%\Numeribus on Windows
// (C:\Users\NAME\AppData\Roaming\Numeribus), ~/.config/numeribus/agent
// on Linux, ~/Library/Application Support/numeribus/agent on macOS.
// Empty when the system says no such place exists.
func defaultDataDir(goos string, configDir func() (string, error)) string {
	d, err := configDir()
	if err != nil || d == "" {
		return ""
	}
	if goos == "windows" {
		return filepath.Join(d, "Numeribus")
	}
	return filepath.Join(d, "numeribus", "agent")
}

// withDefaultCommand returns the arguments to run: on Windows a program
// started with none was double-clicked, and is `agent app`; elsewhere
// no arguments print the usage, as before.
func withDefaultCommand(goos string, args []string) []string {
	if len(args) == 0 && goos == "windows" {
		return []string{"app"}
	}
	return args
}

// runApp is `agent app`: the mediator's program, for a laptop nobody
// administers. It keeps its data under the person's profile, writes its
// logs there (logfile.go), asks for the passphrase in the browser — on
// the very first start to create the store (ui.Setup), then at each
// start to unlock it —, runs the web interface and the background sync
// as `agent serve` does, opens the default browser on the interface, and
// stops on « Quitter » in the interface, Ctrl-C, or the console window
// closed, with exit code 0.
func runApp(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "app", "[--data DIR] [--listen ADRESSE] [--no-browser] [--insecure] [--notice-structure TEXTE] [--notice-contact TEXTE] [--notice-retention TEXTE]", &c)
	var o uiOptions
	o.flags(fs)
	noBrowser := fs.Bool("no-browser", false, "n'ouvre pas le navigateur (l'adresse de l'interface est affichée)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("argument en trop : %q", fs.Arg(0))
	}
	if c.passFile != "" {
		return usagef("agent app demande la phrase de passe dans le navigateur : --passphrase-file ne s'applique pas (voir « agent serve »)")
	}
	if c.data == "" {
		return usagef("aucun dossier de profil connu pour les données : donnez --data DIR")
	}
	lw, err := openLog(filepath.Join(c.data, logDir, logName), logMax, logKeep)
	if err != nil {
		return err
	}
	defer lw.Close()
	e.Logger = slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e.Logger.Info("agent app starting", "version", Version, "os", runtime.GOOS, "arch", runtime.GOARCH)
	err = app(ctx, e, &c, o, !*noBrowser)
	if err != nil {
		e.Logger.Error("agent app stopped on an error", "err", err)
	} else {
		e.Logger.Info("agent app stopped")
	}
	return err
}

func app(ctx context.Context, e *Env, c *common, o uiOptions, browse bool) error {
	fmt.Fprintf(e.Stdout, "Numéribus Sync — agent %s\nDonnées : %s\nJournal : %s\n", Version, c.data, filepath.Join(c.data, logDir, logName))
	ln, err := ui.Listen(o.listen)
	if err != nil {
		// Double-clicked a second time: the agent already running
		// answers there; show it rather than fail.
		if ui.Running(o.listen) {
			url := "http://" + o.listen + "/"
			fmt.Fprintf(e.Stdout, "Numéribus Sync est déjà lancé : %s\n", url)
			e.Logger.Info("already running: opening the browser on it")
			if browse {
				return openBrowser(runtime.GOOS, e.Getenv("NUMERIBUS_BROWSER"), url)
			}
			return nil
		}
		return err
	}
	h := newHandoff(ln)
	defer h.Close()
	url := "http://" + ln.Addr().String() + "/"
	// « Quitter » stops the program the way Ctrl-C does.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o.quit = cancel
	// The listener accepts from now on (connections wait for the first
	// server's turn): the browser may open at once.
	fmt.Fprintf(e.Stdout, "Interface web : %s\n", url)
	if browse {
		if err := openBrowser(runtime.GOOS, e.Getenv("NUMERIBUS_BROWSER"), url); err != nil {
			e.Logger.Warn("browser not opened", "err", err)
			fmt.Fprintf(e.Stderr, "Le navigateur ne s'est pas ouvert : ouvrez vous-même %s\n", url)
		}
	}
	opts := c.storeOpts(e)
	opts.IndexOnUnlock = true // the UI's pages and search (store/index.go)
	s, err := store.Open(ctx, c.data, opts)
	if errors.Is(err, store.ErrNoStore) {
		if err := firstStart(ctx, e, c, h, url, cancel); err != nil || ctx.Err() != nil {
			return err
		}
		s, err = store.Open(ctx, c.data, opts)
	}
	if de, ok := errors.AsType[*store.DamagedError](err); ok {
		if err := serveDamaged(ctx, e, h.turn(), de); err != nil || ctx.Err() != nil {
			return err
		}
		s, err = store.Open(ctx, c.data, opts) // restored through the page
	}
	if err != nil {
		return err
	}
	defer s.Close()
	return serveUI(ctx, e, s, h.turn(), o)
}

// firstStart serves the first-start page (ui.Setup) on a turn of h until
// the store is created, or ctx ends (quit: « Quitter »; Ctrl-C).
func firstStart(ctx context.Context, e *Env, c *common, h *handoff, url string, quit func()) error {
	setup := ui.NewSetup(ui.SetupConfig{
		MinLength: MinPassphrase,
		Quit:      quit,
		Logger:    e.Logger,
		Create: func(ctx context.Context, pass []byte) (string, error) {
			s, code, err := store.Create(ctx, c.data, pass, c.storeOpts(e))
			if err != nil {
				return "", err
			}
			// Opened again, locked, for the interface: the person unlocks
			// it with the passphrase just chosen.
			return code, s.Close()
		},
	})
	srv := &http.Server{Handler: setup.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(e.Logger.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(h.turn()) }()
	fmt.Fprintf(e.Stdout, "Premier démarrage : choisissez la phrase de passe dans le navigateur (%s).\n", url)
	select {
	case <-setup.Done():
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("page de premier démarrage : %w", err)
	}
	// Shutdown waits for the page being sent (the recovery code, or
	// « arrêté »), then ends the turn; the listener stays open.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-served
	return nil
}

// HoldWindow keeps the console window of a double-clicked agent open
// after a failure, until Enter, so that its message can be read: Windows
// closes a console it made for a program when that program ends. It does
// nothing elsewhere, after a success, or in a terminal shared with
// another program (cmd.exe, PowerShell).
func HoldWindow(code int, in io.Reader, out io.Writer) {
	if code == ExitOK || !ownConsole() {
		return
	}
	fmt.Fprint(out, "\nAppuyez sur Entrée pour fermer cette fenêtre.")
	bufio.NewReader(in).ReadString('\n')
}
