package dashboard

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"numeribus/hub/store"
	"numeribus/internal/browsertest"
	"numeribus/internal/territoire"
)

// printPDF prints the current page to PDF as the browser's « Imprimer →
// Enregistrer en PDF » does (A4, the page's own @page size, backgrounds)
// and returns the text of each page.
func (b *browser) printPDF() []string {
	b.T.Helper()
	pdf, err := chromedp.Run(b.Ctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPreferCSSPageSize(), chromedp.PDFPrintBackground()))
	if err != nil {
		b.T.Fatal(err)
	}
	pages, err := browsertest.PDFText(pdf)
	if err != nil {
		b.T.Fatalf("reading the PDF: %v", err)
	}
	if n := browsertest.PDFPages(pdf); n != len(pages) {
		b.T.Fatalf("%d page objects, %d pages read", n, len(pages))
	}
	return pages
}

// flat is a page's text on one line, words separated by one space.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// seedHeavy pushes, from bus-88, a busy April 2026 in the Vosges: ten
// vehicles with long names, each with a session of every theme in a
// commune of its own, so that the Vosges' page has its longest tables.
func seedHeavy(t *testing.T, e *env, bus88 store.Device) {
	t.Helper()
	var communes []string
	for _, c := range territoire.Default().CommunesOfDepartement("88")[:10] {
		communes = append(communes, c.Code)
	}
	themes := []string{"aide_aux_demarches_administratives", "prendre_en_main_du_materiel", "securite_numerique", "navigation_sur_internet",
		"gere_ses_contenus_numeriques", "banque_et_achats_en_ligne", "insertion_professionnelle"}
	seq := len(seed88) + 1
	for i, c := range communes {
		var acts []seedActivity
		for j, th := range themes {
			acts = append(acts, seedActivity{fmt.Sprintf("2026-04-%02d", 10+j), c, "individuel", 45, 1, th})
		}
		pushFrom(t, e.st, bus88, fmt.Sprintf("Numéribus de la communauté de communes n° %d", i+1), "Luc Petitjean", acts, seq)
		seq += len(acts)
	}
}

// TestBrowserPrintReport: the printable report prints from Chromium to
// PDF one A4 page per territory — one for a coordinator of
// Meurthe-et-Moselle, two for a coordinator of both départements (the
// Vosges' page with ten vehicles still on one sheet), one when the
// filter names a territory — and each page's text holds its territory,
// period and key figures, last year's comparison included, and none of
// the screen's navigation or filters. The screen page fits 1,280 px and
// passes axe-core; the overview links to it with its filter.
func TestBrowserPrintReport(t *testing.T) {
	e := newEnv(t, false)
	bus54, bus88 := seed(t, e.st)
	seedMore(t, e.st, bus54)
	seedHeavy(t, e, bus88)
	e.user("deux@region.fr", "coordinator", "54", "88")
	const period = "du=2026-03-01&au=2026-05-31"

	b := newBrowserAt(t, e, 1280)
	b.login("coord54@cd54.fr")
	b.Do("overview", chromedp.Navigate(b.Base+"/apercu?"+period), chromedp.WaitVisible(css("#print-link")))
	b.NextPage("report", chromedp.Click(css("#print-link")), "#page-1")
	if l := b.Location(); !strings.HasPrefix(l, "/rapport?") || !strings.Contains(l, "du=2026-03-01") {
		t.Fatalf("the overview's report link leads to %s", l)
	}
	b.Shot("hub-rapport")
	b.fits("/rapport")
	b.Axe("/rapport")
	pages := b.printPDF()
	if len(pages) != 1 {
		t.Fatalf("coordinator 54: %d pages, want 1:\n%s", len(pages), strings.Join(pages, "\n=====\n"))
	}
	p := flat(pages[0])
	for _, want := range []string{"Meurthe-et-Moselle (département 54)", "Du 01/03/2026 au 31/05/2026", "Accompagnements 18 an dernier : 9 (+100,0 %)",
		"Bénéficiaires distincts", "Heures d'accompagnement 5,5 an dernier : 1,5", "Communes touchées 2 an dernier : 1",
		"2 communes visitées sur 591", "Numéribus 54 bis 1 1", "mars 26", "aucune donnée personnelle"} {
		if !strings.Contains(p, want) {
			t.Errorf("PDF page lacks %q:\n%s", want, p)
		}
	}
	for _, screen := range []string{"Se déconnecter", "Appliquer", "Aperçu", "Imprimer ou enregistrer"} {
		if strings.Contains(p, screen) {
			t.Errorf("PDF page holds the screen's %q", screen)
		}
	}
	b.logout()

	b.login("deux@region.fr")
	b.Do("two territories", chromedp.Navigate(b.Base+"/rapport?"+period), chromedp.WaitVisible(css("#page-2")))
	b.Shot("print-two")
	b.fits("/rapport (deux territoires)")
	b.Axe("/rapport (deux territoires)")
	pages = b.printPDF()
	if len(pages) != 2 {
		t.Fatalf("two territories: %d pages, want 2:\n%s", len(pages), strings.Join(pages, "\n=====\n"))
	}
	if p := flat(pages[0]); !strings.Contains(p, "Meurthe-et-Moselle (département 54)") || !strings.Contains(p, "Accompagnements 18 ") {
		t.Errorf("page 1:\n%s", pages[0])
	}
	// The Vosges: 45 accompagnements of seed and 70 sessions of ten
	// vehicles, of which eight are listed.
	if p := flat(pages[1]); !strings.Contains(p, "Vosges (département 88)") || !strings.Contains(p, "Accompagnements 115 ") ||
		strings.Contains(p, "Meurthe-et-Moselle") || !strings.Contains(p, "Et 3 autre(s) véhicule(s)") {
		t.Errorf("page 2:\n%s", pages[1])
	}
	b.Do("one of them", chromedp.Navigate(b.Base+"/rapport?"+period+"&territoire=88"), chromedp.WaitVisible(css("#page-1")))
	if pages = b.printPDF(); len(pages) != 1 || !strings.Contains(pages[0], "Vosges") {
		t.Fatalf("territoire=88: %d pages", len(pages))
	}
}
