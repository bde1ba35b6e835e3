package sourcetest

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"numeribus/hub/report"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// The exports, read back as a spreadsheet would: the CSV through
// encoding/csv, the XLSX files through excelize.

// exportInfo is who asks for the exports of the suite.
var exportInfo = report.ExportInfo{By: "coord54@cd54.fr", Role: "coordinateur",
	At: time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC), Loc: paris}

var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err) // the tests need the zone database
	}
	return l
}()

// S1 is the stop the workshop A3 was held at.
var S1 = NewID(41)

// detail gives the world what only the details carry: A3 held at stop S1
// (« Salle des fêtes ») with a title, A2 with the name of its procedure.
func detail(t *testing.T, w *World) {
	t.Helper()
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.TourStop{ID: S1, Vehicule: "Numéribus 3", Date: "2026-04-01",
		Lieu: "Salle des fêtes", Commune: "54329", Equipe: "cd54", Realise: true})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: w.A3, Type: "collectif", Date: "2026-04-01", Duree: 90,
		TypeLieu: "lieu_activite", Commune: "54329", Thematiques: []string{"securite_numerique"}, Niveau: "debutant",
		Participants: &domain.Participants{Total: 8, DejaAccompagne: 3, Genre: map[string]int{"feminin": 5, "masculin": 2},
			TrancheAge: map[string]int{"soixante_dix_plus": 4}, Beneficiaires: []ident.ID{w.B1}},
		Vehicule: "Numéribus 3", Mediateur: "Camille D.", TitreAtelier: "Se protéger des arnaques", Arret: &S1})
	w.Apply(t, w.Dev54, change.OpUpsert, &domain.Activity{ID: w.A2, Type: "individuel", Date: "2026-03-10", Duree: 120,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{domain.ThemeDemarches}, Demarches: []string{"logement", "travail_formation"},
		StructurePartenaire: "caf", Beneficiaire: &w.B2, Autonomie: "partiellement_autonome", Vehicule: "Numéribus 3", Mediateur: "Léo M.",
		PrecisionsDemarche: "demande d'APL"})
}

// sheet is one sheet of an XLSX file as read back: its rows of text as
// Excel shows them (formatted), and the file to look at cells.
type sheet struct {
	name string
	rows [][]string
}

// readXLSX reads an XLSX export back: every sheet, in order.
func readXLSX(t *testing.T, b []byte) (*excelize.File, []sheet) {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		t.Fatalf("not a zip file: %q", b[:min(len(b), 16)])
	}
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("excelize cannot open the export: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	var out []sheet
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sheet{name, rows})
	}
	return f, out
}

// table splits a sheet's rows at the row whose first cell is first: the
// header block above (label → value), the header row, the lines below.
func table(t *testing.T, s sheet, first string) (top map[string]string, header []string, lines [][]string, headerRow int) {
	t.Helper()
	top = map[string]string{}
	for i, r := range s.rows {
		if len(r) > 0 && r[0] == first {
			return top, r, s.rows[i+1:], i + 1
		}
		if len(r) >= 2 {
			top[r[0]] = r[1]
		} else if len(r) == 1 {
			top[r[0]] = ""
		}
	}
	t.Fatalf("sheet %s: no table starting with %q in %q", s.name, first, s.rows)
	return nil, nil, nil, 0
}

// cellOf returns line's cell of column name.
func cellOf(t *testing.T, header, line []string, name string) string {
	t.Helper()
	i := slices.Index(header, name)
	if i < 0 {
		t.Fatalf("no column %q in %q", name, header)
	}
	if i >= len(line) {
		return ""
	}
	return line[i]
}

func testActivitiesCSV(t *testing.T, w *World) {
	detail(t, w)
	f := dep54(t)
	var buf bytes.Buffer
	if err := report.WriteActivitiesCSV(context.Background(), &buf, w.B, f, report.Scope{}, report.Options{}, exportInfo); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if !bytes.HasPrefix(out, []byte("\xef\xbb\xbf")) {
		t.Fatalf("no BOM: %q", out[:10])
	}
	if bytes.Contains(out, []byte("SECRET")) || bytes.Contains(out, []byte("Jeanne")) || bytes.Contains(out, []byte("Martinez")) {
		t.Fatal("export holds notes or identifying fields")
	}
	if n, crlf := bytes.Count(out, []byte("\n")), bytes.Count(out, []byte("\r\n")); n != 4 || crlf != n {
		t.Fatalf("%d lines, %d ending in CRLF: every line must end in CRLF", n, crlf)
	}
	r := csv.NewReader(bytes.NewReader(out[3:]))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || strings.Join(recs[0], ";") != strings.Join(report.ActivityColumns, ";") {
		t.Fatalf("%d lines, header %v", len(recs), recs[0])
	}
	if !strings.HasPrefix(string(out[3:]), "Identifiant;Date;Enregistré le;Dernière modification le;Type;Durée (min);") {
		t.Fatalf("header: %.120s", out[3:])
	}
	col := func(line int, name string) string { return cellOf(t, recs[0], recs[line], name) }
	for _, c := range []struct {
		line      int
		col, want string
	}{
		{1, "Identifiant", w.A1.String()}, {1, "Date", "02/03/2026"}, {1, "Commune", "Nancy"}, {1, "Code Insee", "54395"},
		{1, "Département", "Meurthe-et-Moselle"}, {1, "Thématiques", "Navigation sur internet, E-mail"},
		{1, "Genre du bénéficiaire", "Féminin"}, {1, "Tranche d'âge du bénéficiaire", "40-59 ans"}, {1, "Orienté", "Oui"},
		{1, "Structure de redirection", "Administration"}, {1, "Poste", "bus-54"}, {1, "Type", "Accompagnement individuel"},
		{1, "Autonomie", "Autonome"}, {1, "Pass numériques", "2"}, {1, "Enregistré le", "01/01/2026 09:00"},
		{1, "Participants – Féminin", ""}, {1, "Titre de l'atelier", ""},
		{2, "Démarches", "Travail - Formation, Logement"}, {2, "Précisions sur la démarche", "demande d'APL"},
		{2, "Structure partenaire", "CAF"}, {2, "Autonomie", "Partiellement autonome"},
		{3, "Type", "Atelier collectif"}, {3, "Accompagnements", "8"}, {3, "Participants suivis", "1"},
		{3, "Participants déjà accompagnés", "3"}, {3, "Commune", "Lunéville"}, {3, "Titre de l'atelier", "Se protéger des arnaques"},
		{3, "Nom du lieu", "Salle des fêtes"}, {3, "Niveau de l'atelier", "Débutant"}, {3, "Participants – Féminin", "5"},
		{3, "Participants – Masculin", "2"}, {3, "Participants – genre non communiqué", "0"}, {3, "Participants – 70 ans et plus", "4"},
		{3, "Orienté", ""}, {3, "Genre du bénéficiaire", ""},
	} {
		if got := col(c.line, c.col); got != c.want {
			t.Errorf("line %d, %s: %q, want %q", c.line, c.col, got, c.want)
		}
	}
	// The last change of A1 is its first: the seed's stamps are a minute
	// apart from T0 (UTC), shown in Paris time.
	if m := col(3, "Dernière modification le"); !strings.HasPrefix(m, "01/01/2026 ") || m == col(3, "Enregistré le") {
		t.Errorf("A3 modified %q, recorded %q: the update must show", m, col(3, "Enregistré le"))
	}

	var ind bytes.Buffer
	if err := report.WriteIndicatorsCSV(&ind, Overview(t, w.B, f, report.Scope{})); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ufeffRubrique;Libellé;Valeur;Accompagnements\r\n", "Période;Du;01/01/2026;\r\n",
		"Sélection;Territoire;Meurthe-et-Moselle (54);\r\n", "Synthèse;Heures;4,25;\r\n",
		"Orientation;Part des accompagnements individuels orientés;50,0 %;\r\n", "Commune;Nancy (54395);2;2\r\n"} {
		if !bytes.Contains(ind.Bytes(), []byte(want)) {
			t.Errorf("indicators CSV has no %q:\n%s", want, ind.String())
		}
	}
}

func testActivitiesXLSX(t *testing.T, w *World) {
	detail(t, w)
	f := dep54(t)
	var buf bytes.Buffer
	if err := report.WriteActivitiesXLSX(context.Background(), &buf, w.B, f, report.Scope{}, report.Options{}, exportInfo); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("SECRET")) {
		t.Fatal("notes in the file")
	}
	x, sheets := readXLSX(t, buf.Bytes())
	if len(sheets) != 1 || sheets[0].name != "Activités" {
		t.Fatalf("sheets %v", sheets)
	}
	top, header, lines, hr := table(t, sheets[0], "Identifiant")
	for k, v := range map[string]string{"Numéribus Sync — activités": "", "Période": "du 01/01/2026 au 31/12/2026",
		"Territoire": "Meurthe-et-Moselle (54)", "Zones comptées": "Meurthe-et-Moselle (54)", "Équipes": "Toutes",
		"Véhicule": "Tous", "Médiateur": "Tous", "Exporté par": "coord54@cd54.fr (coordinateur)", "Exporté le": "15/06/2026 12:00",
		"Activités": "3", "Accompagnements": "10"} {
		if got, ok := top[k]; !ok || got != v {
			t.Errorf("header block %q: %q, want %q (%v)", k, got, v, top)
		}
	}
	if !slices.Equal(header, report.ActivityColumns) {
		t.Fatalf("columns\n got %q\nwant %q", header, report.ActivityColumns)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	for _, c := range []struct {
		line      int
		col, want string
	}{
		{0, "Date", "02/03/2026"}, {0, "Thématiques", "Navigation sur internet\nE-mail"}, {0, "Commune", "Nancy"},
		{1, "Démarches", "Travail - Formation\nLogement"},
		{2, "Titre de l'atelier", "Se protéger des arnaques"}, {2, "Participants – Féminin", "5"}, {2, "Nom du lieu", "Salle des fêtes"},
		{2, "Accompagnements", "8"}, {2, "Type", "Atelier collectif"},
	} {
		if got := cellOf(t, header, lines[c.line], c.col); got != c.want {
			t.Errorf("line %d, %s: %q, want %q", c.line, c.col, got, c.want)
		}
	}
	// Counts are numbers and dates are dates, not texts: a spreadsheet
	// sums and sorts them.
	for _, name := range []string{"Durée (min)", "Date", "Accompagnements"} {
		ref, _ := excelize.CoordinatesToCellName(slices.Index(header, name)+1, hr+1)
		if ty, _ := x.GetCellType("Activités", ref); ty == excelize.CellTypeInlineString || ty == excelize.CellTypeSharedString {
			t.Errorf("%s (%s) is text", name, ref)
		}
		raw, _ := x.GetCellValue("Activités", ref, excelize.Options{RawCellValue: true})
		if _, err := strconv.ParseFloat(raw, 64); err != nil {
			t.Errorf("%s (%s) raw %q is no number", name, ref, raw)
		}
	}
	tables, err := x.GetTables("Activités")
	if err != nil || len(tables) != 1 {
		t.Errorf("tables %v, %v: the lines must form one filterable table", tables, err)
	}

	var ind bytes.Buffer
	if err := report.WriteIndicatorsXLSX(&ind, Overview(t, w.B, f, report.Scope{}), exportInfo); err != nil {
		t.Fatal(err)
	}
	ix, isheets := readXLSX(t, ind.Bytes())
	itop, iheader, ilines, ihr := table(t, isheets[0], "Rubrique")
	if itop["Territoire"] != "Meurthe-et-Moselle (54)" || !slices.Equal(iheader, report.IndicatorColumns) {
		t.Errorf("indicators: header block %v, columns %q", itop, iheader)
	}
	found := false
	for i, l := range ilines {
		if len(l) > 2 && l[1] == "Part des accompagnements individuels orientés" {
			// A fraction, shown by its format as « 50,0 % » in a French
			// spreadsheet.
			found = true
			ref := "C" + strconv.Itoa(ihr+1+i)
			raw, _ := ix.GetCellValue(isheets[0].name, ref, excelize.Options{RawCellValue: true})
			id, _ := ix.GetCellStyle(isheets[0].name, ref)
			st, err := ix.GetStyle(id)
			if raw != "0.5" || err != nil || st.CustomNumFmt == nil || *st.CustomNumFmt != "0.0 %" {
				t.Errorf("share: raw %q, style %+v %v", raw, st, err)
			}
		}
	}
	if !found {
		t.Errorf("no referral share in %q", ilines)
	}
}

func testLaCoopXLSX(t *testing.T, w *World) {
	detail(t, w)
	f := dep54(t)
	var buf bytes.Buffer
	if err := report.WriteLaCoopXLSX(context.Background(), &buf, w.B, f, report.Scope{}, report.Options{}, exportInfo); err != nil {
		t.Fatal(err)
	}
	_, sheets := readXLSX(t, buf.Bytes())
	if len(sheets) != 1 || sheets[0].name != "Activités" {
		t.Fatalf("sheets %v", sheets)
	}
	top, header, lines, _ := table(t, sheets[0], "Date")
	for k, v := range map[string]string{"Informations export": "", "Exporté par": "coord54@cd54.fr", "Rôle": "Coordinateur",
		"Total": "10", "Date d’export": "15/06/2026", "Heure d’export": "12:00", "Filtres": "", "Source": "Numéribus Sync",
		"Période": "du 01/01/2026 au 31/12/2026", "Territoire": "Meurthe-et-Moselle (54)"} {
		if got, ok := top[k]; !ok || got != v {
			t.Errorf("header block %q: %q, want %q (%v)", k, got, v, top)
		}
	}
	want := []string{"Date", "Enregistré le", "Dernière modification le", "Prénom du médiateur", "Nom du médiateur", "Rôle",
		"Type", "Participants", "Canaux d’accompagnement", "Nom du lieu", "Adresse", "Commune", "Code postal", "Code Insee",
		"Durée (min)", "Nom de l’atelier", "Matériel numérique utilisé", "Thématique(s) d’accompagnement", "Tags",
		"Nom de la démarche administrative", "Niveau d’autonomie (ou de l’atelier)", "Bénéficiaire réorienté",
		"Structure de redirection", "Commune du bénéficiaire", "Code postal du bénéficiaire", "Code Insee du bénéficiaire",
		"Genre du bénéficiaire", "Tranche d’âge du bénéficiaire", "Statut du bénéficiaire", "ID CRA"}
	if !slices.Equal(header, want) {
		t.Fatalf("columns\n got %q\nwant %q", header, want)
	}
	// One row per accompagnement: A1 and A2 one each, the workshop A3 of
	// 8 participants 8.
	if len(lines) != 10 {
		t.Fatalf("%d rows, want 1 + 1 + 8", len(lines))
	}
	c := func(line int, name string) string { return cellOf(t, header, lines[line], name) }
	for _, x := range []struct {
		line      int
		col, want string
	}{
		{0, "Date", "02/03/2026"}, {0, "Enregistré le", "01/01/2026 à 09:00"}, {0, "Prénom du médiateur", "Camille"},
		{0, "Nom du médiateur", "D."}, {0, "Rôle", ""}, {0, "Type", "Accompagnement individuel"}, {0, "Participants", "1"},
		{0, "Canaux d’accompagnement", "Lieu d’activité"}, {0, "Commune", "Nancy"}, {0, "Code postal", "54000\n54100"},
		{0, "Code Insee", "54395"}, {0, "Durée (min)", "45"}, {0, "Matériel numérique utilisé", "Ordinateur"},
		{0, "Thématique(s) d’accompagnement", "Navigation sur internet\nE-mail"}, {0, "Niveau d’autonomie (ou de l’atelier)", "Autonome"},
		{0, "Bénéficiaire réorienté", "Oui"}, {0, "Structure de redirection", "Administration (mairie, préfecture…)"},
		{0, "Commune du bénéficiaire", "Nancy"}, {0, "Code Insee du bénéficiaire", "54395"}, {0, "Genre du bénéficiaire", "Féminin"},
		{0, "Tranche d’âge du bénéficiaire", "40 - 59 ans"}, {0, "Statut du bénéficiaire", "Retraité"}, {0, "ID CRA", w.A1.String()},
		{1, "Thématique(s) d’accompagnement", "Aide aux démarches administratives\nTravail - Formation - Entreprise\nLogement"},
		{1, "Nom de la démarche administrative", "demande d'APL"},
		{1, "Niveau d’autonomie (ou de l’atelier)", "Autonome avec guidage en cas de besoin"}, {1, "Bénéficiaire réorienté", "Non"},
		{1, "Genre du bénéficiaire", "Masculin"}, {1, "Statut du bénéficiaire", "Non communiqué ou hétérogène"},
		{1, "Prénom du médiateur", "Léo"},
		{2, "Type", "Atelier collectif"}, {2, "Participants", "1/8"}, {9, "Participants", "8/8"}, {2, "Nom de l’atelier", "Se protéger des arnaques"},
		{2, "Nom du lieu", "Salle des fêtes"}, {2, "Adresse", ""}, {2, "Commune", "Lunéville"}, {2, "Niveau d’autonomie (ou de l’atelier)", "Débutant"},
		{2, "Bénéficiaire réorienté", ""}, {9, "ID CRA", w.A3.String()}, {2, "Tags", ""},
		// The followed participant first, as herself.
		{2, "Genre du bénéficiaire", "Féminin"}, {2, "Commune du bénéficiaire", "Nancy"},
		{3, "Commune du bénéficiaire", ""}, {3, "Code Insee du bénéficiaire", ""},
	} {
		if got := c(x.line, x.col); got != x.want {
			t.Errorf("row %d, %s: %q, want %q", x.line, x.col, got, x.want)
		}
	}
	if m := c(2, "Dernière modification le"); m == "" || m == c(2, "Enregistré le") {
		t.Errorf("A3 was updated: modified %q", m)
	}
	if m := c(0, "Dernière modification le"); m != "" && m == c(0, "Enregistré le") {
		t.Errorf("modified equal to recorded must stay empty: %q", m)
	}
	// The workshop's head counts spread over its anonymous rows: each
	// column sums to the workshop's counts (5 women + 2 men among the 7
	// anonymous, 4 of 70 and over), the rest « Non communiqué ».
	count := func(col, v string) int {
		n := 0
		for i := 3; i < 10; i++ {
			if c(i, col) == v {
				n++
			}
		}
		return n
	}
	for _, x := range []struct {
		col, v string
		want   int
	}{
		{"Genre du bénéficiaire", "Féminin", 5}, {"Genre du bénéficiaire", "Masculin", 2},
		{"Tranche d’âge du bénéficiaire", "70 ans et plus", 4}, {"Tranche d’âge du bénéficiaire", "Non communiqué", 3},
		{"Statut du bénéficiaire", "Non communiqué ou hétérogène", 7},
	} {
		if got := count(x.col, x.v); got != x.want {
			t.Errorf("anonymous rows with %s %q: %d, want %d", x.col, x.v, got, x.want)
		}
	}
}
