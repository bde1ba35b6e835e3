package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// windowSource records what an export asks of its source.
type windowSource struct {
	*memSource
	queries    [][2]int // From, To of each Activities call
	detailsIDs []int    // ids per ActivityDetails call
	asIs       []bool   // FactsAsIs of each Activities call
}

func (w *windowSource) Activities(ctx context.Context, q Query, fn func(*ActivityFact) error) error {
	w.queries = append(w.queries, [2]int{q.From, q.To})
	w.asIs = append(w.asIs, FactsAsIs(ctx))
	return w.memSource.Activities(ctx, q, fn)
}

func (w *windowSource) ActivityDetails(ctx context.Context, ids []ident.ID, fn func(*ActivityDetail) error) error {
	w.detailsIDs = append(w.detailsIDs, len(ids))
	return w.memSource.ActivityDetails(ctx, ids, fn)
}

// An export streams: it reads the period a week at a time, in order,
// asks details for that week's activities only, and writes every
// activity once, in day then id order, across the windows' edges.
func TestExportReadsAWeekAtATime(t *testing.T) {
	src := &windowSource{memSource: &memSource{}}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []string
	for d := range 60 {
		day := DayOf(start.AddDate(0, 0, d))
		n := 1
		if d == 6 || d == 7 { // both sides of the first window's edge
			n = 3
		}
		for i := range n {
			id := ident.NewAt(start.Add(time.Duration(d*10+(n-i)) * time.Minute)) // ids not in day order within a day
			src.acts = append(src.acts, ActivityFact{ID: id, Day: day, Type: "individuel", Duree: 30, Participants: 1, Team: "cd54"})
			src.details = append(src.details, ActivityDetail{ID: id, PrecisionsDemarche: "p" + id.String()[:8]})
		}
	}
	// The source hands facts in no particular order.
	slices.Reverse(src.acts)
	sorted := slices.Clone(src.acts)
	slices.SortFunc(sorted, func(a, b ActivityFact) int {
		if a.Day != b.Day {
			return a.Day - b.Day
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	for _, a := range sorted {
		want = append(want, a.ID.String())
	}
	f := Filter{From: start, To: start.AddDate(0, 0, 59)}
	var buf bytes.Buffer
	if err := WriteActivitiesCSV(context.Background(), &buf, src, f, Scope{}, Options{}, ExportInfo{}); err != nil {
		t.Fatal(err)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), BOM)))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range recs[1:] {
		got = append(got, rec[0])
		if i := columnIndex(ActivityColumns, "Précisions sur la démarche"); rec[i] != "p"+rec[0][:8] {
			t.Fatalf("details of %s: %q", rec[0], rec[i])
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d lines, want %d, in day then id order", len(got), len(want))
	}
	if len(src.queries) != 9 { // 60 days: 8 weeks and 4 days
		t.Fatalf("%d reads of activities: %v", len(src.queries), src.queries)
	}
	for i, q := range src.queries {
		if days := int(DayTime(q[1]).Sub(DayTime(q[0])).Hours()/24) + 1; days > exportWindow || days < 1 {
			t.Errorf("window %d: %v, %d days", i, q, days)
		}
		if i > 0 && addDays(src.queries[i-1][1], 1) != q[0] {
			t.Errorf("window %d starts at %d after %d: a gap or an overlap", i, q[0], src.queries[i-1][1])
		}
		if src.asIs[i] != (i > 0) {
			t.Errorf("window %d read with FactsAsIs %v: only the first brings the facts up to date", i, src.asIs[i])
		}
	}
	if m := slices.Max(src.detailsIDs); m > 7+2*2 {
		t.Errorf("details asked for %d activities at once: more than a window holds", m)
	}
}

// laCoopLabels covers every code of the lists the format writes, and
// says what La Coop says where it differs from us.
func TestLaCoopLabels(t *testing.T) {
	for _, l := range laCoopLists {
		for _, c := range l.Codes {
			if _, ok := laCoopLabels[l.Name][c.Code]; !ok {
				t.Errorf("%s: no La Coop label for %s", l.Name, c.Code)
			}
		}
	}
	if n := len(laCoopLabels["thematiques"]) + len(laCoopLabels["demarches"]); n != 30 {
		t.Errorf("La Coop's thématiques are one list of 30, here %d", n)
	}
	for _, c := range []struct {
		list       *domain.CodeList
		code, want string
	}{
		{domain.Thematiques, "entrepreneuriat", "Accompagner un professionnel"},
		{domain.Demarches, "travail_formation", "Travail - Formation - Entreprise"},
		{domain.Autonomies, "partiellement_autonome", "Autonome avec guidage en cas de besoin"},
		{domain.TypesLieu, "lieu_activite", "Lieu d’activité"},
		{domain.StatutsSociaux, "non_communique", "Non communiqué ou hétérogène"},
		{domain.Thematiques, "sante", "Santé"},
		{domain.Thematiques, "", ""},
	} {
		if got := laCoop(c.list, c.code); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.list.Name, c.code, got, c.want)
		}
	}
	if len(LaCoopColumns) != 30 || LaCoopColumns[0] != "Date" || LaCoopColumns[29] != "ID CRA" {
		t.Errorf("La Coop columns: %q", LaCoopColumns)
	}
}

// Every code of the workshop breakdowns has its column, and the columns
// are unique (an Excel table wants it).
func TestActivityColumns(t *testing.T) {
	for _, b := range breakdowns {
		if got, want := slices.Sorted(slices.Values(b.codes)), slices.Sorted(slices.Values(b.list.Allowed())); !slices.Equal(got, want) {
			t.Errorf("%s: columns for %v, the list has %v", b.list.Name, got, want)
		}
	}
	for _, cols := range [][]string{ActivityColumns, LaCoopColumns, IndicatorColumns} {
		seen := map[string]bool{}
		for _, c := range cols {
			if seen[c] {
				t.Errorf("column %q twice", c)
			}
			seen[c] = true
		}
	}
}

func TestFrenchCells(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		c    cell
		want string
	}{
		{percentCell(0.1061), "10,6 %"}, {percentCell(0.5), "50,0 %"}, {percentCell(0), "0,0 %"},
		{decimalCell(300.6), "300,6"}, {intCell(1234), "1234"}, {dayCell(20260315), "15/03/2026"},
		{timeCell(time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC)), "15/06/2026 12:00"},
		{listCell([]string{"E-mail", "Santé"}), "E-mail, Santé"}, {textCell(""), ""}, {cell{}, ""},
	} {
		if got := c.c.csv(paris); got != c.want {
			t.Errorf("%+v: %q, want %q", c.c, got, c.want)
		}
	}
}

func TestSplitName(t *testing.T) {
	for _, c := range []struct{ in, first, last string }{
		{"Camille D.", "Camille", "D."}, {"Jean-Marie Le Gall", "Jean-Marie", "Le Gall"}, {"Léo", "Léo", ""},
		{"  Ana  B. ", "Ana", "B."}, {"", "", ""},
	} {
		if f, l := splitName(c.in); f != c.first || l != c.last {
			t.Errorf("splitName(%q) = %q, %q", c.in, f, l)
		}
	}
}

// A workshop's anonymous head counts are handed out in list order, then
// « non communiqué ».
func TestSpread(t *testing.T) {
	s := spread{list: domain.Genres, counts: []int{2, 1, 0}} // masculin 2, feminin 1
	var got []string
	for range 5 {
		got = append(got, s.next())
	}
	if want := []string{"masculin", "masculin", "feminin", "non_communique", "non_communique"}; !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

// A sheet that is full goes on in a new one, under the same header block
// and column headers, each with its table.
func TestBookGoesOnInANewSheet(t *testing.T) {
	defer func(n int) { sheetRows = n }(sheetRows)
	sheetRows = 10 // top block of 2 rows, an empty row, the header: 6 lines a sheet
	b, err := newBook(sheetSpec{name: "Activités", table: "Activites", cols: []string{"N", "Jour"}, widths: []float64{8, 12},
		top: []topRow{{cells: []cell{textCell("Titre")}, title: true}, {cells: []cell{textCell("Période"), textCell("mars")}}}}, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		if err := b.add([]cell{intCell(i + 1), dayCell(20260301 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := b.finish(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, want := f.GetSheetList(), []string{"Activités", "Activités (2)", "Activités (3)"}; !slices.Equal(got, want) {
		t.Fatalf("sheets %v, want %v", got, want)
	}
	n := 0
	for _, name := range f.GetSheetList() {
		rows, _ := f.GetRows(name)
		if len(rows) < 5 || rows[1][1] != "mars" || !slices.Equal(rows[3], []string{"N", "Jour"}) {
			t.Fatalf("%s: %q", name, rows)
		}
		for _, r := range rows[4:] {
			n++
			if r[0] != strconv.Itoa(n) {
				t.Fatalf("%s: line %q, want number %d", name, r, n)
			}
		}
		if tables, _ := f.GetTables(name); len(tables) != 1 {
			t.Errorf("%s: %d tables", name, len(tables))
		}
	}
	if n != 15 {
		t.Fatalf("%d lines read back, want 15", n)
	}
}

// failingSource fails to give details: the export fails while reading.
type failingSource struct{ *memSource }

func (failingSource) ActivityDetails(context.Context, []ident.ID, func(*ActivityDetail) error) error {
	return errors.New("disk on fire")
}

// An XLSX export that fails while reading its rows has written nothing:
// the dashboard can still answer with an error page.
func TestXLSXFailsBeforeAnyByte(t *testing.T) {
	src := failingSource{&memSource{acts: []ActivityFact{{ID: ident.New(), Day: 20260302, Type: "individuel", Participants: 1}}}}
	f := Filter{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"xlsx": func(w *bytes.Buffer) error {
			return WriteActivitiesXLSX(context.Background(), w, src, f, Scope{}, Options{}, ExportInfo{})
		},
		"lacoop": func(w *bytes.Buffer) error {
			return WriteLaCoopXLSX(context.Background(), w, src, f, Scope{}, Options{}, ExportInfo{})
		},
	} {
		var buf bytes.Buffer
		if err := write(&buf); err == nil || !strings.Contains(err.Error(), "disk on fire") || buf.Len() != 0 {
			t.Errorf("%s: %v, %d bytes written", name, err, buf.Len())
		}
	}
}

// Text typed on a laptop that looks like a formula stays text in XLSX:
// an inline string, formatted as Text so that editing it keeps it so.
func TestXLSXFormulaLikeTextStaysText(t *testing.T) {
	id := ident.New()
	src := &memSource{acts: []ActivityFact{{ID: id, Day: 20260302, Type: "individuel", Participants: 1, Mediateur: "=HYPERLINK(\"http://x\")", Vehicule: "Numéribus 1"}}}
	f := Filter{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	if err := WriteActivitiesXLSX(context.Background(), &buf, src, f, Scope{}, Options{}, ExportInfo{}); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, _ := x.GetRows("Activités")
	for i, r := range rows {
		if len(r) == 0 || r[0] != id.String() {
			continue
		}
		col := columnIndex(ActivityColumns, "Médiateur")
		for _, c := range []struct {
			col  int
			want int // number format
		}{{col, 49}, {columnIndex(ActivityColumns, "Véhicule"), 0}} {
			ref, _ := excelize.CoordinatesToCellName(c.col+1, i+1)
			if f, _ := x.GetCellFormula("Activités", ref); f != "" {
				t.Errorf("%s is a formula: %q", ref, f)
			}
			ty, _ := x.GetCellType("Activités", ref)
			st, _ := x.GetCellStyle("Activités", ref)
			style, err := x.GetStyle(st)
			if ty != excelize.CellTypeInlineString || err != nil || style.NumFmt != c.want {
				t.Errorf("%s (%q): type %v, number format %d, want text in format %d", ref, r[c.col], ty, style.NumFmt, c.want)
			}
		}
		if r[col] != "=HYPERLINK(\"http://x\")" {
			t.Errorf("mediator shown as %q", r[col])
		}
		return
	}
	t.Fatalf("no line for the activity in %q", rows)
}

// columnIndex returns the position of name in cols, -1 when absent.
func columnIndex(cols []string, name string) int { return slices.Index(cols, name) }
