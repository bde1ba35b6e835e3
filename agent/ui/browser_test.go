package ui

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/agent/store"
	"numeribus/internal/browsertest"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

type css = browsertest.CSS

// TestBrowserMediatorJourney drives the UI in headless Chromium the way a
// mediator does: unlock, record an individual activity and a workshop,
// see a validation error keep what was typed, record a consented
// beneficiary and assessment, find them, withdraw the consent and see the
// data gone, lock and see no personal data. It saves PNG screenshots of
// the main pages (in $NUMERIBUS_SCREENSHOTS when set).
func TestBrowserMediatorJourney(t *testing.T) {
	st, _, err := store.Create(context.Background(), t.TempDir(), []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Someone else followed, to check that locking hides them.
	other := &domain.Beneficiary{ID: ident.New(), Prenom: "Marcel", Nom: "Dupontel", Commune: "54395"}
	if _, err := st.Save(context.Background(), other, &domain.Consent{ID: ident.New(), Beneficiaire: other.ID,
		Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: time.Now().Format(domain.DateLayout)}); err != nil {
		t.Fatal(err)
	}
	st.Lock()

	c := newChrome(t, st)
	do, text, html, shot, location, base, ctx := c.Do, c.Text, c.HTML, c.Shot, c.Location, c.Base, c.Ctx

	// Unlock.
	do("open", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#f-secret")))
	if p := location(); p != "/unlock" {
		t.Fatalf("locked start page: %s", p)
	}
	shot("01-unlock")
	do("wrong passphrase", chromedp.SendKeys(css("#f-secret"), "mauvaise"), chromedp.Click(css("main form button[type=submit]")),
		chromedp.WaitVisible(css("#page-error")))
	do("unlock", chromedp.SendKeys(css("#f-secret"), testPass), chromedp.Click(css("main form button[type=submit]")),
		chromedp.WaitVisible(css("#h-stops")))
	shot("02-today")

	// An individual activity: preset duration, commune by name through
	// the autocomplete, a theme.
	do("individual activity", chromedp.Navigate(base+"/activites/nouvelle?type=individuel"), chromedp.WaitVisible(css("#activity-form")),
		chromedp.Click(css(`button.preset[data-value="45"]`)),
		chromedp.SendKeys(css("#f-commune"), "Nanc"),
		chromedp.WaitReady(css("#communes-list option")),
		chromedp.SetValue(css("#f-commune"), "54395"),
		chromedp.Click(css("#f-thematiques-email")),
		chromedp.Click(css("#f-autonomie-autonome")))
	if v, _ := chromedp.Run(ctx, chromedp.Value(css("#f-duree"))); v != "45" {
		t.Fatalf("duration preset gave %q", v)
	}
	shot("03-activity-form")
	do("save activity", chromedp.Click(css("#activity-form button[type=submit]")), chromedp.WaitVisible(css("#flash")))
	if f := text("#flash"); !strings.Contains(f, "Activité enregistrée") {
		t.Fatalf("after saving: %q", f)
	}

	// A validation error keeps what was typed.
	do("invalid activity", chromedp.Navigate(base+"/activites/nouvelle?type=individuel"), chromedp.WaitVisible(css("#activity-form")),
		chromedp.SendKeys(css("#f-commune"), "54395"),
		chromedp.SendKeys(css("#f-notes"), "texte à garder"),
		chromedp.Click(css("#f-materiel-tablette")),
		chromedp.Click(css("#activity-form button[type=submit]")), chromedp.WaitVisible(css("#summary")))
	if v, _ := chromedp.Run(ctx, chromedp.Value(css("#f-notes"))); v != "texte à garder" {
		t.Fatalf("notes after the error: %q", v)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(css("#f-commune"))); v != "54395" {
		t.Fatalf("commune after the error: %q", v)
	}
	if !strings.Contains(text("#e-duree"), "durée") || !strings.Contains(text("#e-thematiques"), "thématique") {
		t.Fatal("problems not next to their fields")
	}
	if a, _ := chromedp.Run(ctx, chromedp.AttributeValue(css("#f-duree"), "aria-describedby")); !strings.Contains(a.Value, "e-duree") {
		t.Fatalf("duree aria-describedby = %q", a.Value)
	}
	if !strings.Contains(html(), `id="f-materiel-tablette" name="materiel" value="tablette" checked`) {
		t.Fatal("ticked box lost after the error")
	}
	shot("04-validation-error")

	// A workshop: no personal data asked.
	do("workshop", chromedp.Navigate(base+"/activites/nouvelle?type=collectif"), chromedp.WaitVisible(css("#activity-form")),
		chromedp.Click(css(`button.preset[data-value="90"]`)),
		chromedp.SendKeys(css("#f-commune"), "54395"),
		chromedp.SendKeys(css("#f-titre_atelier"), "Déjouer les arnaques"),
		chromedp.SendKeys(css("#f-participants-total"), "7"),
		chromedp.SendKeys(css("#f-participants-genre-feminin"), "4"),
		chromedp.Click(css("#f-thematiques-securite_numerique")))
	shot("05-workshop-form")
	do("save workshop", chromedp.Click(css("#activity-form button[type=submit]")), chromedp.WaitVisible(css("#flash")))

	// A followed beneficiary with consent, then an assessment.
	do("beneficiary", chromedp.Navigate(base+"/beneficiaires/nouveau?suivi=1"), chromedp.WaitVisible(css("#beneficiary-form")),
		chromedp.Click(css("#f-consent-finalites-suivi_nominatif")),
		chromedp.Click(css("#f-consent-finalites-diagnostic")),
		chromedp.Click(css("#f-consent-mode-oral_trace")),
		chromedp.SendKeys(css("#f-prenom"), "Hélène"),
		chromedp.SendKeys(css("#f-nom"), "Lefèvre"),
		chromedp.SendKeys(css("#f-telephone"), "06 12 34 56 78"))
	shot("06-consent")
	do("save beneficiary", chromedp.Click(css("#beneficiary-form button[type=submit]")), chromedp.WaitVisible(css("#h-who")))
	benefPage := location()
	do("assessment", chromedp.Click(css(`a[href$="/diagnostic"]`)), chromedp.WaitVisible(css("#assessment-form")),
		chromedp.Click(css("#f-domaines-information_donnees-1")),
		chromedp.Click(css("#f-domaines-protection_securite-0")),
		chromedp.SendKeys(css("#f-commentaire"), "veut écrire à sa fille"))
	shot("07-assessment")
	do("save assessment", chromedp.Click(css("#assessment-form button[type=submit]")), chromedp.WaitVisible(css("#flash")))
	if !strings.Contains(text("main"), "Information et données : Compétences de base") {
		t.Fatal("assessment not on the person's page")
	}

	// Search by name, without accents.
	do("search", chromedp.Navigate(base+"/beneficiaires"), chromedp.WaitVisible(css("#f-q")),
		chromedp.SendKeys(css("#f-q"), "helene"), chromedp.Click(css("main form button[type=submit]")),
		chromedp.WaitVisible(css("#h-results")))
	if r := text("main"); !strings.Contains(r, "Hélène Lefèvre") || strings.Contains(r, "Dupontel") {
		t.Fatalf("search results: %q", r)
	}
	shot("08-search")
	do("open result", chromedp.Click(css(".results a")), chromedp.WaitVisible(css("#h-who")))
	shot("09-beneficiary")

	// Withdraw the consent: identity and assessment erased.
	do("withdraw", chromedp.Click(css("button.danger")), chromedp.WaitVisible(css("#withdraw-confirm")))
	do("confirm withdrawal", chromedp.Click(css("#withdraw-confirm")), chromedp.WaitVisible(css("#flash")))
	if f := text("#flash"); !strings.Contains(f, "effacées") {
		t.Fatalf("withdrawal message: %q", f)
	}
	if m := text("main"); strings.Contains(m, "Hélène") || strings.Contains(m, "Lefèvre") || strings.Contains(m, "sa fille") ||
		strings.Contains(m, "Compétences de base") {
		t.Fatalf("data still shown after withdrawal: %q", m)
	}
	shot("10-withdrawn")

	// Lock: nothing personal anywhere.
	do("other person", chromedp.Navigate(base+"/beneficiaires/"+other.ID.String()), chromedp.WaitVisible(css("#h-who")))
	if !strings.Contains(text("#h-who"), "Dupontel") {
		t.Fatal("second person not shown while unlocked")
	}
	do("lock", chromedp.Click(css("#lock-button")), chromedp.WaitVisible(css("#f-secret")))
	if !st.Locked() {
		t.Fatal("store not locked")
	}
	for _, p := range []string{"/beneficiaires/" + other.ID.String(), benefPage, "/"} {
		do("locked "+p, chromedp.Navigate(base+p), chromedp.WaitVisible(css("#f-secret")))
		if loc := location(); loc != "/unlock" {
			t.Fatalf("locked: %s shows %s", p, loc)
		}
		if h := html(); strings.Contains(h, "Dupontel") || strings.Contains(h, "Marcel") {
			t.Fatalf("locked page %s shows personal data", p)
		}
	}
	shot("11-locked")
	t.Logf("screenshots in %s", c.Shots)
}

// newChrome serves the UI for st on a loopback port and opens a
// browser on it, at the 1366×768 of the vehicles' laptops; both stop at
// the end of the test.
func newChrome(t *testing.T, st *store.Store) *browsertest.Browser {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- New(Config{Store: st}).Serve(srvCtx, ln) }()
	t.Cleanup(func() {
		stopSrv()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return browsertest.New(t, "http://"+ln.Addr().String(), 1366, 768, 60*time.Second)
}

// TestBrowserStopDemarcheZoomKeyboard starts a procedure from today's
// tour stop (date, commune and stop filled in), checks the form at 200 %
// zoom on a 1366×768 screen (no horizontal scrolling) and that keyboard
// focus is visible, and finds the saved activity tied to its stop.
func TestBrowserStopDemarcheZoomKeyboard(t *testing.T) {
	ctx := context.Background()
	st, _, err := store.Create(ctx, t.TempDir(), []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 3", Date: time.Now().Format(domain.DateLayout),
		HeureDebut: "09:30", HeureFin: "12:00", Lieu: "Place de la mairie", Commune: "54395"}
	if _, err := st.Save(ctx, stop); err != nil {
		t.Fatal(err)
	}
	st.Lock()
	c := newChrome(t, st)

	c.Do("unlock", chromedp.Navigate(c.Base+"/unlock"), chromedp.WaitVisible(css("#f-secret")),
		chromedp.SendKeys(css("#f-secret"), testPass), chromedp.Click(css("main form button[type=submit]")),
		chromedp.WaitVisible(css("#h-stops")))
	if !strings.Contains(c.Text("main"), "Place de la mairie") {
		t.Fatal("today's stop not listed")
	}

	// Keyboard: the first Tab lands on the skip link, visibly outlined.
	c.Do("tab", chromedp.KeyEvent("\t"))
	focus, err := chromedp.Run(c.Ctx, chromedp.Evaluate[string](
		`(e => e.className + "|" + getComputedStyle(e).outlineStyle + "|" + getComputedStyle(e).outlineWidth)(document.activeElement)`))
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(focus, "|"); len(parts) != 3 || parts[0] != "skip" || parts[1] == "none" || parts[2] == "0px" {
		t.Fatalf("first Tab: focused %q (class|outline style|width), want the skip link with a visible outline", focus)
	}

	c.Do("start at the stop", chromedp.Click(css(`a[href*="type=demarche&arret=`+stop.ID.String()+`"]`)),
		chromedp.WaitVisible(css("#activity-form")))
	if v, _ := chromedp.Run(c.Ctx, chromedp.Value(css("#f-commune"))); v != "54395" {
		t.Fatalf("commune from the stop: %q", v)
	}

	// 200 % zoom of a 1366×768 screen: a 683×384 CSS-pixel viewport.
	c.Do("zoom 200%", chromedp.EmulateViewport(683, 384, chromedp.EmulateScale(2)), chromedp.WaitVisible(css("#activity-form")))
	over, err := chromedp.Run(c.Ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if over > 0 {
		t.Fatalf("at 200%% zoom the page scrolls sideways by %d px", over)
	}
	c.Do("fill", chromedp.Click(css(`button.preset[data-value="30"]`)),
		chromedp.Click(css("#f-demarches-social_sante")),
		chromedp.SendKeys(css("#f-precisions_demarche"), "demande de RSA"))
	c.Shot("12-demarche-zoom-200")
	c.Do("save", chromedp.Click(css("#activity-form button[type=submit]")), chromedp.WaitVisible(css("#flash")))
	if f := c.Text("#flash"); !strings.Contains(f, "Activité enregistrée") {
		t.Fatalf("after saving: %q", f)
	}

	var got *domain.Activity
	if err := st.List(ctx, domain.KindActivity, false, func(it store.Item) error {
		got = it.Record.(*domain.Activity)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Arret == nil || *got.Arret != stop.ID || got.Commune != "54395" || got.Date != stop.Date ||
		!slices.Contains(got.Thematiques, domain.ThemeDemarches) || !slices.Equal(got.Demarches, []string{"social_sante"}) ||
		got.PrecisionsDemarche != "demande de RSA" || got.Duree != 30 {
		t.Fatalf("saved activity: %+v", got)
	}
}
