package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"numeribus/agent/importer"
	"numeribus/agent/store"
	"numeribus/agent/update"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
	"numeribus/internal/jsonl"
	"numeribus/internal/territoire"
)

func runInit(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "init", "--data DIR [--passphrase-file FICHIER]", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("argument en trop : %q", fs.Arg(0))
	}
	pass, err := c.secret(e, "Nouvelle phrase de passe : ", true)
	if err != nil {
		return err
	}
	defer clear(pass)
	if err := checkNew(pass); err != nil {
		return err
	}
	s, code, err := store.Create(ctx, c.data, pass, c.storeOpts(e))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(e.Stdout, "Magasin créé dans %s (appareil %s).\n\n", c.data, s.Device())
	fmt.Fprintf(e.Stdout, "CODE DE SECOURS — notez-le sur papier et rangez-le à part ; il ne sera plus affiché :\n\n    %s\n\n", code)
	fmt.Fprintf(e.Stdout, "Il remplace la phrase de passe oubliée (« agent passphrase »).\n")
	return nil
}

func runImport(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "import", "--data DIR [FICHIER|-]", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usagef("un seul fichier à la fois")
	}
	var in io.Reader = e.Stdin
	name := "-"
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		name = fs.Arg(0)
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("ouverture du fichier à importer : %w", err)
		}
		defer f.Close()
		in = f
	}
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	// Decoded and written as it is read, in one transaction: a bad line
	// anywhere means nothing is written, and every bad line is reported.
	rep, err := importer.Import(ctx, s, bufio.NewReaderSize(in, 1<<16))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s : %d lu(s), %d créé(s), %d mis à jour, %d inchangé(s)\n",
		name, rep.Read, rep.Created, rep.Updated, rep.Unchanged)
	return nil
}

func runList(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "list", "--data DIR [--kind K] [--json] [--deleted]", &c)
	kind := fs.String("kind", "", "type d'enregistrement : "+kindNames())
	asJSON := fs.Bool("json", false, "JSON Lines, dans la forme que lit « agent import »")
	deleted := fs.Bool("deleted", false, "inclure les enregistrements supprimés")
	if err := parse(fs, args); err != nil {
		return err
	}
	k := domain.Kind(*kind)
	if k != "" && !k.Valid() {
		return usagef("--kind %q inconnu (un de %s)", *kind, kindNames())
	}
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	out := bufio.NewWriter(e.Stdout)
	defer out.Flush()
	if *asJSON {
		return listed(e, s.List(ctx, k, *deleted, func(it store.Item) error {
			line, err := jsonl.EncodeLine(it.Record)
			if err != nil {
				return err
			}
			out.Write(line)
			return out.WriteByte('\n')
		}))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "TYPE\tIDENTIFIANT\tDATE\tRÉSUMÉ")
	return listed(e, s.List(ctx, k, *deleted, func(it store.Item) error {
		date, sum := summary(it.Record)
		if it.Deleted {
			sum = "[supprimé] " + sum
		}
		if it.Erased {
			sum = "[effacé] " + sum
		}
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Record.Kind().Label(), it.Record.RecordID(), date, sum)
		return err
	}))
}

// listed reports records List could not open, after the others were
// listed, as a warning: they are named, and the command succeeds.
func listed(e *Env, err error) error {
	if ue, ok := errors.AsType[*store.UnreadableError](err); ok {
		fmt.Fprintf(e.Stderr, "agent : attention : %v\n", ue)
		return nil
	}
	return err
}

func communeName(code string) string {
	if c, ok := territoire.Default().Commune(code); ok {
		return c.Nom
	}
	return code
}

// summary returns a short French description of a record for the table.
func summary(r domain.Record) (date, text string) {
	switch v := r.(type) {
	case *domain.Activity:
		t := domain.TypesActivite.Label(v.Type)
		if v.Type == "collectif" && v.TitreAtelier != "" {
			t += " « " + v.TitreAtelier + " »"
		}
		return v.Date, fmt.Sprintf("%s, %d min, %s", t, v.Duree, communeName(v.Commune))
	case *domain.Beneficiary:
		name := strings.TrimSpace(v.Prenom + " " + v.Nom)
		if name == "" {
			name = "anonyme"
		}
		return v.PremierAccompagnement, fmt.Sprintf("%s, %s, %s", name, domain.TranchesAge.Label(v.TrancheAge), communeName(v.Commune))
	case *domain.Consent:
		return v.Date, fmt.Sprintf("%s, finalités actives : %s", domain.ModesConsentement.Label(v.Mode), strings.Join(v.Active(), ", "))
	case *domain.Assessment:
		return v.Date, fmt.Sprintf("autonomie %s, besoins : %s", domain.Autonomies.Label(v.AutonomieGlobale), strings.Join(v.Besoins, ", "))
	case *domain.TourStop:
		return v.Date, fmt.Sprintf("%s, %s, %s %s-%s", v.Vehicule, communeName(v.Commune), v.Lieu, v.HeureDebut, v.HeureFin)
	}
	return "", ""
}

func orNever(s string) string {
	if s == "" {
		return "jamais"
	}
	return s
}

func kindNames() string {
	var ks []string
	for _, k := range domain.Kinds {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}

func runSeed(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "seed", "--data DIR --n N [--seed S]", &c)
	n := fs.Int("n", 100, "nombre d'activités")
	seed := fs.Uint64("seed", 1, "graine : même graine, mêmes données")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n <= 0 || *n > 10_000_000 {
		return usagef("--n doit être entre 1 et 10000000")
	}
	set := fixture.Generate(fixture.Options{N: *n, Seed: *seed})
	recs := set.Records()
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	// Said before the write, which may wait for another process's (agent
	// serve's) write lock: a large seed shows it has started, and a test
	// knows this process has unlocked the store.
	fmt.Fprintf(e.Stderr, "Magasin déverrouillé : écriture de %d enregistrement(s)…\n", len(recs))
	res, err := s.Save(ctx, recs...)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%d activités, %d bénéficiaires, %d consentements, %d diagnostics, %d arrêts : %d créé(s), %d inchangé(s)\n",
		len(set.Activities), len(set.Beneficiaries), len(set.Consents), len(set.Assessments), len(set.TourStops),
		res.Created, res.Unchanged)
	return nil
}

func parseID(flagName, v string) (ident.ID, error) {
	if v == "" {
		return ident.Nil, usagef("--%s est obligatoire", flagName)
	}
	id, err := ident.Parse(v)
	if err != nil {
		return ident.Nil, usagef("--%s : %v", flagName, err)
	}
	return id, nil
}

func runErase(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "erase", "--data DIR --beneficiary ID", &c)
	bid := fs.String("beneficiary", "", "identifiant du bénéficiaire à effacer")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := parseID("beneficiary", *bid)
	if err != nil {
		return err
	}
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.EraseBeneficiary(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Bénéficiaire %s effacé : %d enregistrement(s) dépouillé(s) de leurs données personnelles ; les statistiques restent.\n", id, res.Updated)
	return nil
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func runConsent(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 || args[0] != "withdraw" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(e.Stderr, "Usage : agent consent withdraw --data DIR --consent ID [--finalite F]… [--date AAAA-MM-JJ]")
			return nil
		}
		return usagef("usage : agent consent withdraw --data DIR --consent ID [--finalite F]…")
	}
	var c common
	fs := newFlags(e, "consent withdraw", "--data DIR --consent ID [--finalite F]… [--date AAAA-MM-JJ]", &c)
	cid := fs.String("consent", "", "identifiant du consentement")
	var fins multi
	fs.Var(&fins, "finalite", "finalité retirée, répétable ("+domain.Finalites.String()+") ; toutes si absente")
	date := fs.String("date", today(), "date du retrait")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	id, err := parseID("consent", *cid)
	if err != nil {
		return err
	}
	if _, ok := domain.ParseDate(*date); !ok {
		return usagef("--date %q invalide (AAAA-MM-JJ)", *date)
	}
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	eff, err := s.WithdrawConsent(ctx, id, fins, *date)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Consentement %s retiré.", id)
	if eff.EraseIdentity {
		fmt.Fprint(e.Stdout, " Identité du bénéficiaire effacée.")
	}
	if eff.EraseAssessments {
		fmt.Fprint(e.Stdout, " Diagnostics effacés.")
	}
	fmt.Fprintln(e.Stdout)
	return nil
}

func runPassphrase(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "passphrase", "--data DIR [--passphrase-file ACTUELLE] [--new-passphrase-file NOUVELLE]", &c)
	newFile := fs.String("new-passphrase-file", "", "fichier de la nouvelle phrase de passe (sinon saisie masquée, deux fois)")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	var np []byte
	if *newFile != "" {
		np, err = readSecretFile(*newFile)
	} else {
		np, err = prompt(e, "Nouvelle phrase de passe : ", true)
	}
	if err != nil {
		return err
	}
	defer clear(np)
	if err := checkNew(np); err != nil {
		return err
	}
	if err := s.SetPassphrase(ctx, np); err != nil {
		return err
	}
	fmt.Fprintln(e.Stdout, "Phrase de passe changée. Le code de secours reste valable.")
	return nil
}

func runStatus(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "status", "--data DIR [--json]", &c)
	asJSON := fs.Bool("json", false, "sortie JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := store.Open(ctx, c.data, c.storeOpts(e))
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	ss, err := s.SyncState(ctx)
	if err != nil {
		return err
	}
	type hubOut struct {
		URL        string `json:"url"`
		DeviceName string `json:"device_name"`
		Team       string `json:"team"`
		EnrolledAt string `json:"enrolled_at"`
	}
	out := struct {
		store.Status
		Hub      *hubOut          `json:"hub,omitempty"`
		Sync     store.SyncState  `json:"sync"`
		Rejected []store.Rejected `json:"rejected,omitempty"`
		Agent    update.Status    `json:"agent"` // version and updates (update.go)
	}{Status: st, Sync: ss}
	if out.Agent, err = updateStatus(ctx, &c, s); err != nil {
		return err
	}
	if out.Rejected, err = s.RejectedChanges(ctx); err != nil {
		return err
	}
	if h, err := s.Hub(ctx); err == nil {
		out.Hub = &hubOut{h.URL, h.DeviceName, h.Team, h.EnrolledAt}
	} else if !errors.Is(err, store.ErrNotEnrolled) {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	printUpdateStatus(tw, out.Agent)
	fmt.Fprintf(tw, "Appareil\t%s\n", st.Device)
	fmt.Fprintf(tw, "Créé le\t%s\n", st.Created)
	fmt.Fprintf(tw, "Schéma\tversion %d\n", st.SchemaVersion)
	for _, k := range sortedKinds(st.Records) {
		n := st.Records[k]
		fmt.Fprintf(tw, "%s\t%d (supprimés %d, effacés %d)\n", k.Label(), n.Live, n.Deleted, n.Erased)
	}
	fmt.Fprintf(tw, "Modifications en attente\t%d (dernier n° %d, acquitté jusqu'au n° %d)\n", st.Pending, st.LastSeq, st.AckedSeq)
	if st.Rejected > 0 {
		fmt.Fprintf(tw, "Modifications refusées par le hub\t%d (détail ci-dessous)\n", st.Rejected)
	}
	fmt.Fprintf(tw, "Horloge (HLC)\t%s\n", st.HLC)
	fmt.Fprintf(tw, "Taille de la base\t%s\n", humanBytes(st.DBBytes))
	if out.Hub == nil {
		fmt.Fprintf(tw, "Hub\tnon inscrit (agent enroll)\n")
	} else {
		fmt.Fprintf(tw, "Hub\t%s (poste %s, équipe %s)\n", out.Hub.URL, out.Hub.DeviceName, out.Hub.Team)
		fmt.Fprintf(tw, "Dernière synchronisation\t%s\n", orNever(ss.LastSync))
		fmt.Fprintf(tw, "Dernier contact\t%s\n", orNever(ss.LastContact))
		fmt.Fprintf(tw, "Décalage d'horloge mesuré\t%v\n", (time.Duration(ss.ClockOffsetMs) * time.Millisecond).Round(time.Second))
		if ss.LastError != "" {
			fmt.Fprintf(tw, "Dernière erreur\t%s\n", ss.LastError)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Rejected > 0 {
		rs, err := s.RejectedChanges(ctx)
		if err != nil {
			return err
		}
		for _, r := range rs {
			fmt.Fprintf(e.Stdout, "  n° %d, %s %s : %s\n", r.Seq, r.Kind.Label(), r.ID, r.Explain())
		}
	}
	return nil
}
