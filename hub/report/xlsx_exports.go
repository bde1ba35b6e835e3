package report

import (
	"context"
	"fmt"
	"io"
	"slices"
)

// The XLSX exports: the same lines as the CSV ones, typed, under a header
// block that says what the file covers — who exported it and when, the
// period, the territory, the teams, vehicle and mediator (the filter as
// the user's scope cut it) — and, for activities, how many.

// exportTop is the header block of an XLSX export: a title, who exported
// it and when, what it covers, then extra lines (totals).
func exportTop(title string, x ExportInfo, a Applied, extra ...topRow) []topRow {
	top := []topRow{{cells: []cell{textCell(title)}, title: true}}
	line := func(label string, v cell) topRow { return topRow{cells: []cell{textCell(label), v}} }
	by := x.By
	if x.Role != "" {
		by += " (" + x.Role + ")"
	}
	top = append(top, line("Exporté le", timeCell(x.At)), line("Exporté par", textCell(by)))
	for _, l := range describeFilter(a) {
		top = append(top, line(l.Label, textCell(l.Value)))
	}
	return append(top, extra...)
}

// activityWidths are the widths of ActivityColumns (in characters).
func activityWidths() (widths []float64, wrap []bool) {
	wide := map[string]float64{"Identifiant": 38, "Enregistré le": 17, "Dernière modification le": 17, "Type": 26,
		"Type de lieu": 18, "Nom du lieu": 24, "Commune": 22, "Département": 20, "Thématiques": 36, "Démarches": 30,
		"Précisions sur la démarche": 28, "Matériel": 16, "Structure partenaire": 20, "Autonomie": 24,
		"Structure de redirection": 28, "Titre de l'atelier": 28, "Commune du bénéficiaire": 22}
	for _, c := range ActivityColumns {
		w, ok := wide[c]
		if !ok {
			w = 14
		}
		widths = append(widths, w)
		wrap = append(wrap, slices.Contains(listColumns, c))
	}
	return widths, wrap
}

// WriteActivitiesXLSX writes the activity export (the columns of
// ActivityColumns, one line per activity) as an XLSX file, streaming
// (see eachActivity and book).
func WriteActivitiesXLSX(ctx context.Context, w io.Writer, src Source, f Filter, s Scope, o Options, x ExportInfo) error {
	q, err := exportQuery(f, s, o)
	if err != nil {
		return err
	}
	sums, err := src.Sums(ctx, q)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	ctx = WithFactsAsIs(ctx) // brought up to date by Sums
	widths, wrap := activityWidths()
	b, err := newBook(sheetSpec{name: "Activités", table: "Activites", cols: ActivityColumns, widths: widths, wrap: wrap,
		top: exportTop("Numéribus Sync — activités", x, applied(f, q),
			topRow{cells: []cell{textCell("Activités"), intCell(sums.Activites)}},
			topRow{cells: []cell{textCell("Accompagnements"), intCell(sums.Participants)}})}, x.loc())
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var cells []cell
	err = eachActivity(ctx, src, q, func(r *exportRow) error {
		cells = activityCells(cells[:0], r)
		return b.add(cells)
	})
	if err != nil {
		b.close()
		return fmt.Errorf("export: %w", err)
	}
	if err := b.finish(w); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// WriteIndicatorsXLSX writes an overview as an XLSX file: the selection
// above, then one line per figure (rubrique, libellé, valeur,
// accompagnements), as the CSV.
func WriteIndicatorsXLSX(w io.Writer, ov *Overview, x ExportInfo) error {
	b, err := newBook(sheetSpec{name: "Indicateurs", table: "Indicateurs", cols: IndicatorColumns,
		widths: []float64{34, 50, 14, 16}, top: exportTop("Numéribus Sync — indicateurs", x, ov.Filter)}, x.loc())
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, l := range indicatorLines(ov, false) {
		if err := b.add([]cell{textCell(l.Section), textCell(l.Label), l.Value, l.Acc}); err != nil {
			b.close()
			return fmt.Errorf("export: %w", err)
		}
	}
	if err := b.finish(w); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
