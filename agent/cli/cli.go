// Package cli is the agent's command line: each subcommand parses its
// flags into a config and runs against the store. Main takes its streams
// and environment as arguments so that tests drive it in-process exactly
// as a person would from a terminal.
package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"time"

	"numeribus/agent/store"
	"numeribus/internal/apperr"
	"numeribus/internal/domain"
	"numeribus/internal/jsonl"
	"numeribus/internal/seal"
	"numeribus/internal/sqlitex"
)

// Exit codes, documented in docs/CLI.md: those of internal/apperr's one
// table (TestExitCodesAreApperrs here, apperr.TestCLIDocMatchesTheTable).
const (
	ExitOK      = 0 // done
	ExitFailure = 1 // unexpected failure (disk, database…): apperr.Internal
	ExitUsage   = 2 // bad command line: apperr.Usage
	ExitAuth    = 3 // wrong passphrase or recovery code, or none given: apperr.Auth
	ExitInvalid = 4 // invalid input, nothing was written: apperr.Invalid
	ExitState   = 5 // the store is not in the state the command needs: apperr.State
	// ExitUnreachable: the hub could not be reached (no coverage, hub
	// down): apperr.Unreachable.
	ExitUnreachable = 6
	// ExitRefused: the hub refused this device (revoked, unknown, bad
	// certificate, protocol too old), retrying will not help:
	// apperr.Refused.
	ExitRefused = 7
)

// Env is what a command sees of the outside world.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Prompt reads a secret from the terminal without echo; nil when
	// there is no terminal.
	Prompt func(label string) ([]byte, error)
	// KDF overrides the Argon2id costs of new slots (tests only).
	KDF seal.KDFParams
	// Logger receives operational logs (never personal data).
	Logger *slog.Logger
}

// Version is set at build time with -ldflags "-X numeribus/agent/cli.Version=…".
var Version = "dev"

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e *Env, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"init", "--data DIR", "crée le magasin chiffré et affiche le code de secours (une seule fois)", runInit},
		{"import", "--data DIR [FICHIER|-]", "importe des enregistrements JSON Lines (tout ou rien)", runImport},
		{"list", "--data DIR [--kind K] [--json]", "liste les enregistrements déchiffrés", runList},
		{"seed", "--data DIR --n N [--seed S]", "crée N activités de démonstration réalistes", runSeed},
		{"erase", "--data DIR --beneficiary ID", "efface les données personnelles d'un bénéficiaire", runErase},
		{"consent", "withdraw --data DIR --consent ID [--finalite F]…", "retire un consentement et efface ce qu'il couvrait", runConsent},
		{"passphrase", "--data DIR", "change la phrase de passe (avec l'ancienne ou le code de secours)", runPassphrase},
		{"enroll", "--data DIR CODE", "inscrit ce poste auprès du hub avec le code du coordinateur", runEnroll},
		{"sync", "--data DIR [--push-only]", "synchronise une fois avec le hub (envoi puis réception)", runSync},
		{"serve", "--data DIR", "synchronise en continu, en arrière-plan", runServe},
		{"app", "[--data DIR] [--no-browser]", "le programme du poste : interface web, synchronisation, navigateur ouvert (double-clic sous Windows)", runApp},
		backupCmd, backupsCmd, restoreCmd,
		{"status", "--data DIR [--json]", "état du magasin, sans phrase de passe ni donnée personnelle", runStatus},
		{"version", "", "affiche la version", runVersion},
	}
	commands = append(commands, transferCommands...) // transfer.go: export, import-receipt, import-bundle
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "agent — l'agent Numéribus Sync du poste de médiation\n\nUsage : agent <commande> [options]\n\nCommandes :\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n« agent <commande> --help » détaille chaque commande.\n"+
		"Phrase de passe : --passphrase-file FICHIER, la variable NUMERIBUS_PASSPHRASE, ou une saisie masquée.\n"+
		"Codes de sortie : 0 succès, 1 échec, 2 usage, 3 phrase de passe, 4 données invalides, 5 état du magasin,\n"+
		"6 hub injoignable, 7 refusé par le hub.\n")
}

// usagef is an error in the command line (apperr.Usage: exit 2).
func usagef(format string, a ...any) error { return apperr.Errorf(apperr.Usage, format, a...) }

// Main runs the agent command line and returns the exit code.
func Main(ctx context.Context, args []string, e Env) int {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Logger == nil {
		e.Logger = slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	args = withDefaultCommand(runtime.GOOS, args)
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args[0] = "version"
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
			err := c.run(ctx, &e, args[1:])
			return report(e.Stderr, err)
		}
	}
	fmt.Fprintf(e.Stderr, "agent : commande inconnue %q\n\n", args[0])
	usage(e.Stderr)
	return ExitUsage
}

// report prints err on one line (or one line per invalid record) in
// French, and returns its exit code from apperr's table.
func report(w io.Writer, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var le jsonl.Errors
	if errors.As(err, &le) {
		const most = 50
		for i, l := range le {
			if i == most {
				fmt.Fprintf(w, "… et %d autre(s) ligne(s) en erreur\n", len(le)-most)
				break
			}
			fmt.Fprintln(w, l.Error())
		}
		fmt.Fprintf(w, "agent : %d ligne(s) invalide(s) ; rien n'a été importé\n", len(le))
		return apperr.ExitCode(err)
	}
	fmt.Fprintf(w, "agent : %s\n", message(err))
	return apperr.ExitCode(err)
}

// message says err in the agent's words, in French only: the stores'
// errors are in English, for logs; the mediator reads French.
func message(err error) string {
	if m, ok := backupMessage(err); ok {
		return m
	}
	switch {
	case errors.Is(err, store.ErrWrongSecret):
		return "phrase de passe ou code de secours incorrect"
	case errors.Is(err, store.ErrExists):
		return fmt.Sprintf("un magasin existe déjà dans %s, il n'est pas écrasé", subject(err, store.ErrExists))
	case errors.Is(err, store.ErrNoStore):
		return fmt.Sprintf("aucun magasin dans %s ; lancez d'abord « agent init »", subject(err, store.ErrNoStore))
	case errors.Is(err, sqlitex.ErrTooNew):
		return "ce magasin a été écrit par une version plus récente de l'agent ; installez-la"
	case errors.Is(err, store.ErrNotFound):
		s := strings.Fields(subject(err, store.ErrNotFound))
		if len(s) == 0 {
			return "introuvable"
		}
		return "introuvable : " + s[len(s)-1]
	}
	return err.Error()
}

// subject returns what err wraps sentinel about: "DIR" of "DIR: no store
// in this directory".
func subject(err, sentinel error) string {
	return strings.TrimSuffix(strings.TrimSuffix(err.Error(), sentinel.Error()), ": ")
}

// flags returns a flag set for a subcommand with the common options.
type common struct {
	data     string
	passFile string
}

func newFlags(e *Env, name, args string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages are English: parse says them in
	// French, once; the usage is ours.
	fs.SetOutput(io.Discard)
	def := e.Getenv("NUMERIBUS_DATA")
	if def == "" {
		def = defaultDataDir(runtime.GOOS, os.UserConfigDir)
	}
	fs.StringVar(&c.data, "data", def, "dossier des données de l'agent (ou NUMERIBUS_DATA)")
	fs.StringVar(&c.passFile, "passphrase-file", "", "fichier dont la première ligne est la phrase de passe")
	fs.Usage = func() {
		fmt.Fprintf(e.Stderr, "Usage : agent %s %s\n\nOptions :\n", name, args)
		printOptions(e.Stderr, fs)
	}
	return fs
}

// printOptions lists the options as the usage line writes them, with two
// dashes, in French.
func printOptions(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + frenchValueName(name)
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, help)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (par défaut : %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func frenchValueName(n string) string {
	switch n {
	case "string", "value":
		return "TEXTE"
	case "int", "uint", "int64", "uint64":
		return "NOMBRE"
	case "duration":
		return "DURÉE"
	case "float":
		return "NOMBRE"
	}
	return strings.ToUpper(n)
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s (« agent %s --help » liste les options)", frenchFlagError(err), fs.Name())
	}
	return nil
}

// frenchFlagError says an error of the flag package in French.
func frenchFlagError(err error) string {
	msg := err.Error()
	var name, value string
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined: "):
		return "option inconnue : -" + strings.TrimPrefix(msg, "flag provided but not defined: ")
	case strings.HasPrefix(msg, "flag needs an argument: "):
		return "l'option -" + strings.TrimPrefix(msg, "flag needs an argument: ") + " attend une valeur"
	case strings.HasPrefix(msg, "invalid value "), strings.HasPrefix(msg, "invalid boolean value "):
		// invalid value "abc" for flag -n: parse error
		if _, err := fmt.Sscanf(msg[strings.Index(msg, "value ")+len("value "):], "%q for flag %s", &value, &name); err == nil {
			return fmt.Sprintf("valeur invalide %q pour l'option -%s", value, strings.TrimSuffix(name, ":"))
		}
	}
	return "option invalide : " + msg
}

func (c *common) storeOpts(e *Env) store.Options {
	return store.Options{Logger: e.Logger, KDF: e.KDF}
}

// openUnlocked opens the store and unlocks it with the secret found the
// usual ways.
func (c *common) openUnlocked(ctx context.Context, e *Env) (*store.Store, error) {
	s, err := store.Open(ctx, c.data, c.storeOpts(e))
	if err != nil {
		return nil, err
	}
	secret, err := c.secret(e, "Phrase de passe (ou code de secours) : ", false)
	if err != nil {
		s.Close()
		return nil, err
	}
	defer clear(secret)
	if len(bytes.TrimSpace(secret)) == 0 {
		s.Close()
		return nil, errEmptySecret
	}
	if err := s.Unlock(ctx, secret); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func runVersion(_ context.Context, e *Env, _ []string) error {
	fmt.Fprintf(e.Stdout, "agent %s\n", Version)
	return nil
}

// sortedKinds returns the kinds of m in the order of domain.Kinds.
func sortedKinds(m map[domain.Kind]*store.KindCount) []domain.Kind {
	var ks []domain.Kind
	for _, k := range domain.Kinds {
		if _, ok := m[k]; ok {
			ks = append(ks, k)
		}
	}
	return ks
}

func today() string { return time.Now().Format(domain.DateLayout) }

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f Gio", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f Mio", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f Kio", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d o", n)
}
