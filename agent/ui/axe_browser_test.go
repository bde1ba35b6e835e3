package ui

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"numeribus/agent/store"
	"numeribus/internal/browsertest"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// TestBrowserAxeEveryPage runs axe-core (internal/browsertest.Axe: WCAG
// 2.x A and AA, and best practices) on every page of the UI in the
// states a mediator meets: locked and after a wrong passphrase, today
// with and without tour stops, each form empty and shown again with its
// problems, a person's page anonymous and followed (consents, history,
// assessments) and after a withdrawal, search empty, with results and
// without, a message after « Synchroniser maintenant »; with the header
// of a device never enrolled, then enrolled with a sync problem and
// changes the hub refused. Any violation fails the test. It also checks
// the header stays compact at 200 % zoom (axe runs there too), and that
// every page route of Handler is visited, so that a new page gets checked.
func TestBrowserAxeEveryPage(t *testing.T) {
	ctx := context.Background()
	st, _, err := store.Create(ctx, t.TempDir(), []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	anon := &domain.Beneficiary{ID: ident.New(), Commune: "54395", Genre: "masculin"}
	fol := &domain.Beneficiary{ID: ident.New(), Prenom: "Hélène", Nom: "Lefèvre", Telephone: "0612345678", Email: "h@example.org",
		AnneeNaissance: 1950, Adresse: "1 rue de la Paix", Notes: "Préfère le matin", Commune: "54395", Genre: "feminin",
		TrancheAge: "soixante_soixante_neuf", StatutSocial: "retraite"}
	cons := &domain.Consent{ID: ident.New(), Beneficiaire: fol.ID, Finalites: []string{domain.FinaliteSuivi, domain.FinaliteDiagnostic},
		Mode: "ecrit", Date: "2026-03-01"}
	old := &domain.Consent{ID: ident.New(), Beneficiaire: fol.ID, Finalites: []string{domain.FinaliteSuivi}, Mode: "oral_trace",
		Date: "2025-01-10"}
	act := &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-01", Duree: 30, TypeLieu: "lieu_activite",
		Commune: "54395", Thematiques: []string{"email"}, Beneficiaire: &fol.ID}
	asm := &domain.Assessment{ID: ident.New(), Beneficiaire: fol.ID, Date: "2026-03-01", AutonomieGlobale: "partiellement_autonome",
		Domaines: map[string]string{"information_donnees": "1", "communication_collaboration": "2"}}
	today := &domain.Activity{ID: ident.New(), Type: "collectif", Date: time.Now().Format(domain.DateLayout), Duree: 90,
		TypeLieu: "lieu_activite", Commune: "54395", Thematiques: []string{"email"}, Niveau: "debutant",
		Participants: &domain.Participants{Total: 5}}
	if _, err := st.Save(ctx, anon, fol, cons, old, act, asm, today); err != nil {
		t.Fatal(err)
	}
	if _, err := st.WithdrawConsent(ctx, old.ID, nil, "2025-06-01"); err != nil {
		t.Fatal(err)
	}
	st.Lock()

	// Quit set, as in `agent app`: « Quitter » on every page.
	c := axeChrome(t, Config{Store: st, Sync: func(context.Context) error { return nil }, Quit: func() {}})
	covered := map[string]bool{}
	// check runs axe on the page, once loaded, and notes its route.
	check := func(route, state string) {
		t.Helper()
		covered[route] = true
		c.Axe(route + " — " + state)
	}
	visit := func(route, state, path, ready string) {
		t.Helper()
		c.Do(state, chromedp.Navigate(c.Base+path), chromedp.WaitVisible(css(ready)))
		check(route, state)
	}
	// submit sends the page's form sel and waits for ready on the answer.
	submit := func(route, state, sel, ready string) {
		t.Helper()
		c.NextPage(state, chromedp.Click(css(sel+" button[type=submit]")), ready)
		check(route, state)
	}

	visit("GET /unlock", "locked", "/", "#f-secret")
	c.Do("wrong passphrase", chromedp.SendKeys(css("#f-secret"), "mauvaise"))
	submit("POST /unlock", "wrong passphrase", "main form", "#page-error")
	c.Do("unlock", chromedp.SendKeys(css("#f-secret"), testPass))
	c.NextPage("unlock", chromedp.Click(css("main form button[type=submit]")), "#h-stops")
	check("GET /{$}", "no tour stop, device not enrolled")

	// From here the header is the busiest it gets: enrolled, a failed
	// round, a change the hub refused, « Synchroniser maintenant ».
	hubKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	_, pk, _ := ed25519.GenerateKey(rand.Reader)
	if err := st.Enroll(ctx, store.Hub{URL: "wss://hub.example/sync", HubKey: hubKey.PublicKey().Bytes(), DeviceName: "bus-1",
		Team: "cd54", PushKey: pk}, dk); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSync(ctx, time.Now(), "hub unreachable: dial tcp: connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := st.Reject(ctx, []wire.Rejection{{Seq: 1, Code: wire.CodeClockAhead, Reason: "x",
		Ahead: uint64(3 * 24 * time.Hour / time.Millisecond)}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	stop := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 3", Date: time.Now().Format(domain.DateLayout),
		HeureDebut: "09:30", HeureFin: "12:00", Lieu: "Place de la mairie", Commune: "54395"}
	if _, err := st.Save(ctx, stop); err != nil {
		t.Fatal(err)
	}
	visit("GET /{$}", "a tour stop, sync problem and refused change", "/", "#h-stops")
	c.NextPage("sync now", chromedp.Click(css("#sync form button[type=submit]")), "#flash")
	check("POST /sync", "after « Synchroniser maintenant »")

	for _, flow := range []string{"individuel", "demarche", "collectif"} {
		visit("GET /activites/nouvelle", flow+", empty", "/activites/nouvelle?type="+flow, "#activity-form")
		if flow == "collectif" {
			c.Do("bad count", chromedp.SendKeys(css("#f-participants-genre-feminin"), "x"))
		}
		submit("POST /activites/nouvelle", flow+", with problems", "#activity-form", "#summary")
	}
	visit("GET /activites/nouvelle", "from a tour stop", "/activites/nouvelle?type=individuel&arret="+stop.ID.String(), "#activity-form")
	visit("GET /activites/nouvelle", "for a followed person", "/activites/nouvelle?type=demarche&beneficiaire="+fol.ID.String(), "#activity-form")

	visit("GET /beneficiaires/nouveau", "anonymous, empty", "/beneficiaires/nouveau", "#beneficiary-form")
	c.Do("bad commune", chromedp.SendKeys(css("#f-commune"), "Atlantide"))
	submit("POST /beneficiaires/nouveau", "anonymous, with problems", "#beneficiary-form", "#summary")
	visit("GET /beneficiaires/nouveau", "followed, empty", "/beneficiaires/nouveau?suivi=1", "#beneficiary-form")
	c.Do("no consent", chromedp.Click(css("#f-consent-finalites-suivi_nominatif")), chromedp.SendKeys(css("#f-annee_naissance"), "deux"))
	submit("POST /beneficiaires/nouveau", "followed, with problems", "#beneficiary-form", "#summary")

	visit("GET /beneficiaires/{id}", "anonymous", "/beneficiaires/"+anon.ID.String(), "#h-who")
	visit("GET /beneficiaires/{id}", "followed: consents, history, assessment", "/beneficiaires/"+fol.ID.String(), "#h-who")

	visit("GET /beneficiaires/{id}/consentement", "empty", "/beneficiaires/"+anon.ID.String()+"/consentement", "#consent-form")
	c.Do("no consent", chromedp.Click(css("#f-consent-finalites-suivi_nominatif")))
	submit("POST /beneficiaires/{id}/consentement", "with problems", "#consent-form", "#summary")

	visit("GET /beneficiaires/{id}/diagnostic", "empty", "/beneficiaires/"+fol.ID.String()+"/diagnostic", "#assessment-form")
	c.Do("bad date", chromedp.SetValue(css("#f-date"), "31/02/2026"))
	submit("POST /beneficiaires/{id}/diagnostic", "with problems", "#assessment-form", "#summary")

	visit("GET /beneficiaires", "empty", "/beneficiaires", "#f-q")
	c.Do("search", chromedp.SendKeys(css("#f-q"), "helene"))
	submit("POST /beneficiaires", "results", "main form", "#h-results")
	c.Do("search nobody", chromedp.SetValue(css("#f-q"), "zzzz"))
	submit("POST /beneficiaires", "no result", "main form", "#h-results")
	if !strings.Contains(c.Text("main"), fr["no_results"]) {
		t.Fatal("search for nobody found someone")
	}

	visit("GET /notice", "the information notice", "/notice", "#notice")

	// Forms kept at a lock: one waiting, then abandoned.
	if err := st.SaveDraft(ctx, "/beneficiaires/nouveau", map[string][]string{"genre": {"feminin"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	visit("GET /brouillons", "one form kept", "/brouillons", "#h-drafts")
	c.NextPage("abandon the draft", chromedp.Click(css(`form[action$="/abandon"] button`)), "#flash")
	check("POST /brouillons/{id}/abandon", "abandoned, none left")

	c.Do("person", chromedp.Navigate(c.Base+"/beneficiaires/"+fol.ID.String()), chromedp.WaitVisible(css("#h-who")))
	c.NextPage("join today's workshop", chromedp.Click(css(`form[action$="/participants"] button`)), "#flash")
	check("POST /ateliers/{id}/participants", "named among a workshop's participants")
	c.NextPage("withdraw: asked first", chromedp.Click(css("button.danger")), "#withdraw-form")
	check("GET /consentements/{id}/retrait", "confirmation")
	c.NextPage("withdraw confirmed", chromedp.Click(css("#withdraw-confirm")), "#flash")
	check("POST /consentements/{id}/retrait", "after the withdrawal")

	// 200 % zoom of the vehicles' 1366×768 screens: 683×384 CSS pixels.
	c.Do("zoom 200%", chromedp.EmulateViewport(683, 384, chromedp.EmulateScale(2)))
	visit("GET /{$}", "200 % zoom", "/", "#h-stops")
	headerFits(t, c, "today")
	// Folded, the menu and the sync details open from the keyboard, one
	// at a time, over the page; Escape closes and focuses the summary.
	shown := func(sel string) string {
		return `document.querySelector(` + strconv.Quote(sel) + `).checkVisibility()`
	}
	c.Do("open the menu", chromedp.Focus(css(".menu > summary")), chromedp.KeyEvent(kb.Enter))
	c.WaitJS("menu open", shown(`.menu nav a[href="/beneficiaires/nouveau"]`))
	check("GET /{$}", "200 % zoom, menu open")
	c.Shot("axe-zoom-200-menu")
	c.Do("close the menu", chromedp.KeyEvent(kb.Escape))
	c.WaitJS("menu closed, its summary focused", `!`+shown(".menu nav")+` && document.activeElement.matches(".menu > summary")`)
	c.Do("open the sync details", chromedp.Focus(css("#sync summary")), chromedp.KeyEvent(" "))
	c.WaitJS("sync details open", shown("#sync form button"))
	check("GET /{$}", "200 % zoom, sync details open")
	c.Shot("axe-zoom-200-sync")
	c.Do("open the menu over them", chromedp.Click(css(".menu > summary")))
	c.WaitJS("menu open, sync details closed", shown(".menu nav")+` && !`+shown("#sync form button"))
	// Back to 100 %: everything shown again, no summary; and folded again.
	c.Do("zoom 100%", chromedp.EmulateViewport(1366, 768))
	c.WaitJS("unfolded at 100 %", shown("#sync form button")+` && `+shown(".menu nav")+` && !`+shown(".menu > summary"))
	c.Do("zoom 200% again", chromedp.EmulateViewport(683, 384, chromedp.EmulateScale(2)))
	c.WaitJS("folded at 200 %", `!`+shown(".menu nav")+` && !`+shown("#sync form button"))
	c.NextPage("lock", chromedp.Click(css("#lock-button")), "#f-secret")
	check("POST /lock", "locked, 200 % zoom")
	headerFits(t, c, "unlock")
	submit("POST /quitter", "stopped (« Quitter »)", "footer form", "#stopped")

	for _, r := range pageRoutes(t) {
		if !covered[r] {
			t.Errorf("route %s: no page of it checked with axe", r)
		}
	}
}

// headerFits checks that the header takes at most a quarter of the
// viewport's height and that the page does not scroll sideways.
func headerFits(t *testing.T, c *browsertest.Browser, page string) {
	t.Helper()
	m, err := chromedp.Run(c.Ctx, chromedp.Evaluate[[]float64](`[document.querySelector("header.top").getBoundingClientRect().height,
		innerHeight, document.documentElement.scrollWidth - document.documentElement.clientWidth]`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s at 200 %% zoom: header %.0f px of %.0f", page, m[0], m[1])
	if m[0] > m[1]/4 {
		t.Errorf("%s at 200 %% zoom: the header is %.0f px high, %.0f %% of the %.0f px viewport (at most 25 %%)", page, m[0], 100*m[0]/m[1], m[1])
	}
	if m[2] > 0 {
		t.Errorf("%s at 200 %% zoom: the page scrolls sideways by %.0f px", page, m[2])
	}
	c.Shot("axe-zoom-200-" + page)
}

// pageRoutes lists the routes of Handler that answer with a page (not
// the API nor the static files), read from server.go.
func pageRoutes(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+ [^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		// POST /brouillon answers app.js with no page.
		if p := strings.Fields(m[1])[1]; !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/static/") && m[1] != "POST /brouillon" {
			out = append(out, m[1])
		}
	}
	if !slices.Contains(out, "GET /unlock") {
		t.Fatalf("no route found in server.go: %q", out)
	}
	return out
}

// axeChrome serves the UI with cfg on a loopback port and opens a
// browser on it at 1366×768, with time for axe on every page.
func axeChrome(t *testing.T, cfg Config) *browsertest.Browser {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- New(cfg).Serve(srvCtx, ln) }()
	t.Cleanup(func() {
		stopSrv()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return browsertest.New(t, "http://"+ln.Addr().String(), 1366, 768, 4*time.Minute)
}
