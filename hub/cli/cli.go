// Package cli is the hub's command line: serve, enroll, revoke, devices,
// stats. Main takes its streams as arguments so tests drive it in-process.
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
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/certs"
	"numeribus/hub/dashboard"
	"numeribus/hub/enrollment"
	hreport "numeribus/hub/report"
	"numeribus/hub/retain"
	"numeribus/hub/store"
	"numeribus/hub/store/postgres"
	"numeribus/hub/store/sqlite"
	"numeribus/hub/syncserver"
	"numeribus/internal/apperr"
	"numeribus/internal/domain"
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
		{"serve", "runs the hub: sync endpoint (wss) and the coordinators' dashboard", runServe},
		{"enroll", "prints a one-time enrollment code for a laptop", runEnroll},
		{"revoke", "cuts a device off, live connections included", runRevoke},
		{"devices", "lists enrolled devices and their sync freshness", runDevices},
		{"stats", "consolidated counts (activities, beneficiaries, …)", runStats},
		{"plan", "plans tour stops of a team's vehicles: add, list (planned vs made), cancel", runPlan},
		{"user", "dashboard accounts: user add, user list, user disable, user token", runUser},
		{"retention", "retention periods of personal data: retention show, retention set, retention purge", runRetention},
		{"access", "writes what the hub holds about one person, in French (right of access)", runAccess},
		{"version", "prints the version", func(_ context.Context, e *Env, _ []string) error {
			fmt.Fprintf(e.Stdout, "hub %s\n", Version)
			return nil
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "hub — the Numéribus Sync hub\n\nUsage: hub <command> [options]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n`hub <command> --help` details each command. Exit codes: 0 ok, 1 failure, 2 usage, 4 invalid, 5 state (docs/CLI.md).\n")
}

// usagef is an error in the command line (apperr.Usage: exit 2).
func usagef(format string, a ...any) error { return apperr.Errorf(apperr.Usage, format, a...) }

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
			return report(e.Stderr, c.run(ctx, &e, args[1:]))
		}
	}
	fmt.Fprintf(e.Stderr, "hub: unknown command %q\n\n", args[0])
	usage(e.Stderr)
	return ExitUsage
}

// report prints err on one line and returns its exit code from
// apperr's table.
func report(w io.Writer, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	fmt.Fprintf(w, "hub: %v\n", err)
	return apperr.ExitCode(err)
}

func newFlags(e *Env, name, args string, data *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	def := os.Getenv("NUMERIBUS_HUB_DATA")
	if def == "" {
		def = "hub-data"
	}
	fs.StringVar(data, "data", def, "hub data directory (or NUMERIBUS_HUB_DATA)")
	fs.StringVar(&e.db, "db", os.Getenv("NUMERIBUS_HUB_DB"),
		"the hub's database: postgres://… for PostgreSQL, several hubs over one database (or NUMERIBUS_HUB_DB); default DIR/hub.db (SQLite)")
	fs.Usage = func() {
		fmt.Fprintf(e.Stderr, "Usage: hub %s %s\n\nOptions:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
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
		return nil, fmt.Errorf("creating %s: %w", dir, err)
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
			return nil, usagef("--db takes a PostgreSQL URL (postgres://…), not %q", redactURL(e.db))
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
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
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
	fs := newFlags(e, "enroll", "--data DIR --device NAME --team TEAM [--expires 168h] [--url URL] [--json]", &data)
	name := fs.String("device", "", "device name, unique (e.g. bus-3)")
	team := fs.String("team", "", "team the device belongs to (e.g. cd88)")
	expires := fs.Duration("expires", enrollment.DefaultTTL, "validity of the code")
	pubURL := fs.String("url", "", "hub address the agent dials (default: the one `hub serve` announced)")
	asJSON := fs.Bool("json", false, "print one JSON object with the code and its expiry")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" || *team == "" {
		return usagef("--device and --team are required")
	}
	u := *pubURL
	if u == "" {
		b, err := os.ReadFile(filepath.Join(data, urlFile))
		if err != nil {
			return usagef("no --url given and no hub has been served from %s yet", data)
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
	fmt.Fprintf(e.Stdout, "Enrollment code for %s (team %s), valid until %s, single use:\n\n%s\n\nOn the laptop: agent enroll --data DIR CODE\n", *name, *team, exp.Format("02/01/2006 15:04"), code)
	return nil
}

func runRevoke(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "revoke", "--data DIR --device NAME", &data)
	name := fs.String("device", "", "device name")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usagef("--device is required")
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Revoke(ctx, *name, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Device %s revoked; a running hub drops its connection within seconds.\n", *name)
	return nil
}

func runDevices(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "devices", "--data DIR [--json]", &data)
	asJSON := fs.Bool("json", false, "JSON output")
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
	fmt.Fprintln(tw, "NAME\tTEAM\tLAST SEEN\tLAST SYNC\tCHANGES\tCLOCK OFFSET\tSTATE")
	for _, d := range ds {
		state := "active"
		if d.Revoked() {
			state = "revoked"
		} else if !d.LastSync.IsZero() && time.Since(d.LastSync) > 5*24*time.Hour {
			state = "late (no sync for " + time.Since(d.LastSync).Round(time.Hour).String() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Name, d.Team, ts(d.LastSeen), ts(d.LastSync), d.ChangesReceived,
			(time.Duration(d.ClockOffsetMs) * time.Millisecond).Round(time.Second), state)
	}
	return tw.Flush()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func runStats(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "stats", "--data DIR [--json] [--from AAAA-MM-JJ] [--to AAAA-MM-JJ] [--territory CODE] [--team T]", &data)
	asJSON := fs.Bool("json", false, "JSON output")
	from := fs.String("from", "", "first day of the period (AAAA-MM-JJ; default: a year before --to)")
	to := fs.String("to", "", "last day of the period (AAAA-MM-JJ; default: today)")
	territory := fs.String("territory", "", "commune, EPCI, département or région: com:54395, epci:245400676, dep:54, reg:44")
	team := fs.String("team", "", "team")
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
			return usagef("%s %q: expected a date AAAA-MM-JJ", d.flag, d.v)
		}
		*d.dst = t
	}
	t, err := hreport.ParseTerritory(*territory)
	if err != nil {
		return usagef("--territory: %v", err)
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
			return usagef("%v", err)
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
	fmt.Fprintf(e.Stdout, "devices: %d, changes: %d\n", s.Devices, s.Changes)
	var ks []string
	for k, n := range s.Records {
		ks = append(ks, fmt.Sprintf("  %s: %d", k, n))
	}
	sort.Strings(ks)
	fmt.Fprintln(e.Stdout, strings.Join(ks, "\n"))
	h := ov.Headline
	fmt.Fprintf(e.Stdout, "du %s au %s: %d accompagnements (%d activités: %d individuelles, %d ateliers), %d bénéficiaires, %.1f h, %d communes\n",
		hreport.FormatDay(ov.Filter.FromDay()), hreport.FormatDay(ov.Filter.ToDay()), h.Accompagnements, h.Activites, h.Individuels, h.Collectifs,
		ov.Beneficiaires.Distincts, h.Heures, h.Communes)
	return nil
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
	fs := newFlags(e, "serve", "--data DIR [--listen ADDR] [--insecure] [--public-url URL] [--stale-after 120h]", &data)
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on (host:port; port 0 picks one)")
	insecure := fs.Bool("insecure", false, "plain ws:// without TLS — loopback only, for demos and tests")
	public := fs.String("public-url", "", "address agents dial (default from --listen)")
	certFile := fs.String("cert", "", "TLS certificate (PEM); default: one the hub makes in DIR")
	keyFile := fs.String("key", "", "TLS key (PEM) for --cert")
	staleAfter := fs.Duration("stale-after", dashboard.DefaultStaleAfter, "dashboard: a device without a sync for longer is shown late")
	if err := parse(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if *insecure && !net.ParseIP(host).IsLoopback() {
		ln.Close()
		return usagef("--insecure is allowed on a loopback address only, not %s", host)
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
	opt := syncserver.Options{Logger: e.Logger, HubKey: hk.Public(), Open: syncserver.EnvelopeOpener(hk)}
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
	// The dashboard takes every other path; /sync and /healthz, more
	// specific, keep going to their handlers.
	// The store is all four: devices, accounts, report facts, planning.
	dcfg := dashboard.Config{Store: st, Accounts: st, Reports: st, Plans: st, Places: st, Logger: e.Logger, SyncURL: u, Fingerprint: opt.Fingerprint, StaleAfter: *staleAfter}
	if *public != "" {
		h, err := dashboard.HostOf(*public)
		if err != nil {
			ln.Close()
			return usagef("--public-url: %v", err)
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
	fmt.Fprintf(e.Stdout, "hub listening on %s — agents dial %s\n", s.Addr, u)
	if e.Ready != nil {
		e.Ready(s)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	draining.Store(true) // a load balancer stops sending agents here
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	// Connections finish the batches they hold, then go: 10 s at most,
	// well within systemd's default stop timeout (90 s).
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	ss.Shutdown(dctx)
	e.Logger.Info("hub stopped")
	return nil
}
