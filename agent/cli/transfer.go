package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"numeribus/agent/store"
	"numeribus/agent/transfer"
	"numeribus/internal/bundle"
)

// The transfer by USB stick (docs/CLI.md, « Transfert par clé USB »): a
// vehicle out of coverage for weeks carries its work to the hub on a
// stick, and brings back the hub's receipt and the team's news.
var transferCommands = []command{
	{"export", "--data DIR --out FICHIER [--from N] [--push-only]", "écrit les modifications en attente dans un paquet chiffré pour le hub (clé USB)", runExport},
	{"import-receipt", "--data DIR FICHIER", "prend le reçu du hub : les modifications qu'il a reçues sont marquées envoyées", runImportReceipt},
	{"import-bundle", "--data DIR FICHIER", "applique le paquet des modifications de l'équipe écrit par le hub", runImportBundle},
}

func runExport(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "export", "--data DIR --out FICHIER [--from N] [--push-only]", &c)
	out := fs.String("out", "", "le `FICHIER` du paquet à écrire (sur la clé USB)")
	from := fs.String("from", "", "exporter les modifications après le numéro `N` (par défaut : celles que le hub n'a pas confirmées)")
	pushOnly := fs.Bool("push-only", false, "sans phrase de passe : les modifications scellées pour le hub à l'enregistrement, signées par la clé d'envoi")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return usagef("donnez le fichier à écrire : agent export --out FICHIER")
	}
	var after *uint64
	if *from != "" {
		v, err := strconv.ParseUint(*from, 10, 64)
		if err != nil {
			return usagef("--from attend un numéro de modification, pas %q", *from)
		}
		after = &v
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
	var res transfer.Exported
	size, err := writeAtomically(*out, func(w *bufio.Writer) error {
		var err error
		res, err = transfer.Export(ctx, s, after, w, time.Now())
		return err
	})
	if err != nil {
		return syncErr(err)
	}
	by := map[bundle.Signer]string{bundle.SignerDevice: "la clé de ce poste", bundle.SignerPush: "la clé d'envoi (agent verrouillé)"}[res.Signer]
	if res.Changes == 0 {
		fmt.Fprintf(e.Stdout, "Aucune modification en attente. Paquet écrit dans %s (%s), signé par %s : il donne au hub la position de réception de ce poste.\n",
			*out, frenchBytes(size), by)
	} else {
		fmt.Fprintf(e.Stdout, "Paquet écrit dans %s : %d modification(s) (n° %d à %d), %s, chiffré pour le hub et signé par %s.\n",
			*out, res.Changes, res.From+1, res.To, frenchBytes(size), by)
	}
	if res.Resent > 0 {
		fmt.Fprintf(e.Stdout, "%d fiche(s) refusée(s) faute de consentement reçu par le hub y sont de nouveau, après le consentement.\n", res.Resent)
	}
	if res.Waiting > 0 {
		fmt.Fprintf(e.Stderr, "Attention : %d modification(s) écrite(s) avant l'inscription attendent le déverrouillage : relancez sans --push-only.\n", res.Waiting)
	}
	fmt.Fprintf(e.Stdout, "Au hub : « hub import %s » ; puis, sur ce poste : « agent import-receipt REÇU ».\n", filepath.Base(*out))
	return nil
}

func runImportReceipt(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "import-receipt", "--data DIR FICHIER", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("donnez le reçu du hub : agent import-receipt FICHIER")
	}
	// A receipt needs no passphrase: it marks changes sent, as a push
	// of a locked agent does.
	s, err := store.Open(ctx, c.data, c.storeOpts(e))
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return usagef("lecture du reçu : %v", err)
	}
	defer f.Close()
	res, err := transfer.ImportReceipt(ctx, s, f, time.Now())
	if err != nil {
		return syncErr(err)
	}
	if res.Again {
		fmt.Fprintf(e.Stdout, "Ce reçu avait déjà été importé : rien de nouveau (modifications envoyées jusqu'au n° %d).\n", res.Acked)
		return nil
	}
	fmt.Fprintf(e.Stdout, "Reçu importé : le hub a appliqué %d modification(s) et tient ce poste jusqu'au n° %d ; modifications envoyées jusqu'au n° %d.\n",
		res.Applied, res.HWM, res.Acked)
	if len(res.Rejected) > 0 {
		return printRejected(ctx, e, s)
	}
	return nil
}

func runImportBundle(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "import-bundle", "--data DIR FICHIER", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("donnez le paquet écrit par le hub : agent import-bundle FICHIER")
	}
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return usagef("lecture du paquet : %v", err)
	}
	defer f.Close()
	res, err := transfer.ImportBundle(ctx, s, f)
	if err != nil {
		return syncErr(err)
	}
	if res.Already {
		fmt.Fprintf(e.Stdout, "Ce paquet ne contient rien de nouveau pour ce poste (déjà reçu) : position de réception n° %d.\n", res.Cursor)
	} else {
		fmt.Fprintf(e.Stdout, "Paquet de l'équipe importé : %d modification(s) (journal du hub, jusqu'au n° %d) ; position de réception : n° %d.\n",
			res.Changes, res.To, res.Cursor)
	}
	if res.Skipped > 0 {
		fmt.Fprintf(e.Stderr, "Attention : %d modification(s) reçue(s) illisible(s) ou datée(s) trop loin dans l'avenir, ignorée(s) (voir le journal).\n", res.Skipped)
	}
	return nil
}

// writeAtomically writes path through fill, by a temporary file beside
// it renamed over it at the end: an interrupted export (a stick pulled
// out) leaves no half bundle under the name. It returns the size.
func writeAtomically(path string, fill func(*bufio.Writer) error) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, usagef("écriture de %s : %v", path, err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	var size int64
	if st, serr := f.Stat(); err == nil && serr == nil {
		size = st.Size()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, err
	}
	return size, nil
}

// frenchBytes is humanBytes with a decimal comma: « 217,5 Kio ».
func frenchBytes(n int64) string { return strings.Replace(humanBytes(n), ".", ",", 1) }
