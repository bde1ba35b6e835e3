package report

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

func TestCellNeutralisesFormulas(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+33 6 12", "'+33 6 12"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"-12", "-12"},   // a number, not a formula
		{"-3,5", "-3,5"}, // a French decimal
		{"Numéribus 1", "Numéribus 1"},
		{"a=b", "a=b"},
		{"", ""},
	} {
		if got := Cell(tc.in); got != tc.want {
			t.Errorf("Cell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Every cell written through the exports' writer comes back neutralised
// when a spreadsheet (here encoding/csv) reads the file.
func TestExportWriterNeutralisesEveryCell(t *testing.T) {
	var buf bytes.Buffer
	cw, bw, err := newCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := cw.Write([]string{"vehicule", "=cmd|' /C calc'!A0"}); err != nil {
		t.Fatal(err)
	}
	if err := cw.WriteAll([][]string{{"@evil", "-5"}}); err != nil {
		t.Fatal(err)
	}
	cw.Flush()
	bw.Flush()
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), BOM)))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if recs[0][1] != "'=cmd|' /C calc'!A0" || recs[1][0] != "'@evil" || recs[1][1] != "-5" {
		t.Fatalf("cells as read back: %q", recs)
	}
}
