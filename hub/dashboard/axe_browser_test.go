package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"numeribus/hub/plan"
	"numeribus/internal/browsertest"
)

// TestBrowserAxeEveryHubPage runs axe-core (internal/browsertest.Axe:
// WCAG 2.x A and AA, and best practices) on every page of the dashboard
// at 1,280 px, in the states people meet: the login and a wrong
// password, every report page filtered and refused, the map before and
// after an import, the tournées with their day list, a plan refused and
// made, a stop changed and cancelled, the printable report, the exports,
// the devices with an enrollment code and a revocation, the accounts
// with a refused and an accepted form, an account's page after each
// action, the 404 and 403 pages. Each page also fits the window (no
// table clipped or scrolled sideways). Any violation fails the test, and
// so does a page route of Handler that no state visits, so that a new
// page gets checked.
func TestBrowserAxeEveryHubPage(t *testing.T) {
	e := newEnv(t, false)
	bus54, _ := seed(t, e.st)
	seedMore(t, e.st, bus54)
	stops := planMany(t, e.st, 60)
	dir := t.TempDir()
	places := filepath.Join(dir, "lieux.csv")
	if err := os.WriteFile(places, placesFixture(t, "lieux-mediation-numerique.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &browser{browsertest.New(t, e.ts.URL, 1280, 900, 5*60e9)}
	covered := map[string]bool{}
	check := func(route, state string) {
		t.Helper()
		covered[route] = true
		b.fits(route + " — " + state)
		b.Axe(route + " — " + state)
	}
	visit := func(route, state, path, ready string) {
		t.Helper()
		b.Do(state, chromedp.Navigate(b.Base+path), chromedp.WaitVisible(css(ready)))
		check(route, state)
	}
	submit := func(route, state, button, ready string) {
		t.Helper()
		b.NextPage(state, chromedp.Click(css(button)), ready)
		check(route, state)
	}
	const period = "?du=2026-03-01&au=2026-05-31"

	visit("GET /login", "connexion", "/login", "#login-form")
	b.Do("wrong password", chromedp.SendKeys(css("#f-email"), "admin@hub.fr"), chromedp.SendKeys(css("#f-password"), "pas le bon"))
	submit("POST /login", "mot de passe faux", "#login-form button[type=submit]", "#page-error")
	b.Do("password", chromedp.SendKeys(css("#f-password"), testPass))
	b.NextPage("login", chromedp.Click(css("#login-form button[type=submit]")), "#who")
	covered["GET /{$}"] = true // redirects to the overview

	visit("GET /apercu", "filtré", "/apercu"+period, "#series-table")
	visit("GET /apercu", "par médiateur", "/apercu"+period+"&serie=mediateur", "#series-table")
	visit("GET /apercu", "date illisible", "/apercu?du=hier", "#report-error")
	visit("GET /couverture", "filtré", "/couverture"+period+"&territoire=54", "#tile-visitees")
	visit("GET /carte", "sans lieux", "/carte"+period+"&territoire=54", "#map")
	b.Do("upload", chromedp.SetUploadFiles(css("#f-fichier"), []string{places}))
	submit("POST /carte/lieux", "import", "#import-submit", "#flash")
	visit("GET /tournees", "période", "/tournees?du=2026-05-01&au=2026-07-31", "#planned")
	visit("GET /tournees", "un jour", "/tournees?du=2026-05-01&au=2026-07-31&jour=2026-05-10", "#planned")
	b.Do("bad plan", chromedp.SetValue(css("#p-team"), "cd54"), chromedp.SetValue(css("#p-vehicule"), "Numéribus 54"),
		chromedp.SetValue(css("#p-date"), "2026-07-02"), chromedp.SetValue(css("#p-debut"), "10:00"), chromedp.SetValue(css("#p-fin"), "09:00"),
		chromedp.SetValue(css("#p-lieu"), "Mairie"), chromedp.SetValue(css("#p-commune"), "Toul"))
	submit("POST /tournees/planifier", "refusé", "#plan-submit", "#plan-error")
	b.Do("good plan", chromedp.SetValue(css("#p-fin"), "12:00"))
	submit("POST /tournees/planifier", "planifié", "#plan-submit", "#plan-done")
	id := stops[20].ID.String()
	visit("GET /tournees/{id}/modifier", "formulaire", "/tournees/"+id+"/modifier", "#plan-form")
	b.Do("bad change", chromedp.SetValue(css("#p-commune"), "Nulle-Part-sur-Mer"))
	submit("POST /tournees/{id}/modifier", "refusé", "#plan-submit", "#plan-error")
	b.Do("good change", chromedp.SetValue(css("#p-commune"), "Nancy (54395)"), chromedp.SetValue(css("#p-lieu"), "Salle polyvalente"))
	submit("POST /tournees/{id}/modifier", "enregistré", "#plan-submit", "#plan-done")
	b.Do("to the day", chromedp.Navigate(b.Base+"/tournees?jour="+stops[21].Date+"&du=2026-05-01&au=2026-07-31"), chromedp.WaitVisible(css("#stop-"+stops[21].ID.String())))
	submit("POST /tournees/{id}/annuler", "annulé", "#stop-"+stops[21].ID.String()+" button.danger", "#plan-done")
	if got, _ := e.st.PlannedStops(context.Background(), plan.Filter{Team: "cd54"}); len(got) != 60 { // 60 + 1 planned − 1 cancelled
		t.Errorf("%d stops after planning one and cancelling one, want 60", len(got))
	}
	visit("GET /rapport", "un territoire", "/rapport"+period+"&territoire=54", "#page-1")
	visit("GET /exports", "filtré", "/exports"+period, "#filter-form")

	visit("GET /postes", "liste", "/postes", "#devices")
	b.Do("enroll", chromedp.SendKeys(css("#f-name"), "bus-99"), chromedp.SendKeys(css("#f-team"), "cd54"))
	submit("POST /postes/inscription", "code", "#enroll-form button[type=submit]", "#enroll-code")
	visit("GET /postes/{name}/revoquer", "confirmation", "/postes/bus-88/revoquer", "#revoke-form")
	submit("POST /postes/{name}/revoquer", "révoqué", "#revoke-form button[type=submit]", "#flash")

	visit("GET /utilisateurs", "liste et journal", "/utilisateurs", "#users")
	// A coordinator without a territory (the browser checks the address itself).
	b.Do("bad user", chromedp.SendKeys(css("#u-email"), "coordination@cd23.fr"), chromedp.SetValue(css("#u-role"), "coordinator"))
	submit("POST /utilisateurs", "refusé", "#user-form button[type=submit]", "#user-error")
	b.Do("good user", chromedp.SetValue(css("#u-email"), "financeur@region.fr"), chromedp.SetValue(css("#u-role"), "viewer"))
	submit("POST /utilisateurs", "créé", "#user-form button[type=submit]", "#password-shown")
	uid := strconv.FormatInt(e.userID("financeur@region.fr"), 10)
	visit("GET /utilisateurs/{id}", "compte", "/utilisateurs/"+uid, "#user-facts")
	submit("POST /utilisateurs/{id}/desactiver", "désactivé", "#disable-form button", "#enable-form")
	submit("POST /utilisateurs/{id}/reactiver", "réactivé", "#enable-form button", "#disable-form")
	submit("POST /utilisateurs/{id}/mot-de-passe", "mot de passe tiré", "#reset-form button[type=submit]", "#password-shown")
	b.Do("territories", chromedp.SetValue(css("#t-terr"), "54 88"))
	submit("POST /utilisateurs/{id}/territoires", "territoires", "#territories-form button[type=submit]", "#flash")

	visit("404", "page introuvable", "/nulle-part", "#error-message")
	submit("POST /logout", "déconnexion", "#logout-button", "#login-form")
	b.login("coord54@cd54.fr")
	visit("403", "rôle insuffisant", "/postes", "#error-message")

	for _, r := range hubPageRoutes(t) {
		if !covered[r] {
			t.Errorf("route %s: no page of it checked with axe", r)
		}
	}
}

// hubPageRoutes lists the routes of the dashboard that answer with a
// page — not the API, the static files nor the exported files — read
// from the package's sources.
func hubPageRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	re := regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+ [^"]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			p := strings.Fields(m[1])[1]
			if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/exports/") {
				continue
			}
			out = append(out, m[1])
		}
	}
	if !slices.Contains(out, "GET /apercu") || !slices.Contains(out, "GET /login") {
		t.Fatalf("no route found in the sources: %q", out)
	}
	return out
}
