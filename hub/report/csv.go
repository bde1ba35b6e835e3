package report

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CSV exports are what French spreadsheets open without a question: UTF-8
// with a byte order mark, ';' between fields, lines ending in CRLF (as
// RFC 4180 and Excel want), French headers, dates JJ/MM/AAAA, decimal
// commas and « 10,6 % », fields quoted when they need it (encoding/csv).
// They never hold notes nor identifying fields: the facts and details
// they are written from have none.

// BOM is the UTF-8 byte order mark starting every export.
const BOM = "\ufeff"

func newCSV(w io.Writer) (*safeCSV, *bufio.Writer, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(BOM); err != nil {
		return nil, nil, err
	}
	cw := csv.NewWriter(bw)
	cw.Comma = ';'
	cw.UseCRLF = true
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
// figures still add up. Every CSV cell goes through Cell; XLSX cells are
// typed (a text cell is text, never a formula), see xlsx.go.
func Cell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64); err == nil {
		return s
	}
	return "'" + s
}

// WriteActivitiesCSV writes one line per activity of what f asks within
// scope s, in date order, with the columns of ActivityColumns, streaming
// (see eachActivity). The beneficiary columns describe the person of an
// individual session (empty for workshops, whose participants are
// counted by criterion, not listed).
func WriteActivitiesCSV(ctx context.Context, w io.Writer, src Source, f Filter, s Scope, o Options, x ExportInfo) error {
	q, err := exportQuery(f, s, o)
	if err != nil {
		return err
	}
	cw, bw, err := newCSV(w)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := cw.Write(slices.Clone(ActivityColumns)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	loc := x.loc()
	var (
		cells []cell
		rec   = make([]string, len(ActivityColumns))
	)
	err = eachActivity(ctx, src, q, func(r *exportRow) error {
		cells = activityCells(cells[:0], r)
		for i, c := range cells {
			rec[i] = c.csv(loc)
		}
		return cw.Write(rec)
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return bw.Flush()
}

// IndicatorColumns are the headers of the indicators export.
var IndicatorColumns = []string{"Rubrique", "Libellé", "Valeur", "Accompagnements"}

// indicatorLine is one line of the indicators export.
type indicatorLine struct {
	Section, Label string
	Value, Acc     cell
}

// indicatorLines are the figures of an overview, the selection first:
// what the dashboard shows, for a spreadsheet. Communes carry their INSEE
// code in their label, months are named ("mars 2026").
// The XLSX file shows the selection above its table instead
// (withSelection false).
func indicatorLines(ov *Overview, withSelection bool) []indicatorLine {
	var lines []indicatorLine
	add := func(section, label string, v cell) {
		lines = append(lines, indicatorLine{Section: section, Label: label, Value: v})
	}
	for _, l := range describeFilter(ov.Filter) {
		if !withSelection {
			break
		}
		if l.Label == "Période" {
			add("Période", "Du", dayCell(ov.Filter.FromDay()))
			add("Période", "Au", dayCell(ov.Filter.ToDay()))
			continue
		}
		add("Sélection", l.Label, textCell(l.Value))
	}
	headline := func(section string, h Headline) {
		add(section, "Accompagnements", intCell(h.Accompagnements))
		add(section, "Activités", intCell(h.Activites))
		add(section, "Accompagnements individuels", intCell(h.Individuels))
		add(section, "Ateliers collectifs", intCell(h.Collectifs))
		add(section, "Bénéficiaires distincts", intCell(h.Beneficiaires))
		add(section, "Heures", decimalCell(h.Heures))
		add(section, "Pass numériques", intCell(h.PassNumerique))
		add(section, "Communes", intCell(h.Communes))
	}
	headline("Synthèse", ov.Headline)
	prev := func(iso string) int { d, _ := ParseDay(iso); return d }
	add("Période précédente", "Du", dayCell(prev(ov.Previous.From)))
	add("Période précédente", "Au", dayCell(prev(ov.Previous.To)))
	headline("Période précédente", ov.Previous)
	b := ov.Beneficiaires
	for _, l := range []struct {
		label string
		v     int
	}{
		{"Bénéficiaires distincts", b.Distincts}, {"Nouveaux bénéficiaires", b.Nouveaux},
		{"Bénéficiaires suivis", b.Suivis}, {"Bénéficiaires anonymes", b.Anonymes},
		{"Accompagnements sans fiche bénéficiaire", b.SansFiche},
		{"Participants aux ateliers", b.ParticipantsAteliers},
		{"Participants anonymes", b.ParticipantsAnonymes},
		{"Participants déjà accompagnés", b.DejaAccompagnes},
		{"Personnes accompagnées (au plus)", b.Personnes},
	} {
		add("Bénéficiaires", l.label, intCell(l.v))
	}
	counts := func(section string, cs []Count, communes bool) {
		for _, c := range cs {
			l := indicatorLine{Section: section, Label: c.Label, Value: intCell(c.Count)}
			if communes && c.Label != c.Code && c.Code != "" {
				l.Label = c.Label + " (" + c.Code + ")"
			}
			if c.Accompagnements > 0 {
				l.Acc = intCell(c.Accompagnements)
			}
			lines = append(lines, l)
		}
	}
	counts("Type d'activité", ov.ParType, false)
	counts("Durée", ov.Durees, false)
	counts("Thématique", ov.Thematiques, false)
	counts("Démarche", ov.Demarches, false)
	counts("Structure partenaire", ov.Partenaires, false)
	counts("Matériel", ov.Materiels, false)
	counts("Type de lieu", ov.TypesLieu, false)
	counts("Commune", ov.Communes, true)
	counts("Genre", ov.Genres, false)
	counts("Tranche d'âge", ov.TranchesAge, false)
	counts("Statut social", ov.StatutsSociaux, false)
	counts("Commune de résidence", ov.CommunesResidence, true)
	counts("Autonomie", ov.Autonomie, false)
	add("Orientation", "Accompagnements avec orientation", intCell(ov.Orientation.Orientes))
	add("Orientation", "Part des accompagnements individuels orientés", percentCell(ov.Orientation.Part))
	counts("Structure de redirection", ov.Orientation.Structures, false)
	counts("Niveau des ateliers", ov.Niveaux, false)
	add("Diagnostics", "Diagnostics", intCell(ov.Diagnostics.Nombre))
	add("Diagnostics", "Personnes diagnostiquées", intCell(ov.Diagnostics.Beneficiaires))
	for _, d := range ov.Diagnostics.Domaines {
		add("Diagnostic : score moyen (0 à 2)", d.Label, decimalCell(d.Moyenne))
		add("Diagnostic : progression moyenne", d.Label, decimalCell(d.Progression))
	}
	for _, m := range ov.Mois {
		add("Accompagnements par mois", m.Label, intCell(m.Accompagnements))
	}
	for _, m := range ov.Mois {
		add("Activités par mois", m.Label, intCell(m.Activites))
	}
	return lines
}

// WriteIndicatorsCSV writes an overview as lines of (rubrique, libellé,
// valeur, accompagnements), the selection first: the figures of the
// dashboard, for a spreadsheet.
func WriteIndicatorsCSV(w io.Writer, ov *Overview) error {
	cw, bw, err := newCSV(w)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	recs := [][]string{slices.Clone(IndicatorColumns)}
	for _, l := range indicatorLines(ov, true) {
		recs = append(recs, []string{l.Section, l.Label, l.Value.csv(time.UTC), l.Acc.csv(time.UTC)})
	}
	if err := cw.WriteAll(recs); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return bw.Flush()
}
