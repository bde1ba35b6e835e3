package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"numeribus/internal/access"
)

// runAccess writes what this laptop holds about one person, for their
// right of access (RGPD, article 15): a document in French to print or
// hand over, HTML unless FILE ends in .txt.
func runAccess(ctx context.Context, e *Env, args []string) error {
	var c common
	fs := newFlags(e, "access", "--data DIR --person ID --out FICHIER[.html|.txt]", &c)
	person := fs.String("person", "", "identifiant du bénéficiaire (celui de sa page)")
	out := fs.String("out", "", "fichier à écrire : HTML, ou texte s'il finit par .txt ; jamais dans le dossier des données")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := parseID("person", *person)
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out est obligatoire")
	}
	if err := outsideData(*out, c.data); err != nil {
		return err
	}
	s, err := c.openUnlocked(ctx, e)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := s.Dossier(ctx, id, time.Now())
	if err != nil {
		return err
	}
	if err := writeDossier(*out, d); err != nil {
		return err
	}
	n := len(d.Consents) + len(d.Assessments) + len(d.Activities)
	if d.Beneficiary != nil {
		n++
	}
	fmt.Fprintf(e.Stdout, "%s écrit : %d enregistrement(s) sur la personne. Il contient ses données personnelles : remettez-le-lui, puis supprimez-le.\n", *out, n)
	return nil
}

// outsideData refuses a file inside the data directory, which holds
// nothing in clear.
func outsideData(file, data string) error {
	f, err1 := filepath.Abs(file)
	d, err2 := filepath.Abs(data)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if rel, err := filepath.Rel(d, f); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usagef("--out %s est dans le dossier des données %s, qui ne garde rien en clair : choisissez un autre dossier", file, data)
	}
	return nil
}

// writeDossier writes d to file, readable by its owner only.
func writeDossier(file string, d *access.Dossier) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("écriture du document : %w", err)
	}
	if strings.HasSuffix(strings.ToLower(file), ".txt") {
		err = access.WriteText(f, d)
	} else {
		err = access.WriteHTML(f, d)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("écriture du document : %w", err)
	}
	return nil
}
