package dashboard

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/internal/browsertest"
)

// fitsJS lists what sticks out sideways on a page: the document wider
// than the window, and every table wider than its container (clipped or
// scrolled), by id.
const fitsJS = `(() => {
	const out = [];
	const doc = document.documentElement;
	if (doc.scrollWidth > window.innerWidth) out.push("document " + doc.scrollWidth + " > " + window.innerWidth);
	for (const t of document.querySelectorAll("main table")) {
		if (t.offsetParent === null) continue; // in a closed <details>
		const p = t.parentElement;
		if (t.getBoundingClientRect().right > p.getBoundingClientRect().right + 1 || t.scrollWidth > t.clientWidth + 1)
			out.push((t.id || t.className || "table") + " " + Math.round(t.getBoundingClientRect().width) + " in " + Math.round(p.getBoundingClientRect().width));
	}
	return out;
})()`

// newBrowserAt opens Chromium at the given width.
func newBrowserAt(t *testing.T, e *env, width int) *browser {
	return &browser{browsertest.New(t, e.ts.URL, width, 900, 90*time.Second)}
}

// fits fails the test when something on the page sticks out sideways.
func (b *browser) fits(page string) {
	b.T.Helper()
	over, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](fitsJS))
	if err != nil {
		b.T.Fatal(err)
	}
	if len(over) > 0 {
		b.T.Errorf("%s does not fit the window: %s", page, strings.Join(over, "; "))
	}
}

// strings returns the texts of the elements sel.
func (b *browser) texts(sel string) []string {
	b.T.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(`+strconv.Quote(sel)+`)).map(e => e.textContent.trim())`))
	if err != nil {
		b.T.Fatal(err)
	}
	return v
}

// TestBrowserOverview: a coordinator's overview at 1,280 px fits the
// window (no table clipped or scrolled, the document no wider) and
// passes axe-core; it compares March–May 2026 with the same months of
// 2025 (18 accompagnements against 9: +100 %), sets the two vehicles
// side by side over the months, and then the two mediators; the filters
// are lists of the scope's teams, vehicles and mediators (none of the
// Vosges'), and choosing a vehicle in the list filters by it. A viewer
// gets no mediator list and no mediator series, even when asking.
func TestBrowserOverview(t *testing.T) {
	e := newEnv(t, false)
	bus54, _ := seed(t, e.st)
	seedMore(t, e.st, bus54)
	b := newBrowserAt(t, e, 1280)
	b.login("coord54@cd54.fr")
	b.Do("overview", chromedp.Navigate(b.Base+"/apercu?du=2026-03-01&au=2026-05-31"), chromedp.WaitVisible(css("#series-table")))
	b.Shot("hub-overview")
	b.fits("/apercu")
	b.Axe("/apercu")

	if got := b.texts("#cmp-accompagnements td"); strings.Join(got, "|") != "18|0|—|9|+100,0\u202f%" {
		t.Errorf("comparison of accompagnements: %q", got)
	}
	if got := b.texts("#cmp-activites td"); strings.Join(got, "|") != "7|0|—|2|+250,0\u202f%" {
		t.Errorf("comparison of activities: %q", got)
	}
	if d := b.Text("#tile-accompagnements .delta"); d != "+100,0\u202f% sur un an" {
		t.Errorf("tile: %q", d)
	}
	rows := b.texts("#series-table tbody tr")
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "Numéribus 54") || !strings.HasPrefix(rows[1], "Numéribus 54 bis") {
		t.Fatalf("series rows: %q", rows)
	}
	// Cells: June 2025 … February 2026, March, April, May, total.
	if got := b.texts("#series-table tbody tr:first-child td"); len(got) != 13 || strings.Join(got[8:], "|") != "0|15|0|2|17" {
		t.Errorf("Numéribus 54 over the months: %q", got)
	}
	if got := b.texts("#series-table tbody tr:nth-child(2) td"); len(got) != 13 || strings.Join(got[9:], "|") != "0|1|0|1" {
		t.Errorf("Numéribus 54 bis over the months: %q", got)
	}
	if got := b.texts("#series-table thead th"); got[1] != "juin 25" || got[12] != "mai 26" {
		t.Errorf("series months: %q", got)
	}
	if got := b.texts("#f-vehicule option"); strings.Join(got, "|") != "Tous les véhicules|Numéribus 54|Numéribus 54 bis" {
		t.Errorf("vehicle list: %q", got)
	}
	if got := b.texts("#f-mediateur option"); strings.Join(got, "|") != "Tous les médiateurs|Camille Martin|Léa Durand" {
		t.Errorf("mediator list: %q", got)
	}
	if got := b.texts("#f-equipe option"); strings.Join(got, "|") != "Toutes les équipes|cd54" {
		t.Errorf("team list: %q", got)
	}

	b.NextPage("by mediator", chromedp.Click(css("#series-switch")), "#series-table")
	if h := b.Text("#series-table thead th:first-child"); h != "Médiateur" {
		t.Fatalf("series by mediator: head %q", h)
	}
	if rows := b.texts("#series-table tbody th"); strings.Join(rows, "|") != "Camille Martin|Léa Durand" {
		t.Fatalf("mediators side by side: %q", rows)
	}
	b.fits("/apercu par médiateur")
	b.Axe("/apercu par médiateur")

	b.Do("choose a vehicle", chromedp.SetValue(css("#f-vehicule"), "Numéribus 54 bis"), chromedp.Click(css("#filter-submit")))
	b.WaitURL("vehicule=")
	b.Do("filtered", chromedp.WaitVisible(css("#tiles")))
	if v := b.Text("#tile-accompagnements .value"); v != "1" {
		t.Fatalf("overview of Numéribus 54 bis: %q accompagnements, want 1", v)
	}
	b.logout()

	b.login("lecteur@region.fr")
	b.Do("viewer", chromedp.Navigate(b.Base+"/apercu?du=2026-03-01&au=2026-05-31&serie=mediateur"), chromedp.WaitVisible(css("#series-table")))
	if h := b.HTML(); strings.Contains(h, `id="f-mediateur"`) || strings.Contains(h, "Camille Martin") || strings.Contains(h, `id="series-switch"`) {
		t.Fatal("a viewer sees mediators")
	}
	if got := b.texts("#f-vehicule option"); strings.Join(got, "|") != "Tous les véhicules|Numéribus 54|Numéribus 54 bis|Numéribus 88" {
		t.Errorf("viewer's vehicle list: %q", got)
	}
	b.fits("/apercu (lecteur)")
	b.Axe("/apercu (lecteur)")
}
