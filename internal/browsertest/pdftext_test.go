package browsertest

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"slices"
	"testing"
)

// tinyPDF writes a PDF of the shape Chromium prints: two pages listed in
// /Kids in the reverse of their object order, Flate content streams
// showing glyphs with Tj and TJ, and a Type0 font whose ToUnicode map has
// single glyphs (bfchar) and ranges (bfrange).
func tinyPDF(t *testing.T) []byte {
	t.Helper()
	flate := func(s string) string {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return fmt.Sprintf("<</Length %d /Filter /FlateDecode>>\nstream\n%s\nendstream", b.Len(), b.String())
	}
	cmap := "begincmap\n2 beginbfchar\n<0003> <0020>\n<0010> <00E9>\nendbfchar\n1 beginbfrange\n<0024> <003D> <0041>\nendbfrange\n2 beginbfchar\n<0050> <FB01>\n<0051> <202F>\nendbfchar\nendcmap"
	objs := []string{
		"<</Type /Catalog /Pages 2 0 R>>",
		"<</Type /Pages /Kids [4 0 R 3 0 R] /Count 2>>",
		"<</Type /Page /Parent 2 0 R /Resources <</Font <</F1 5 0 R>>>> /Contents 7 0 R>>",
		"<</Type /Page /Parent 2 0 R /Resources <</Font <</F1 5 0 R>>>> /Contents 8 0 R>>",
		"<</Type /Font /Subtype /Type0 /Encoding /Identity-H /ToUnicode 6 0 R>>",
		flate(cmap),
		// Page 2: "ZONE".
		flate("BT /F1 12 Tf 1 0 0 -1 0 15 Tm <003D> Tj 8 0 Td <0032> Tj 8 0 Td <0031> Tj 8 0 Td <0028> Tj ET"),
		// Page 1: "PAGE é" on a line, then "fiN" (a ligature) and a narrow space on the next.
		flate("BT /F1 12 Tf <0033> Tj 8 0 Td [<0024> -10 <002A0028>] TJ <0003> Tj <0010> Tj 0 14 Td <0050> Tj <0031> Tj <0051> Tj ET"),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	for i, o := range objs {
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	b.WriteString("trailer <</Root 1 0 R>>\n%%EOF\n")
	return b.Bytes()
}

func TestPDFText(t *testing.T) {
	pdf := tinyPDF(t)
	if n := PDFPages(pdf); n != 2 {
		t.Fatalf("PDFPages = %d, want 2", n)
	}
	pages, err := PDFText(pdf)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PAGE é\nfiN\u202f\n", "ZONE\n"}
	if !slices.Equal(pages, want) {
		t.Fatalf("PDFText = %q, want %q", pages, want)
	}
}
