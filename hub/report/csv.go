package report

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// Exports are what French spreadsheets open without a question: UTF-8 with
// a byte order mark, ';' between fields, dates JJ/MM/AAAA, fields quoted
// when they need it (encoding/csv). They never hold notes nor identifying
// fields: the facts they are written from have none.

// BOM is the UTF-8 byte order mark starting every export.
const BOM = "\ufeff"

func newCSV(w io.Writer) (*safeCSV, *bufio.Writer, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(BOM); err != nil {
		return nil, nil, err
	}
	cw := csv.NewWriter(bw)
	cw.Comma = ';'
	return &safeCSV{cw}, bw, nil
}

// safeCSV is the one CSV writer of the exports: every cell goes through
// Cell, so no text typed on a laptop reaches a coordinator's spreadsheet
// as a formula.
type safeCSV struct{ *csv.Writer }

func (w *safeCSV) Write(rec []string) error {
	for i, c := range rec {
		rec[i] = Cell(c)
	}
	return w.Writer.Write(rec)
}

func (w *safeCSV) WriteAll(recs [][]string) error {
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// Cell neutralises a spreadsheet formula, following OWASP's CSV injection
// guidance: a cell starting with =, +, -, @, a tab or a carriage return is
// prefixed with a single quote, which spreadsheets show as text. A plain
// number ("-12", "-3,5") is no formula and stays as it is, so negative
// figures still add up. Every export format (CSV now, XLSX later) writes
// its text cells through Cell.
func Cell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64); err == nil {
		return s
	}
	return "'" + s
}

// ActivityColumns are the columns of the activity export (shared/DOMAIN.md,
// "Export"), codes and French labels side by side.
var ActivityColumns = []string{
	"id", "date", "type", "type_libelle", "duree", "type_lieu", "type_lieu_libelle",
	"commune", "commune_nom", "departement", "vehicule", "appareil", "equipe", "mediateur",
	"thematiques", "thematiques_libelles", "demarches", "demarches_libelles",
	"materiel", "materiel_libelles", "structure_partenaire", "structure_partenaire_libelle",
	"autonomie", "autonomie_libelle", "oriente", "structure_redirection", "structure_redirection_libelle",
	"niveau", "niveau_libelle", "accompagnements", "participants_suivis", "participants_deja_accompagnes",
	"pass_numerique", "beneficiaire_genre", "beneficiaire_tranche_age", "beneficiaire_statut_social",
	"beneficiaire_commune", "beneficiaire_commune_nom",
}

// WriteActivitiesCSV writes one line per activity of what f asks within
// scope s, in date order. The beneficiary columns describe the person of
// an individual session (empty for workshops, whose participants are
// counted, not listed).
func WriteActivitiesCSV(ctx context.Context, w io.Writer, src Source, f Filter, s Scope, o Options) error {
	q, err := query(f, s, o)
	if err != nil {
		return err
	}
	// The beneficiaries' fields come from their records: collect the
	// activities first (facts are small), then look the people up once.
	type row struct {
		ActivityFact
		ben    ident.ID // the person of an individual session
		suivis int      // a workshop's followed participants
	}
	var acts []row
	bens := map[ident.ID]*BeneficiaryFact{}
	err = src.Activities(ctx, q, func(a *ActivityFact) error {
		r := row{ActivityFact: *a}
		r.Beneficiaires, r.Genres, r.TranchesAge, r.StatutsSociaux = nil, nil, nil, nil
		switch {
		case a.Type == "collectif":
			r.suivis = len(a.Beneficiaires)
		case len(a.Beneficiaires) > 0:
			r.ben = a.Beneficiaires[0]
			bens[r.ben] = nil
		}
		acts = append(acts, r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("export: reading activities: %w", err)
	}
	ids := make([]ident.ID, 0, len(bens))
	for id := range bens {
		ids = append(ids, id)
	}
	err = src.Beneficiaries(ctx, ids, func(b *BeneficiaryFact) error {
		c := *b
		bens[b.ID] = &c
		return nil
	})
	if err != nil {
		return fmt.Errorf("export: reading beneficiaries: %w", err)
	}
	slices.SortFunc(acts, func(a, b row) int {
		if c := cmp.Compare(a.Day, b.Day); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})

	cw, bw, err := newCSV(w)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := cw.Write(ActivityColumns); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	x := territoire.Default()
	rec := make([]string, len(ActivityColumns))
	for i := range acts {
		a := &acts[i]
		communeNom := ""
		if c, ok := x.Commune(a.Commune); ok {
			communeNom = c.Nom
		}
		suivis := ""
		if a.Type == "collectif" {
			suivis = strconv.Itoa(a.suivis)
		}
		var bg, ba, bs, bc, bcn string
		if !a.ben.IsZero() {
			if b := bens[a.ben]; b != nil {
				bg, ba, bs, bc = b.Genre, b.TrancheAge, b.StatutSocial, b.Commune
				if c, ok := x.Commune(b.Commune); ok {
					bcn = c.Nom
				}
			}
		}
		oriente := "non"
		if a.Oriente {
			oriente = "oui"
		}
		deja := ""
		if a.Type == "collectif" {
			deja = strconv.Itoa(a.DejaAccompagne)
		}
		themes, demarches, materiel := Thematiques.CodesOf(a.Thematiques), Demarches.CodesOf(a.Demarches), Materiels.CodesOf(a.Materiel)
		rec = append(rec[:0],
			a.ID.String(), FormatDay(a.Day), a.Type, domain.TypesActivite.Label(a.Type), strconv.Itoa(a.Duree),
			a.TypeLieu, domain.TypesLieu.Label(a.TypeLieu), a.Commune, communeNom, a.Departement,
			a.Vehicule, a.Device, a.Team, a.Mediateur,
			strings.Join(themes, ", "), labels(domain.Thematiques, themes),
			strings.Join(demarches, ", "), labels(domain.Demarches, demarches),
			strings.Join(materiel, ", "), labels(domain.Materiels, materiel),
			a.StructurePartenaire, label(domain.StructuresPartenaires, a.StructurePartenaire),
			a.Autonomie, label(domain.Autonomies, a.Autonomie), oriente,
			a.StructureRedirection, label(domain.StructuresRedirection, a.StructureRedirection),
			a.Niveau, label(domain.Niveaux, a.Niveau), strconv.Itoa(a.Participants), suivis, deja,
			strconv.Itoa(a.PassNumerique), bg, ba, bs, bc, bcn,
		)
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return bw.Flush()
}

func label(l *domain.CodeList, code string) string {
	if code == "" {
		return ""
	}
	return l.Label(code)
}

func labels(l *domain.CodeList, codes []string) string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = l.Label(c)
	}
	return strings.Join(out, ", ")
}

// WriteIndicatorsCSV writes an overview as lines of (section, code,
// label, value, accompagnements), the period and territory first: the
// figures of the dashboard, for a spreadsheet.
func WriteIndicatorsCSV(w io.Writer, ov *Overview) error {
	cw, bw, err := newCSV(w)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	lines := [][]string{{"indicateur", "code", "libelle", "valeur", "accompagnements"}}
	add := func(section, code, label string, v any, acc string) {
		lines = append(lines, []string{section, code, label, fmt.Sprint(v), acc})
	}
	fr := func(iso string) string { d, _ := ParseDay(iso); return FormatDay(d) }
	add("periode", "du", "Du", fr(ov.Filter.From), "")
	add("periode", "au", "Au", fr(ov.Filter.To), "")
	if ov.Filter.Territory != "" {
		add("territoire", ov.Filter.Territory, ov.Filter.TerritoryName, "", "")
	}
	for _, a := range ov.Filter.Areas {
		add("perimetre", a.String(), a.Name(), "", "")
	}
	for _, t := range ov.Filter.Teams {
		add("equipe", t, t, "", "")
	}
	if ov.Filter.Vehicle != "" {
		add("vehicule", ov.Filter.Vehicle, ov.Filter.Vehicle, "", "")
	}
	if ov.Filter.Mediateur != "" {
		add("mediateur", ov.Filter.Mediateur, ov.Filter.Mediateur, "", "")
	}
	headline := func(section string, h Headline) {
		add(section, "accompagnements", "Accompagnements", h.Accompagnements, "")
		add(section, "activites", "Activités", h.Activites, "")
		add(section, "individuels", "Accompagnements individuels", h.Individuels, "")
		add(section, "collectifs", "Ateliers collectifs", h.Collectifs, "")
		add(section, "beneficiaires", "Bénéficiaires distincts", h.Beneficiaires, "")
		add(section, "heures", "Heures", decimal(h.Heures), "")
		add(section, "pass_numerique", "Pass numériques", h.PassNumerique, "")
		add(section, "communes", "Communes", h.Communes, "")
	}
	headline("synthese", ov.Headline)
	add("periode_precedente", "du", "Du", fr(ov.Previous.From), "")
	add("periode_precedente", "au", "Au", fr(ov.Previous.To), "")
	headline("periode_precedente", ov.Previous)
	b := ov.Beneficiaires
	for _, l := range []struct {
		code, label string
		v           int
	}{
		{"distincts", "Bénéficiaires distincts", b.Distincts}, {"nouveaux", "Nouveaux bénéficiaires", b.Nouveaux},
		{"suivis", "Bénéficiaires suivis", b.Suivis}, {"anonymes", "Bénéficiaires anonymes", b.Anonymes},
		{"sans_fiche", "Accompagnements sans fiche bénéficiaire", b.SansFiche},
		{"participants_ateliers", "Participants aux ateliers", b.ParticipantsAteliers},
		{"participants_anonymes", "Participants anonymes", b.ParticipantsAnonymes},
		{"deja_accompagnes", "Participants déjà accompagnés", b.DejaAccompagnes},
		{"personnes", "Personnes accompagnées (au plus)", b.Personnes},
	} {
		add("beneficiaires", l.code, l.label, l.v, "")
	}
	counts := func(section string, cs []Count) {
		for _, c := range cs {
			acc := ""
			if c.Accompagnements > 0 {
				acc = strconv.Itoa(c.Accompagnements)
			}
			add(section, c.Code, c.Label, c.Count, acc)
		}
	}
	counts("type", ov.ParType)
	counts("duree", ov.Durees)
	counts("thematique", ov.Thematiques)
	counts("demarche", ov.Demarches)
	counts("structure_partenaire", ov.Partenaires)
	counts("materiel", ov.Materiels)
	counts("type_lieu", ov.TypesLieu)
	counts("commune", ov.Communes)
	counts("genre", ov.Genres)
	counts("tranche_age", ov.TranchesAge)
	counts("statut_social", ov.StatutsSociaux)
	counts("commune_residence", ov.CommunesResidence)
	counts("autonomie", ov.Autonomie)
	add("orientation", "orientes", "Accompagnements avec orientation", ov.Orientation.Orientes, "")
	add("orientation", "part", "Part des accompagnements individuels orientés", decimal(ov.Orientation.Part), "")
	counts("structure_redirection", ov.Orientation.Structures)
	counts("niveau", ov.Niveaux)
	add("diagnostics", "nombre", "Diagnostics", ov.Diagnostics.Nombre, "")
	add("diagnostics", "beneficiaires", "Personnes diagnostiquées", ov.Diagnostics.Beneficiaires, "")
	for _, d := range ov.Diagnostics.Domaines {
		add("diagnostic_moyenne", d.Code, d.Label, decimal(d.Moyenne), "")
		add("diagnostic_progression", d.Code, d.Label, decimal(d.Progression), "")
	}
	for _, m := range ov.Mois {
		add("mois_accompagnements", m.Month, m.Label, m.Accompagnements, "")
	}
	for _, m := range ov.Mois {
		add("mois_activites", m.Month, m.Label, m.Activites, "")
	}
	if err := cw.WriteAll(lines); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return bw.Flush()
}

// decimal writes v with a decimal comma, as French spreadsheets read it.
func decimal(v float64) string {
	return strings.Replace(strconv.FormatFloat(v, 'f', -1, 64), ".", ",", 1)
}
