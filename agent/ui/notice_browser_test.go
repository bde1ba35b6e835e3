package ui

import (
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

var pdfPageRE = regexp.MustCompile(`/Type\s*/Page\b`)

// TestBrowserNoticePrints: the notice is linked from the person's page
// and the consent form, opens in a new tab, shows no personal data, has a
// print stylesheet (no header, no buttons) and prints on one A4 page.
func TestBrowserNoticePrints(t *testing.T) {
	st, b, _ := consentStore(t, true)
	c := newChrome(t, st)
	unlockChrome(c)

	for _, p := range []string{"/beneficiaires/" + b.ID.String(), "/beneficiaires/" + b.ID.String() + "/consentement"} {
		c.Do("open "+p, chromedp.Navigate(c.Base+p), chromedp.WaitVisible(css("#notice-link")))
		link, err := chromedp.Run(c.Ctx, chromedp.Evaluate[string](`(a => a.getAttribute("href") + "|" + a.target)(document.getElementById("notice-link"))`))
		if err != nil || link != "/notice|_blank" {
			t.Fatalf("%s: notice link %q (%v)", p, link, err)
		}
	}
	c.Do("notice", chromedp.Navigate(c.Base+"/notice"), chromedp.WaitVisible(css("#notice")), chromedp.WaitVisible(css("#notice-print")))
	if h := c.HTML(); strings.Contains(h, "Hélène") || strings.Contains(h, "Lefèvre") || strings.Contains(h, "0612345678") {
		t.Fatal("the notice shows personal data")
	}
	c.Shot("15-notice")
	// The print rules: the page's header and the screen-only parts go.
	rules, err := chromedp.Run(c.Ctx, chromedp.Evaluate[string](`[...document.styleSheets].flatMap(s => [...s.cssRules])
		.filter(r => r instanceof CSSMediaRule && r.media.mediaText === "print").map(r => r.cssText).join("\n")`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rules, "header.top") || !strings.Contains(rules, ".no-print") || !strings.Contains(rules, "display: none") {
		t.Fatalf("print stylesheet: %q", rules)
	}
	pdf, err := chromedp.Run(c.Ctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPreferCSSPageSize()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pdfPageRE.FindAll(pdf, -1)); n != 1 {
		t.Fatalf("the notice prints on %d pages, want 1", n)
	}
}
