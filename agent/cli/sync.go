package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"numeribus/agent/store"
	"numeribus/agent/syncclient"
	"numeribus/agent/ui"
	"numeribus/internal/apperr"
	"numeribus/internal/sqlitex"
)

func (c *common) client(e *Env, s *store.Store, insecure bool, url string) *syncclient.Client {
	return &syncclient.Client{Store: s, Log: e.Logger, Version: Version, Insecure: insecure, URL: url}
}

func runEnroll(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "enroll", "--data DIR [--insecure] CODE", &c)
	insecure := fs.Bool("insecure", false, "accepte un hub en ws:// non chiffré (démonstration, tests)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("donnez le code d'inscription fourni par le coordinateur")
	}
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	h, err := c.client(e, s, *insecure, "").Enroll(ctx, fs.Arg(0))
	if err != nil {
		return syncErr(err)
	}
	fmt.Fprintf(e.Stdout, "Poste inscrit au hub %s sous le nom %s (équipe %s).\n", h.URL, h.DeviceName, h.Team)
	c.pinReleaseKey(ctx, e, s, *insecure, true)
	return nil
}

func runSync(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "sync", "--data DIR [--push-only] [--insecure]", &c)
	pushOnly := fs.Bool("push-only", false, "sans phrase de passe : envoie seulement (la réception attend le déverrouillage)")
	insecure := fs.Bool("insecure", false, "accepte un hub en ws:// non chiffré (démonstration, tests)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var s *store.Store
	var err error
	if *pushOnly {
		s, err = store.Open(ctx, c.data, c.storeOpts(e))
	} else {
		s, err = c.openUnlocked(ctx, e)
	}
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	rep, err := c.client(e, s, *insecure, "").Sync(ctx)
	if err != nil {
		if rep.Pushed > 0 { // what reached the hub stays there: say so
			fmt.Fprintf(e.Stdout, "Envoi : %d modification(s) envoyée(s) au hub avant l'erreur.\n", rep.Pushed)
		}
		return syncErr(err)
	}
	fmt.Fprintf(e.Stdout, "Synchronisé en %v : %d modification(s) envoyée(s), %d reçue(s), %d en attente.",
		time.Since(start).Round(time.Millisecond), rep.Pushed, rep.Pulled, rep.PendingAfter)
	if rep.Pushed > 0 {
		fmt.Fprintf(e.Stdout, " Envoi au hub terminé en %v.", rep.Sent.Round(time.Millisecond))
	}
	if rep.Restamped > 0 {
		fmt.Fprintf(e.Stdout, " Horloge corrigée de %v (%d modification(s) réhorodatée(s)).", rep.ClockOffset.Round(time.Second), rep.Restamped)
	}
	if rep.PullSkipped {
		fmt.Fprint(e.Stdout, " Réception différée : agent verrouillé.")
	}
	if rep.Purged > 0 {
		fmt.Fprintf(e.Stdout, " Durées de conservation : données personnelles expirées effacées dans %d enregistrement(s).", rep.Purged)
	}
	fmt.Fprintln(e.Stdout)
	c.pinReleaseKey(ctx, e, s, *insecure, false) // enrolled before updates existed
	if rep.Rejected > 0 || rep.Unreadable > 0 {
		if rep.Unreadable > 0 {
			fmt.Fprintf(e.Stderr, "Attention : %d modification(s) reçue(s) illisible(s) ou datée(s) trop loin dans l'avenir, ignorée(s) (voir le journal).\n", rep.Unreadable)
		}
		if err := printRejected(ctx, e, s); err != nil {
			return err
		}
	}
	if rep.PushSkippedSkew {
		return errSkew
	}
	return nil
}

var errSkew = errors.New("horloge du poste décalée : l'envoi attend le déverrouillage de l'agent, qui la corrigera")

func runServe(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "serve", "--data DIR [--listen ADRESSE] [--insecure] [--notice-structure TEXTE] [--notice-contact TEXTE] [--notice-retention TEXTE]", &c)
	var o uiOptions
	o.flags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	opts := c.storeOpts(e)
	opts.IndexOnUnlock = true // the UI's pages and search (store/index.go)
	s, err := store.Open(ctx, c.data, opts)
	if de, ok := errors.AsType[*store.DamagedError](err); ok {
		ln, lerr := ui.Listen(o.listen)
		if lerr != nil {
			return errors.Join(err, lerr)
		}
		if err := serveDamaged(ctx, e, ln, de); err != nil {
			return err
		}
		s, err = store.Open(ctx, c.data, opts) // restored through the page
	}
	if err != nil {
		return err
	}
	defer s.Close()
	markStarted(e) // a new version on trial has started (update.go)
	if secret, err := c.secret(e, "Phrase de passe (vide : verrouillé, envoi seulement) : ", false); err == nil && len(secret) > 0 {
		err := s.Unlock(ctx, secret)
		clear(secret)
		if err != nil {
			return err
		}
	}
	ln, err := ui.Listen(o.listen)
	if err != nil {
		return err
	}
	o.data = c.data
	return serveUI(ctx, e, s, ln, o)
}

// uiOptions are the options of the web interface and its sync loop,
// shared by `agent serve` and `agent app`.
type uiOptions struct {
	listen   string
	insecure bool
	notice   ui.Notice
	// quit, when set, is the interface's « Quitter » (agent app).
	quit func()
	// data is the data directory: staged releases go under it (update.go).
	data string
}

func (o *uiOptions) flags(fs *flag.FlagSet) {
	fs.BoolVar(&o.insecure, "insecure", false, "accepte un hub en ws:// non chiffré (démonstration, tests)")
	fs.StringVar(&o.listen, "listen", ui.DefaultAddr, "adresse de l'interface web locale (boucle locale uniquement)")
	fs.StringVar(&o.notice.Structure, "notice-structure", "", "notice d'information : nom et adresse de la structure responsable des données (vide : ligne à remplir à la main)")
	fs.StringVar(&o.notice.Contact, "notice-contact", "", "notice d'information : contact pour exercer ses droits, ou délégué à la protection des données (vide : ligne à remplir à la main)")
	fs.StringVar(&o.notice.Retention, "notice-retention", "", "notice d'information : durée de conservation des données identifiantes (vide : 2 ans après le dernier accompagnement)")
}

// serveUI runs the web interface on ln and the background sync of s
// until ctx ends or the interface stops; a sync loop that stops for good
// leaves the interface running.
func serveUI(ctx context.Context, e *Env, s *store.Store, ln net.Listener, o uiOptions) error {
	// One client for the loop and the UI's "Synchroniser maintenant", so
	// the device never opens two sessions with the hub at once.
	cl := &syncclient.Client{Store: s, Log: e.Logger, Version: Version, Insecure: o.insecure}
	web := ui.New(ui.Config{Store: s, Logger: e.Logger, Sync: cl.SyncNow, Live: func() (bool, time.Time) {
		l := cl.Liveness()
		return l.Connected, l.LastContact
	}, Notice: o.notice, Quit: o.quit})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	backedUp := make(chan struct{}) // a copy a day (agent/store/backup.go)
	go func() { defer close(backedUp); s.AutoBackup(ctx, store.BackupEvery) }()
	defer func() { cancel(); <-backedUp }()
	served := make(chan error, 1)
	go func() { served <- web.Serve(ctx, ln) }()
	c := common{data: o.data}
	c.startUpdates(ctx, e, s, o.insecure, func(f func()) { cl.Synced = f }) // releases checked after rounds (update.go)
	synced := make(chan error, 1)
	go func() { synced <- cl.Run(ctx) }()
	fmt.Fprintf(e.Stdout, "Interface web : http://%s/\n", ln.Addr())
	stop := "Ctrl-C pour arrêter"
	if o.quit != nil {
		stop = "« Quitter » dans l'interface, ou Ctrl-C, pour arrêter"
	}
	fmt.Fprintf(e.Stdout, "Synchronisation en arrière-plan (%s) ; %s.\n", map[bool]string{true: "verrouillé : envoi seulement", false: "déverrouillé"}[s.Locked()], stop)
	// A sync loop that stops for good (not enrolled, revoked) leaves the
	// web interface running: records are still made and kept locally.
	var runErr error
	var err error
	select {
	case runErr = <-synced:
		if runErr != nil {
			e.Logger.Info("sync loop stopped", "err", runErr)
			fmt.Fprintf(e.Stderr, "Synchronisation arrêtée : %v\n", syncErr(runErr))
		}
		err = <-served
	case err = <-served:
		cancel()
		<-synced
	}
	if err != nil {
		return fmt.Errorf("interface web : %w", err)
	}
	if ctx.Err() != nil {
		return nil
	}
	return syncErr(runErr)
}

// syncErr says a sync failure in the agent's words, with its code:
// unreachable (try again later) or refused (retrying will not help).
func syncErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotEnrolled) {
		return apperr.Errorf(apperr.State, "ce poste n'est inscrit auprès d'aucun hub : « agent enroll CODE » d'abord")
	}
	if errors.Is(err, syncclient.ErrUnreachable) {
		return apperr.Errorf(apperr.Unreachable, "hub injoignable : %w", err)
	}
	if after, busy := syncclient.Busy(err); busy {
		// Reachable but saturated: try again later, like unreachable.
		return apperr.Errorf(apperr.Unreachable, "hub occupé, réessayez dans %d s : rien n'est perdu (%w)", max(int(after.Round(time.Second)/time.Second), 1), err)
	}
	if syncclient.Fatal(err) {
		return &apperr.Error{Code: apperr.Refused, Err: err}
	}
	if sqlitex.IsFull(err) {
		return apperr.Errorf(apperr.Internal, "disque plein : libérez de la place sur ce poste puis synchronisez à nouveau : rien ne sera perdu ni doublé (%w)", err)
	}
	return err
}

// printRejected lists on stderr the changes the hub refused, with what to
// do, at most ten.
func printRejected(ctx context.Context, e *Env, s *store.Store) error {
	rs, err := s.RejectedChanges(ctx)
	if err != nil || len(rs) == 0 {
		return err
	}
	fmt.Fprintf(e.Stderr, "Attention : %d modification(s) refusée(s) par le hub, conservée(s) sur ce poste :\n", len(rs))
	for i, r := range rs {
		if i == 10 {
			fmt.Fprintf(e.Stderr, "  … et %d autre(s) (agent status --json)\n", len(rs)-i)
			break
		}
		fmt.Fprintf(e.Stderr, "  n° %d, %s %s : %s\n", r.Seq, r.Kind.Label(), r.ID, r.Explain())
	}
	return nil
}
