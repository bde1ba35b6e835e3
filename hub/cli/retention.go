package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/retain"
	"numeribus/internal/access"
	"numeribus/internal/ident"
	"numeribus/internal/owneronly"
	"numeribus/internal/retention"
)

// runRetention shows and sets the retention periods, and purges now.
func runRetention(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 {
		return usagef("retention needs a subcommand: show, set, purge")
	}
	switch args[0] {
	case "show":
		return runRetentionShow(ctx, e, args[1:])
	case "set":
		return runRetentionSet(ctx, e, args[1:])
	case "purge":
		return runRetentionPurge(ctx, e, args[1:])
	}
	return usagef("unknown retention subcommand %q: show, set, purge", args[0])
}

func runRetentionShow(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "retention show", "--data DIR [--json]", &data)
	asJSON := fs.Bool("json", false, "the policy as the agents receive it")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.RetentionPolicy(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.Stdout).Encode(p)
	}
	printPolicy(e.Stdout, p)
	return nil
}

// printPolicy writes the periods as a table, in French.
func printPolicy(w io.Writer, p retention.Policy) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tDONNÉES\tCONSERVÉES")
	for _, r := range retention.Rules {
		how := p.Describe(r.Kind)
		if !p.IsSet(r.Kind) {
			how += " (par défaut)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Kind, r.Label, how)
	}
	tw.Flush()
}

func runRetentionSet(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "retention set", "--data DIR --kind "+strings.ReplaceAll(retention.KindNames(), ", ", "|")+" (--months N | --default)", &data)
	kind := fs.String("kind", "", "the kind of data: "+retention.KindNames())
	months := fs.String("months", "", "how long it is kept: a number of months (24), or of years (\"2 ans\")")
	def := fs.Bool("default", false, "go back to the default period")
	if err := parse(fs, args); err != nil {
		return err
	}
	r, ok := retention.RuleOf(retention.Kind(*kind))
	if !ok {
		return usagef("--kind %q: one of %s", *kind, retention.KindNames())
	}
	if (*months == "") == !*def {
		return usagef("give --months N or --default")
	}
	n := r.Default
	if !*def {
		var err error
		if n, err = retention.ParseMonths(*months); err != nil {
			return err
		}
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.RetentionPolicy(ctx)
	if err != nil {
		return err
	}
	before := p.Describe(r.Kind)
	q, err := p.With(r.Kind, n)
	if err != nil {
		return err
	}
	if *def {
		q = retention.Default()
		for _, o := range retention.Rules {
			if o.Kind != r.Kind && p.IsSet(o.Kind) {
				q, _ = q.With(o.Kind, p.Months(o.Kind))
			}
		}
	}
	if err := st.SetRetentionPolicy(ctx, q); err != nil {
		return err
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: time.Now(), Email: cliActor(), Action: accounts.ActionRetentionSet,
		What: fmt.Sprintf("%s: %d mois (avant : %s)", r.Kind, q.Months(r.Kind), before)}); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s : %s. The agents receive it at their next sync; the next purge applies it (hub retention purge to run one now).\n",
		r.Label, q.Describe(r.Kind))
	return nil
}

func runRetentionPurge(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "retention purge", "--data DIR [--json]", &data)
	asJSON := fs.Bool("json", false, "JSON output")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.PurgeExpired(ctx, time.Now())
	if err != nil {
		return err
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: time.Now(), Email: cliActor(), Action: accounts.ActionPurge,
		What: fmt.Sprintf("%d identités, %d diagnostics, %d notes, %d enregistrements, %d entrées du journal", p.People, p.Assessments, p.Notes, p.Records, p.Audit)}); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.Stdout).Encode(p)
	}
	fmt.Fprintf(e.Stdout, "Purge: %d identities, %d assessments and %d activities' notes erased (%d records), %d audit entries deleted. The team's agents erase them too at their next sync.\n",
		p.People, p.Assessments, p.Notes, p.Records, p.Audit)
	return nil
}

// runAccess writes what the hub holds about one person, for their right
// of access (RGPD, article 15): a document in French, HTML unless FILE
// ends in .txt.
func runAccess(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "access", "--data DIR --person ID --out FICHIER[.html|.txt]", &data)
	person := fs.String("person", "", "l'identifiant du bénéficiaire (tel que l'agent l'affiche sur la page de la personne)")
	out := fs.String("out", "", "le fichier à écrire : HTML, ou texte s'il finit par .txt ; jamais dans le dossier des données")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := ident.Parse(*person)
	if err != nil || *person == "" {
		return usagef("--person : un identifiant de bénéficiaire est requis (%v)", err)
	}
	if *out == "" {
		return usagef("--out FICHIER est requis")
	}
	if in, err := owneronly.Within(*out, data); err != nil || in {
		return usagef("--out %s est dans le dossier des données %s : écrivez les données de la personne ailleurs", *out, data)
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := st.Dossier(ctx, id, time.Now())
	if err != nil {
		return err
	}
	if err := owneronly.WriteFile(*out, func(w io.Writer) error { return access.Write(w, d, *out) }); err != nil {
		return fmt.Errorf("écriture du document : %w", err)
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: time.Now(), Email: cliActor(), Action: accounts.ActionAccessExport,
		What: "personne " + id.String()}); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s écrit : %d enregistrement(s) sur la personne. Il contient ses données personnelles : remettez-le-lui, puis supprimez-le.\n", *out, d.Records())
	return nil
}

// cliActor names who ran a command, for the audit log: "cli" and the
// account of the machine.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// serveRetention serves the retention policy to the agents (retain.Path)
// and purges the hub's copy every day while it runs.
func serveRetention(ctx context.Context, mux *http.ServeMux, st hubStore, log *slog.Logger) {
	mux.Handle(retain.Path, retain.Handler(st, log))
	go retain.Loop(ctx, st, log, retain.PurgeEvery, time.Now)
}
