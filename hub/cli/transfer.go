package cli

import (
	"bufio"
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"numeribus/hub/certs"
	"numeribus/hub/transfer"
	"numeribus/internal/apperr"
)

// The transfer by USB stick (docs/CLI.md, « Transfert par clé USB »): a
// laptop out of coverage brings its bundle; the hub applies it and
// writes a receipt, and writes the team's changes for it. Messages are in
// French: the coordinator at the hub hands the stick back to a mediator.
var transferCommands = []command{
	{"import", "applique le paquet d'un poste (clé USB) comme une synchronisation, et écrit son reçu", runImport},
	{"export", "écrit dans un paquet (clé USB) les modifications de l'équipe pour un poste", runExport},
}

// transferHub opens what an import or an export needs: the store, the
// envelope key, the TLS certificate and its key.
func transferHub(ctx context.Context, e *Env, data, certFile, keyFile string) (*transfer.Hub, func(), error) {
	pair, err := certs.Get(data, certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := pair.Cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, frErr(apperr.State, nil, "la clé TLS du hub ne sait pas signer (%T) : donnez --cert et --key", pair.Cert.PrivateKey)
	}
	hk, err := certs.LoadOrCreateEnvelopeKey(data)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return nil, nil, err
	}
	h := &transfer.Hub{Store: st, Envelope: hk, Cert: pair.Cert.Certificate[0], Signer: signer, Dir: data, Log: e.Logger}
	return h, func() { st.Close() }, nil
}

func parseOne(fs *flag.FlagSet, args []string, what string) (string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", usagef("%s (« hub %s --help » liste les options)", frenchFlagError(err), fs.Name())
	}
	if fs.NArg() != 1 {
		return "", usagef("donnez %s", what)
	}
	return fs.Arg(0), nil
}

func runImport(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "import", "--data DOSSIER [--receipt FICHIER] PAQUET", &data)
	receipt := fs.String("receipt", "", "où écrire le reçu (par défaut PAQUET.recu, à côté)")
	certFile := fs.String("cert", "", "certificat TLS (PEM) de « hub serve », s'il n'est pas le sien ; sa clé signe le reçu")
	keyFile := fs.String("key", "", "clé TLS (PEM) de --cert")
	path, err := parseOne(fs, args, "le paquet à importer : hub import --data DIR FICHIER")
	if err != nil {
		return err
	}
	if *receipt == "" {
		*receipt = path + ".recu"
	}
	f, err := os.Open(path)
	if err != nil {
		return frErr(apperr.Usage, err, "le paquet %s ne s'ouvre pas (fichier absent ou illisible)", path)
	}
	defer f.Close()
	h, done, err := transferHub(ctx, e, data, *certFile, *keyFile)
	if err != nil {
		return err
	}
	defer done()
	res, err := h.Import(ctx, f)
	if err != nil {
		return err
	}
	if err := writeAtomically(*receipt, func(w io.Writer) error { return h.WriteReceipt(w, res.Receipt) }); err != nil {
		return frErr(apperr.Internal, err, "le reçu %s n'a pas pu être écrit (le paquet est importé : importez-le de nouveau pour refaire le reçu, rien ne sera doublé)", *receipt)
	}
	d := res.Device
	if res.Changes == 0 {
		fmt.Fprintf(e.Stdout, "Paquet de %s importé : aucune modification ; le hub tient cet appareil jusqu'au n° %d.\n", d.Name, d.HWM)
	} else {
		held := ""
		if n := res.Changes - res.Applied - len(res.Rejected); n > 0 {
			held = fmt.Sprintf(", %d déjà reçue(s)", n)
		}
		fmt.Fprintf(e.Stdout, "Paquet de %s importé : %d modification(s) (n° %d à %d), %d appliquée(s), %d refusée(s)%s ; le hub tient cet appareil jusqu'au n° %d.\n",
			d.Name, res.Changes, res.From+1, res.To, res.Applied, len(res.Rejected), held, d.HWM)
	}
	for i, r := range res.Rejected {
		if i == 10 {
			fmt.Fprintf(e.Stdout, "  … et %d autre(s)\n", len(res.Rejected)-i)
			break
		}
		fmt.Fprintf(e.Stdout, "  refusée : n° %d (%s) %s : %s\n", r.Seq, r.Code, r.Kind, r.Reason)
	}
	fmt.Fprintf(e.Stdout, "Reçu écrit dans %s : rapportez-le au poste (« agent import-receipt %s »).\n", *receipt, filepath.Base(*receipt))
	return nil
}

func runExport(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "export", "--data DOSSIER --device NOM --out FICHIER [--after N | --all]", &data)
	name := fs.String("device", "", "le poste auquel le paquet est destiné")
	out := fs.String("out", "", "le paquet à écrire (sur la clé USB)")
	after := fs.String("after", "", "exporte les modifications après ce numéro du journal du hub (par défaut la position que le poste a donnée dans son dernier paquet)")
	all := fs.Bool("all", false, "exporte depuis le début du journal")
	certFile := fs.String("cert", "", "certificat TLS (PEM) de « hub serve », s'il n'est pas le sien ; sa clé signe le paquet")
	keyFile := fs.String("key", "", "clé TLS (PEM) de --cert")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" || *out == "" {
		return usagef("--device et --out sont nécessaires")
	}
	if *all && *after != "" {
		return usagef("--after ou --all, pas les deux")
	}
	var from *uint64
	if *all {
		from = new(uint64)
	} else if *after != "" {
		v, err := strconv.ParseUint(*after, 10, 64)
		if err != nil {
			return usagef("--after attend un numéro du journal, pas « %s »", *after)
		}
		from = &v
	}
	h, done, err := transferHub(ctx, e, data, *certFile, *keyFile)
	if err != nil {
		return err
	}
	defer done()
	var res transfer.Exported
	err = writeAtomically(*out, func(w io.Writer) error {
		var err error
		res, err = h.Export(ctx, *name, from, w)
		return err
	})
	if err != nil {
		return err
	}
	switch {
	case res.Reported:
		fmt.Fprintf(e.Stdout, "À partir de la position de réception que %s a donnée dans son dernier paquet (n° %d).\n", *name, res.From)
	case res.Reset:
		fmt.Fprintf(e.Stdout, "La position de réception donnée par %s n'est plus dans le journal (hub restauré ?) : export depuis le début.\n", *name)
	}
	span := fmt.Sprintf("après le n° %d jusqu'au n° %d", res.From, res.To)
	if res.From == 0 {
		span = fmt.Sprintf("depuis le début jusqu'au n° %d", res.To)
	}
	fmt.Fprintf(e.Stdout, "Paquet pour %s écrit dans %s : %d modification(s) de l'équipe (journal du hub, %s), chiffré pour cet appareil et signé par le hub.\n",
		*name, *out, res.Changes, span)
	fmt.Fprintf(e.Stdout, "Sur le poste : « agent import-bundle %s ».\n", filepath.Base(*out))
	return nil
}

// writeAtomically writes path through fill, by a temporary file beside
// it renamed over it at the end: a failed import or export leaves no half
// file under the name.
func writeAtomically(path string, fill func(io.Writer) error) error {
	t, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(t, 256<<10)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.Name(), path)
	}
	if err != nil {
		os.Remove(t.Name())
	}
	return err
}
