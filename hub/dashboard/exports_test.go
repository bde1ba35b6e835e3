package dashboard

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
)

// xlsxTable reads an XLSX export back and returns its first sheet's
// header block (label → value) and the table under it: the header row
// (the one starting with first) and the lines.
func xlsxTable(t *testing.T, b []byte, first string) (top map[string]string, header []string, lines [][]string) {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not an XLSX file (%d bytes): %v", len(b), err)
	}
	defer f.Close()
	rows, err := f.GetRows(f.GetSheetList()[0])
	if err != nil {
		t.Fatal(err)
	}
	top = map[string]string{}
	for i, r := range rows {
		if len(r) > 0 && r[0] == first {
			return top, r, rows[i+1:]
		}
		if len(r) >= 2 {
			top[r[0]] = r[1]
		}
	}
	t.Fatalf("no table starting with %q", first)
	return nil, nil, nil
}

// TestExportsFormatsAndScope: the exports page offers every export in
// its formats; each download is the format it says, of the user's scope
// only, audited; a viewer gets no per-activity file; a format an export
// does not have is a 404.
func TestExportsFormatsAndScope(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	c88 := e.login("coord88@cd88.fr")
	_, page, _ := e.get(c88, "/exports"+spring)
	for _, id := range []string{"csv-indicateurs", "xlsx-indicateurs", "csv-activites", "xlsx-activites", "xlsx-activites-lacoop"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("the exports page has no link %s", id)
		}
	}
	if !strings.Contains(page, `href="/exports/activites-lacoop.xlsx?au=2026-05-31&amp;du=2026-03-01"`) {
		t.Error("the La Coop link does not carry the selection")
	}

	for _, c := range []struct {
		path, ctype, ext string
	}{
		{"/exports/activites.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"},
		{"/exports/activites-lacoop.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"},
		{"/exports/indicateurs.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"},
		{"/exports/activites.csv", "text/csv; charset=utf-8", ".csv"},
	} {
		code, _, res := e.get(c88, c.path+spring)
		if code != http.StatusOK || res.Header.Get("Content-Type") != c.ctype ||
			!strings.HasSuffix(res.Header.Get("Content-Disposition"), c.ext+`"`) {
			t.Errorf("%s: %d, %s, %s", c.path, code, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
		}
	}

	// The Vosges' coordinator: the Vosges only, one La Coop row per
	// accompagnement (the workshop of 41 is 41 rows).
	_, body, _ := e.get(c88, "/exports/activites-lacoop.xlsx"+spring)
	top, header, lines := xlsxTable(t, []byte(body), "Date")
	if top["Total"] != itoa(seed88Acc) || top["Zones comptées"] != "Vosges (88)" || top["Période"] != "du 01/03/2026 au 31/05/2026" {
		t.Errorf("La Coop header block: %v", top)
	}
	if !slices.Equal(header, report.LaCoopColumns) || len(lines) != seed88Acc {
		t.Fatalf("La Coop: %d rows, want %d; columns %q", len(lines), seed88Acc, header)
	}
	insee := slices.Index(header, "Code Insee")
	for i, l := range lines {
		if l[insee] != "88160" || slices.Contains(l, "Nancy") || slices.Contains(l, "Camille") {
			t.Fatalf("row %d of coordinator 88's La Coop file: %q", i, l)
		}
	}
	_, body, _ = e.get(c88, "/exports/activites.xlsx"+spring)
	_, header, lines = xlsxTable(t, []byte(body), "Identifiant")
	if len(lines) != seed88Activities {
		t.Fatalf("activities XLSX: %d lines, want %d", len(lines), seed88Activities)
	}
	for _, l := range lines {
		if l[slices.Index(header, "Code Insee")] != "88160" || l[slices.Index(header, "Équipe")] != "cd88" {
			t.Fatalf("coordinator 88's activities XLSX: %q", l)
		}
	}
	// Another territory: refused before any byte, never an empty file.
	for _, p := range []string{"/exports/activites.xlsx", "/exports/activites-lacoop.xlsx", "/exports/indicateurs.xlsx"} {
		code, body, res := e.get(c88, p+spring+"&territoire=54")
		if code != http.StatusForbidden || strings.HasPrefix(body, "PK") || res.Header.Get("Content-Disposition") != "" {
			t.Errorf("%s for 54: %d %q", p, code, res.Header.Get("Content-Disposition"))
		}
	}

	// A viewer: aggregates only.
	v := e.login("lecteur@region.fr")
	_, page, _ = e.get(v, "/exports"+spring)
	if strings.Contains(page, "activites") || !strings.Contains(page, `id="xlsx-indicateurs"`) {
		t.Error("a viewer is offered per-activity exports, or no indicators")
	}
	if code, _, _ := e.get(v, "/exports/activites-lacoop.xlsx"+spring); code != http.StatusForbidden {
		t.Errorf("viewer La Coop export: %d", code)
	}
	if code, _, _ := e.get(v, "/exports/indicateurs.xlsx"+spring); code != http.StatusOK {
		t.Errorf("viewer indicators XLSX: %d", code)
	}
	for _, p := range []string{"/exports/activites-lacoop.csv", "/exports/indicateurs.pdf", "/exports/activites", "/exports/.xlsx"} {
		if code, _, _ := e.get(c88, p); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}

	log, _ := e.st.AuditLog(context.Background(), 100)
	n := 0
	for _, a := range log {
		if a.Action == accounts.ActionExport && strings.HasPrefix(a.What, "/exports/activites-lacoop.xlsx") {
			n++
		}
	}
	if n != 2 { // the format check and the read-back; the refused one is a denial
		t.Errorf("%d audited La Coop downloads, want 2", n)
	}
}
