package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"numeribus/internal/access"
	"numeribus/internal/owneronly"
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
	if in, err := owneronly.Within(*out, c.data); err != nil || in {
		return usagef("--out %s est dans le dossier des données %s, qui ne garde rien en clair : choisissez un autre dossier", *out, c.data)
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
	if err := owneronly.WriteFile(*out, func(w io.Writer) error { return access.Write(w, d, *out) }); err != nil {
		return fmt.Errorf("écriture du document : %w", err)
	}
	fmt.Fprintf(e.Stdout, "%s écrit : %d enregistrement(s) sur la personne. Il contient ses données personnelles : remettez-le-lui, puis supprimez-le.\n", *out, d.Records())
	return nil
}
