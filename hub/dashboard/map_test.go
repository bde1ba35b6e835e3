package dashboard

import (
	"bytes"
	"context"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/hub/places"
	"numeribus/internal/browsertest"
)

// postFile sends a multipart form with one file, as the import form does.
func (e *env) postFile(c *http.Client, path, field, name string, content []byte) (int, string, *http.Response) {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile(field, name)
	fw.Write(content)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", e.ts.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res
}

func placesFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../places/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Who may import, and what a refused file leaves: a viewer is refused
// (403, audited), a wrong file changes nothing and the page says why in
// French, a good file replaces the list and is audited.
func TestMapImportRules(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	viewer := e.login("lecteur@region.fr")
	if code, _, _ := e.postFile(viewer, "/carte/lieux", "fichier", "lieux.csv", placesFixture(t, "lieux-mediation-numerique.csv")); code != http.StatusForbidden {
		t.Fatalf("viewer import: %d", code)
	}
	coord := e.login("coord54@cd54.fr")
	code, body, _ := e.postFile(coord, "/carte/lieux?territoire=54", "fichier", "activites.csv", placesFixture(t, "pas-une-liste.csv"))
	body = html.UnescapeString(body)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Import refusé, rien n'a changé") || !strings.Contains(body, "ni une liste de structures data·inclusion") {
		t.Fatalf("wrong file: %d\n%s", code, body)
	}
	if ps, _ := e.st.Places(ctx); len(ps) != 0 {
		t.Fatalf("a refused file stored %d places", len(ps))
	}
	code, _, res := e.postFile(coord, "/carte/lieux?territoire=54", "fichier", "structures.csv", placesFixture(t, "structures-data-inclusion.csv"))
	if code != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/carte?") || !strings.Contains(res.Header.Get("Location"), "territoire=54") {
		t.Fatalf("import: %d %s", code, res.Header.Get("Location"))
	}
	ps, _ := e.st.Places(ctx)
	imp, ok, _ := e.st.LastImport(ctx)
	if len(ps) != 5 || !ok || imp.Email != "coord54@cd54.fr" || imp.File != "structures.csv" || imp.Format != places.DataInclusionCSV || imp.Skipped != 1 {
		t.Fatalf("stored %d places, import %+v", len(ps), imp)
	}
	entries, _ := e.st.AuditLog(ctx, 100)
	var audited []string
	for _, a := range entries {
		audited = append(audited, string(a.Action)+" "+a.Email+" "+a.What)
	}
	all := strings.Join(audited, "\n")
	if !strings.Contains(all, "places_imported coord54@cd54.fr structures.csv") || !strings.Contains(all, "places_import_refused coord54@cd54.fr activites.csv") {
		t.Fatalf("audit:\n%s", all)
	}
	_, body, _ = e.get(coord, res.Header.Get("Location"))
	body = html.UnescapeString(body)
	if !strings.Contains(body, "5 lieux importés depuis « structures.csv »") {
		t.Fatalf("no flash after the import")
	}
}

var svgCommune = regexp.MustCompile(`<a href="#t-(\w+)" id="m-(\w+)" class="q(\d)" aria-label="([^"]*)"`)

// TestBrowserMap: a coordinator of Meurthe-et-Moselle opens the map of
// their département over March–May 2026 at 1,280 px: every commune is
// drawn, focusable with its name and figures, the table beside it has
// the same rows and is not clipped; the import form refuses a wrong
// file with a French message and takes the national list; a white zone
// opens the planning form with its commune; axe-core finds nothing on
// either state of the page.
func TestBrowserMap(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	dir := t.TempDir()
	for _, n := range []string{"pas-une-liste.csv", "lieux-mediation-numerique.csv"} {
		if err := os.WriteFile(dir+"/"+n, placesFixture(t, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := &browser{newBrowserSized(t, e, 1280, 900)}
	b.login("coord54@cd54.fr")
	b.Do("map", chromedp.Navigate(b.Base+"/carte?du=2026-03-01&au=2026-05-31&territoire=54"), chromedp.WaitVisible(css("#map")))
	ms := svgCommune.FindAllStringSubmatch(b.HTML(), -1)
	if len(ms) != 591 {
		t.Fatalf("%d communes drawn, want Meurthe-et-Moselle's 591", len(ms))
	}
	labels := map[string]string{}
	for _, m := range ms {
		labels[m[1]] = m[4]
	}
	if l := labels["54395"]; !strings.HasPrefix(l, "Nancy : 5 accompagnements, 0,05 pour 1 000 habitants") {
		t.Fatalf("Nancy's accessible name: %q", l)
	}
	if l := labels["54547"]; !strings.HasPrefix(l, "Vandœuvre-lès-Nancy : 12 accompagnements, 0,4 pour 1 000 habitants") {
		t.Fatalf("Vandœuvre's accessible name: %q", l)
	}
	// The table has a row per commune, with the same figures.
	rows := b.count("#map-table tbody tr")
	if rows != 591 {
		t.Fatalf("table rows %d", rows)
	}
	if s := b.Text("#t-54547"); !strings.Contains(s, "Vandœuvre-lès-Nancy") || !strings.Contains(s, "29\u202f942") || !strings.Contains(s, "12") || !strings.Contains(s, "0,4") {
		t.Fatalf("Vandœuvre's row: %q", s)
	}
	// Tab from the intro's link reaches the first commune of the map;
	// its accessible name is the label.
	b.Do("focus a commune", chromedp.Focus(css("#m-54547")))
	name, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.activeElement.id + "|" + document.activeElement.getAttribute("aria-label")`))
	if err != nil || !strings.HasPrefix(name, "m-54547|Vandœuvre-lès-Nancy : 12 accompagnements") {
		t.Fatalf("focused: %q %v", name, err)
	}
	b.Do("tab", chromedp.KeyEvent("\t"))
	next, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	if !strings.HasPrefix(next, "m-") || next == "m-54547" {
		t.Fatalf("Tab from a commune went to %q, want the next commune", next)
	}
	// Nothing clipped at 1,280 px: the table's region scrolls only
	// vertically.
	clip, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`(() => { const w = document.querySelector("#map-table-wrap"); return w.scrollWidth > w.clientWidth + 1 })()`))
	if clip {
		dims, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`(() => { const w = document.querySelector("#map-table-wrap"); return w.scrollWidth + " " + w.clientWidth + " " + [...document.querySelectorAll("#map-table thead th")].map(x => x.offsetWidth).join(",") + " svg " + document.querySelector("#map").getBoundingClientRect().width })()`))
		t.Fatalf("the table is clipped horizontally at 1,280 px: %s", dims)
	}
	if s := b.Text("#map-credit"); s != "Contours : IGN Admin Express 2018 simplifié, Licence Ouverte" {
		t.Fatalf("credit %q", s)
	}
	if s := b.Text("#white-noplaces"); !strings.Contains(s, "Importez la liste nationale") {
		t.Fatalf("white zones before an import: %q", s)
	}
	b.Axe("/carte sans lieux")
	b.Shot("07-carte")

	// A wrong file: refused, in French, nothing stored.
	// NextPage: the answer is a new page, and an element found while it
	// loads may be gone from the document it ends with.
	b.Do("wrong file", chromedp.SetUploadFiles(css("#f-fichier"), []string{dir + "/pas-une-liste.csv"}))
	b.NextPage("wrong file", chromedp.Click(css("#import-submit")), "#import-error")
	if s := b.Text("#import-error"); !strings.Contains(s, "Import refusé, rien n'a changé") || !strings.Contains(s, "il faut les colonnes « nom » et « code_insee »") {
		t.Fatalf("refusal: %q", s)
	}
	if ps, _ := e.st.Places(context.Background()); len(ps) != 0 {
		t.Fatal("a refused file was stored")
	}
	// The national list (the standard's CSV): imported, white zones shown.
	b.Do("good file", chromedp.SetUploadFiles(css("#f-fichier"), []string{dir + "/lieux-mediation-numerique.csv"}))
	b.NextPage("good file", chromedp.Click(css("#import-submit")), "#flash")
	if s := b.Text("#flash"); !strings.Contains(s, "3 lieux importés") {
		t.Fatalf("flash %q", s)
	}
	if p := b.Location(); !strings.Contains(p, "territoire=54") {
		t.Fatalf("after the import: %s", p)
	}
	b.Do("white zones", chromedp.WaitVisible(css("#white-table")))
	if n := b.count("#map .places rect"); n != 2 {
		t.Fatalf("%d places drawn, want Nancy's and Baccarat's", n)
	}
	first := b.Text("#white-table tbody tr:first-child th")
	b.Axe("/carte avec lieux")
	b.Shot("08-carte-zones-blanches")
	// Its link opens the planning form with the commune filled in.
	code := first[strings.LastIndex(first, "(")+1 : len(first)-1]
	b.NextPage("plan there", chromedp.Click(css("#white-table tbody tr:first-child a")), "#plan-form")
	v, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.querySelector("#p-commune").value`))
	// The form shows the commune as its search does: "Nom (code)".
	if !strings.HasSuffix(v, " ("+code+")") || !strings.HasPrefix(b.Location(), "/tournees?commune="+code) {
		t.Fatalf("planning form: commune %q at %s, want %s", v, b.Location(), code)
	}
}

// count returns how many elements match sel.
func (b *browser) count(sel string) int {
	b.T.Helper()
	n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+"`"+sel+"`"+`).length`))
	if err != nil {
		b.T.Fatal(err)
	}
	return n
}

func newBrowserSized(t *testing.T, e *env, w, h int) *browsertest.Browser {
	return browsertest.New(t, e.ts.URL, w, h, 120*time.Second)
}
