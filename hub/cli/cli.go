// Package cli is the hub's command line: serve, enroll, revoke, devices,
// stats, plan, user. Main takes its streams as arguments so tests drive it
// in-process. It speaks French, like the agent's (messages.go).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/certs"
	"numeribus/hub/dashboard"
	"numeribus/hub/enrollment"
	"numeribus/hub/releases"
	hreport "numeribus/hub/report"
	"numeribus/hub/retain"
	"numeribus/hub/store"
	"numeribus/hub/store/postgres"
	"numeribus/hub/store/sqlite"
	"numeribus/hub/syncserver"
	"numeribus/internal/domain"
	"numeribus/internal/frnum"
	"numeribus/internal/owneronly"
)

// Exit codes, the agent's: internal/apperr's one table (docs/CLI.md).
const (
	ExitOK      = 0
	ExitFailure = 1 // apperr.Internal
	ExitUsage   = 2 // apperr.Usage
	ExitInvalid = 4 // apperr.Invalid, apperr.Conflict: nothing was written
	ExitState   = 5 // apperr.State, apperr.NotFound
)

// Version is set at build time.
var Version = "dev"

// DBFile is the hub's database inside its data directory.
const DBFile = "hub.db"

// urlFile keeps the public URL `hub serve` announced, for `hub enroll`.
const urlFile = "public-url"

// Env is what a command sees of the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
	// Ready, if set, receives the running server once it listens (tests).
	Ready func(*Server)
	// Sync, if set, adjusts the sync server's options before it starts
	// (tests: shorter keepalive and contact periods, a clock).
	Sync func(*syncserver.Options)

	db string // --db: a PostgreSQL URL, or "" for DIR/hub.db
}

type command struct {
	name, summary string
	run           func(ctx context.Context, e *Env, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"serve", "fait tourner le hub : synchronisation (wss) et tableau de bord des coordinateurs", runServe},
		{"enroll", "affiche un code d'inscription à usage unique pour un poste", runEnroll},
		{"revoke", "coupe un poste, connexion en cours comprise", runRevoke},
		{"devices", "liste les postes inscrits et la fraîcheur de leur synchronisation", runDevices},
		{"stats", "chiffres consolidés (activités, bénéficiaires…)", runStats},
		{"plan", "planifie les arrêts des véhicules d'une équipe : add, list (prévus et réalisés), cancel", runPlan},
		{"user", "comptes du tableau de bord : user add, list, disable, enable, password, token", runUser},
		{"release", "versions de l'agent : release keygen, sign (hors ligne), add, list", runRelease},
		{"retention", "durées de conservation des données personnelles : retention show, set, purge", runRetention},
		{"access", "écrit ce que le hub détient sur une personne, en français (droit d'accès)", runAccess},
		backupCmd, restoreCmd,
		{"version", "affiche la version", func(_ context.Context, e *Env, _ []string) error {
			fmt.Fprintf(e.Stdout, "hub %s\n", Version)
			return nil
		}},
	}
	commands = append(commands, transferCommands...) // transfer.go: import, export (USB stick)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "hub — le hub de Numéribus Sync\n\nUsage : hub <commande> [options]\n\nCommandes :\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n« hub <commande> --help » détaille chaque commande.\n"+
		"Codes de sortie : 0 succès, 1 échec, 2 usage, 4 données invalides, 5 état (docs/CLI.md).\n")
}

// Main runs the hub command line and returns the exit code.
func Main(ctx context.Context, args []string, e Env) int {
	if e.Logger == nil {
		e.Logger = slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return report(e.Stderr, e.Logger, c.run(ctx, &e, args[1:]))
		}
	}
	fmt.Fprintf(e.Stderr, "hub : commande inconnue « %s »\n\n", args[0])
	usage(e.Stderr)
	return ExitUsage
}

func newFlags(e *Env, name, args string, data *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages are English: parse says them in
	// French, once; the usage is ours.
	fs.SetOutput(io.Discard)
	def := os.Getenv("NUMERIBUS_HUB_DATA")
	if def == "" {
		def = "hub-data"
	}
	fs.StringVar(data, "data", def, "dossier des données du hub (ou NUMERIBUS_HUB_DATA)")
	fs.StringVar(&e.db, "db", os.Getenv("NUMERIBUS_HUB_DB"),
		"base du hub : postgres://… pour PostgreSQL, plusieurs hubs sur une base (ou NUMERIBUS_HUB_DB) ; par défaut DOSSIER/hub.db (SQLite)")
	fs.Usage = func() {
		fmt.Fprintf(e.Stderr, "Usage : hub %s %s\n\nOptions :\n", name, args)
		printOptions(e.Stderr, fs)
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s (« hub %s --help » liste les options)", frenchFlagError(err), fs.Name())
	}
	if fs.NArg() > 0 {
		return usagef("argument inattendu « %s » (« hub %s --help » liste les options)", fs.Arg(0), fs.Name())
	}
	return nil
}

// hubStore is what the commands and the server need of the hub's
// storage, on SQLite (hub/store/sqlite) or PostgreSQL (hub/store/postgres).
type hubStore interface {
	store.Store
	// Ping checks that the database answers (/healthz).
	Ping(ctx context.Context) error
	accounts.Store
	hreport.Source
	dashboard.Planner
	dashboard.Places
	releases.Store
	retain.Store
}

var (
	_ hubStore = (*sqlite.Store)(nil)
	_ hubStore = (*postgres.Store)(nil)
)

// openStore opens the hub store for a command: a guest beside a running
// `hub serve`, which makes way for its writes on SQLite.
func openStore(ctx context.Context, e *Env, dir string) (hubStore, error) {
	return openStoreAs(ctx, e, dir, false)
}

// postgresConns is the size of the PostgreSQL pool of a hub process: the
// sync server's writers and readers (4 + 4), the facts follower, the
// dashboard, the bookkeeping writes. PostgreSQL's default allows 100
// connections: a dozen instances.
const postgresConns = 12

// openStoreAs opens the hub store, as the host (`hub serve`) or a guest
// (every other command): the PostgreSQL database --db names, or the
// SQLite file of dir.
func openStoreAs(ctx context.Context, e *Env, dir string, host bool) (hubStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err) // said in French by message (path errors)
	}
	// MkdirAll leaves an existing directory as it is: one made looser
	// before is taken back to its owner, with the URL file beside the keys.
	if err := owneronly.Dir(dir); err != nil {
		return nil, err
	}
	if err := owneronly.Files(filepath.Join(dir, urlFile)); err != nil {
		return nil, err
	}
	if e.db != "" {
		if !strings.HasPrefix(e.db, "postgres://") && !strings.HasPrefix(e.db, "postgresql://") {
			return nil, usagef("--db attend une adresse PostgreSQL (postgres://…), pas « %s »", redactURL(e.db))
		}
		return postgres.Open(ctx, e.db, postgres.Options{Logger: e.Logger, MaxConns: postgresConns})
	}
	return sqlite.Open(ctx, filepath.Join(dir, DBFile), sqlite.Options{Logger: e.Logger, Host: host})
}

// health answers a load balancer: 200 while the hub serves and reaches
// its database, 503 once it stops (draining) or when the database does
// not answer within two seconds.
func health(st interface{ Ping(context.Context) error }, draining *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if draining.Load() {
			http.Error(w, "arrêt en cours", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			http.Error(w, "base de données injoignable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// redactURL hides a password in a database URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

func runEnroll(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "enroll", "--data DOSSIER --device NOM --team ÉQUIPE [--expires 168h] [--url URL] [--json]", &data)
	name := fs.String("device", "", "nom du poste, unique (ex. bus-3)")
	team := fs.String("team", "", "équipe du poste (ex. cd88)")
	expires := fs.Duration("expires", enrollment.DefaultTTL, "validité du code")
	pubURL := fs.String("url", "", "adresse du hub que l'agent appelle (par défaut celle qu'a annoncée « hub serve »)")
	asJSON := fs.Bool("json", false, "affiche un objet JSON : le code et son expiration")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" || *team == "" {
		return usagef("--device et --team sont obligatoires")
	}
	u := *pubURL
	if u == "" {
		b, err := os.ReadFile(filepath.Join(data, urlFile))
		if err != nil {
			return usagef("pas de --url, et aucun hub n'a encore tourné sur %s : donnez --url", data)
		}
		u = strings.TrimSpace(string(b))
	}
	var fp []byte
	if strings.HasPrefix(u, "wss://") {
		_, f, err := certs.LoadOrCreate(data)
		if err != nil {
			return err
		}
		fp = f
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	is, err := enrollment.Issue(ctx, st, enrollment.Request{Name: *name, Team: *team, URL: u, Fingerprint: fp, TTL: *expires})
	if err != nil {
		return err
	}
	code, exp := is.Code, is.Expires
	if *asJSON {
		return json.NewEncoder(e.Stdout).Encode(map[string]any{"code": code, "expires": exp.UTC().Format(time.RFC3339), "device": *name, "team": *team, "url": u})
	}
	fmt.Fprintf(e.Stdout, "Code d'inscription du poste %s (équipe %s), valable jusqu'au %s, à usage unique :\n\n%s\n\nSur l'ordinateur du médiateur : agent enroll --data DOSSIER CODE\n",
		*name, *team, exp.Format("02/01/2006 à 15:04"), code)
	return nil
}

func runRevoke(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "revoke", "--data DOSSIER --device NOM", &data)
	name := fs.String("device", "", "nom du poste")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usagef("--device est obligatoire")
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Revoke(ctx, *name, time.Now()); errors.Is(err, store.ErrNoDevice) {
		return frErr("", err, "poste inconnu : « %s » (« hub devices » liste les postes inscrits)", *name)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Poste %s révoqué ; un hub en marche coupe sa connexion dans les secondes qui suivent.\n", *name)
	return nil
}

func runDevices(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "devices", "--data DOSSIER [--json]", &data)
	asJSON := fs.Bool("json", false, "sortie JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	ds, err := st.Devices(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		type out struct {
			Name, Team, ID, AgentVersion                  string
			EnrolledAt, LastSeen, LastSync, RevokedAt     string `json:",omitempty"`
			HWM                                           uint64
			ClockOffsetMs, BytesReceived, ChangesReceived int64
		}
		var os []out
		for _, d := range ds {
			os = append(os, out{d.Name, d.Team, d.ID, d.AgentVersion, ts(d.EnrolledAt), ts(d.LastSeen), ts(d.LastSync), ts(d.RevokedAt),
				d.HWM, d.ClockOffsetMs, d.BytesReceived, d.ChangesReceived})
		}
		return json.NewEncoder(e.Stdout).Encode(os)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POSTE\tÉQUIPE\tDERNIER CONTACT\tDERNIÈRE SYNCHRO\tMODIFICATIONS\tDÉCALAGE D'HORLOGE\tÉTAT")
	now := time.Now()
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Team, frTime(d.LastSeen), frTime(d.LastSync), frnum.Int(d.ChangesReceived),
			frnum.Dec(float64(d.ClockOffsetMs)/1000, 1)+" s", deviceState(d, now))
	}
	return tw.Flush()
}

// deviceState is a device's state for the table: révoqué, en retard
// after dashboard.DefaultStaleAfter without a complete sync (as the
// dashboard says), or à jour.
func deviceState(d store.Device, now time.Time) string {
	switch {
	case d.Revoked():
		return "révoqué le " + frTime(d.RevokedAt)
	case d.LastSync.IsZero():
		return "jamais synchronisé"
	case now.Sub(d.LastSync) > dashboard.DefaultStaleAfter:
		return fmt.Sprintf("en retard : aucune synchronisation depuis %d jours", int(now.Sub(d.LastSync)/(24*time.Hour)))
	}
	return "à jour"
}

// frTime writes a time for a table: JJ/MM/AAAA HH:MM, local time; "jamais"
// for none.
func frTime(t time.Time) string {
	if t.IsZero() {
		return "jamais"
	}
	return t.Local().Format("02/01/2006 15:04")
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func runStats(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "stats", "--data DOSSIER [--json] [--from AAAA-MM-JJ] [--to AAAA-MM-JJ] [--territory CODE] [--team ÉQUIPE]", &data)
	asJSON := fs.Bool("json", false, "sortie JSON")
	from := fs.String("from", "", "premier jour de la période (AAAA-MM-JJ ; par défaut un an avant --to)")
	to := fs.String("to", "", "dernier jour de la période (AAAA-MM-JJ ; par défaut aujourd'hui)")
	territory := fs.String("territory", "", "commune, EPCI, département ou région : com:54395, epci:245400676, dep:54, reg:44")
	team := fs.String("team", "", "équipe")
	if err := parse(fs, args); err != nil {
		return err
	}
	// The overview is hub/report's, as the dashboard and the exports
	// compute it: the same filter gives the same numbers.
	var f hreport.Filter
	for _, d := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--from", *from, &f.From}, {"--to", *to, &f.To}} {
		if d.v == "" {
			continue
		}
		t, ok := domain.ParseDate(d.v)
		if !ok {
			return usagef("%s « %s » : date attendue au format AAAA-MM-JJ", d.flag, d.v)
		}
		*d.dst = t
	}
	t, err := hreport.ParseTerritory(*territory)
	if err != nil {
		return usagef("--territory « %s » inconnu : donnez com:INSEE, epci:SIREN, dep:CODE ou reg:CODE", *territory)
	}
	f.Territory, f.Team = t, *team
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := st.Stats(ctx)
	if err != nil {
		return err
	}
	ov, err := hreport.ComputeOverview(ctx, st, f, hreport.Scope{}, hreport.Options{})
	if err != nil {
		if errors.Is(err, hreport.ErrBadFilter) {
			return usagef("période invalide : --from doit précéder --to")
		}
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			store.Stats
			Overview *hreport.Overview `json:"overview"`
		}{s, ov})
	}
	fmt.Fprintf(e.Stdout, "Postes : %s ; modifications reçues : %s\n", frnum.Int(s.Devices), frnum.Int(s.Changes))
	for _, k := range domain.Kinds {
		if n, ok := s.Records[k]; ok {
			fmt.Fprintf(e.Stdout, "  %s : %s\n", k.Label(), frnum.Int(n))
		}
	}
	fmt.Fprintln(e.Stdout, statsLine(ov))
	return nil
}

// statsLine is the overview's headline in one French sentence.
func statsLine(ov *hreport.Overview) string {
	h := ov.Headline
	return fmt.Sprintf("Du %s au %s : %s accompagnements (%s activités : %s individuelles, %s ateliers), %s bénéficiaires, %s h, %s communes",
		hreport.FormatDay(ov.Filter.FromDay()), hreport.FormatDay(ov.Filter.ToDay()), frnum.Int(h.Accompagnements), frnum.Int(h.Activites),
		frnum.Int(h.Individuels), frnum.Int(h.Collectifs), frnum.Int(ov.Beneficiaires.Distincts), frnum.Dec(h.Heures, 1), frnum.Int(h.Communes))
}

// Server is a running hub.
type Server struct {
	Addr string // the address actually bound
	URL  string // the sync URL agents dial
	srv  *http.Server
	sync *syncserver.Server
}

func runServe(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "serve", "--data DOSSIER [--listen ADRESSE] [--insecure] [--public-url URL] [--stale-after 120h]", &data)
	listen := fs.String("listen", "127.0.0.1:8443", "adresse d'écoute (hôte:port ; le port 0 en choisit un)")
	insecure := fs.Bool("insecure", false, "ws:// sans TLS — sur l'adresse de bouclage seulement, pour les démonstrations et les tests")
	public := fs.String("public-url", "", "adresse que les agents appellent (par défaut déduite de --listen)")
	certFile := fs.String("cert", "", "certificat TLS (PEM) ; par défaut celui que le hub crée dans DOSSIER")
	keyFile := fs.String("key", "", "clé TLS (PEM) de --cert")
	staleAfter := fs.Duration("stale-after", dashboard.DefaultStaleAfter, "tableau de bord : un poste sans synchronisation depuis plus longtemps est « en retard »")
	if err := parse(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err) // said in French by message
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if *insecure && !net.ParseIP(host).IsLoopback() {
		ln.Close()
		return usagef("--insecure n'est permis que sur l'adresse de bouclage (loopback), pas sur %s", host)
	}
	st, err := openStoreAs(ctx, e, data, true)
	if err != nil {
		ln.Close()
		return err
	}
	defer st.Close()
	hk, err := certs.LoadOrCreateEnvelopeKey(data)
	if err != nil {
		ln.Close()
		return err
	}
	opt := syncserver.Options{Logger: e.Logger, HubKey: hk.Public(), Open: syncserver.EnvelopeOpener(hk), Retention: st.RetentionPolicy}
	if e.db != "" {
		// PostgreSQL takes concurrent writers (row locks, commit order
		// kept by the log counter): a few batches at once, within the
		// pool (postgresConns) beside the pulls, facts and dashboard.
		opt.Writers, opt.Readers = 4, 4
	}
	scheme := "ws"
	var tlsCert *certs.Pair
	if !*insecure {
		scheme = "wss"
		p, err := certs.Get(data, *certFile, *keyFile, host)
		if err != nil {
			ln.Close()
			return err
		}
		tlsCert = &p
		opt.Fingerprint = p.Fingerprint
	}
	u := *public
	if u == "" {
		u = fmt.Sprintf("%s://%s/sync", scheme, net.JoinHostPort(host, port))
	}
	if err := os.WriteFile(filepath.Join(data, urlFile), []byte(u+"\n"), 0o600); err != nil {
		ln.Close()
		return err
	}
	if e.Sync != nil {
		e.Sync(&opt)
	}
	ss := syncserver.New(st, opt)
	mux := http.NewServeMux()
	mux.Handle("/sync", ss)
	var draining atomic.Bool
	mux.Handle("/healthz", health(st, &draining))
	mux.Handle("/releases/", releases.Handler(st, releases.Options{Logger: e.Logger})) // agent updates: signed binaries, byte ranges
	// The dashboard takes every other path; /sync and /healthz, more
	// specific, keep going to their handlers.
	// The store is all four: devices, accounts, report facts, planning.
	dcfg := dashboard.Config{Store: st, Accounts: st, Reports: st, Plans: st, Places: st, Logger: e.Logger, SyncURL: u, Fingerprint: opt.Fingerprint, StaleAfter: *staleAfter}
	if *public != "" {
		h, err := dashboard.HostOf(*public)
		if err != nil {
			ln.Close()
			return usagef("--public-url « %s » illisible", *public)
		}
		dcfg.Hosts = append(dcfg.Hosts, h)
	}
	dash, err := dashboard.New(dcfg)
	if err != nil {
		ln.Close()
		return err
	}
	mux.Handle("/", dash.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(e.Logger.Handler(), slog.LevelWarn)}
	if tlsCert != nil {
		srv.TLSConfig = tlsCert.ServerConfig()
	}
	s := &Server{Addr: ln.Addr().String(), URL: u, srv: srv, sync: ss}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go ss.WatchRevocations(wctx, syncserver.RevocationEvery)
	go ss.KeepContacts(wctx)
	go dash.CleanSessions(wctx, time.Hour)
	serveRetention(wctx, mux, st, e.Logger)
	errc := make(chan error, 1)
	go func() {
		if tlsCert != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	e.Logger.Info("hub listening", "addr", s.Addr, "url", u, "data", data)
	// .ci/demo.sh and the end-to-end tests read the address from this
	// line: "hub à l'écoute sur ADRESSE — …".
	fmt.Fprintf(e.Stdout, "hub à l'écoute sur %s — les agents se connectent à %s\n", s.Addr, u)
	if e.Ready != nil {
		e.Ready(s)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err) // logged, said in French by message
	case <-ctx.Done():
	}
	draining.Store(true) // a load balancer stops sending agents here
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdown)
	defer cancel()
	srv.Shutdown(sctx)
	// Connections finish the batches they hold, then go (stop.go).
	dctx, dcancel := context.WithTimeout(context.Background(), syncDrain)
	defer dcancel()
	ss.Shutdown(dctx)
	e.Logger.Info("hub stopped")
	return nil
}
