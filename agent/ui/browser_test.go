package ui

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

type css = chromedp.CSS

// chromiumPath finds a Chromium; without one the browser tests fail on
// CI (env CI set) and skip, saying so, elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("browser tests need Chromium (apt-get install -y chromium) and CI is set")
	}
	t.Skip("browser tests skipped: no Chromium found (apt-get install -y chromium); they run when it is installed")
	return ""
}

// TestBrowserMediatorJourney drives the UI in headless Chromium the way a
// mediator does: unlock, record an individual activity and a workshop,
// see a validation error keep what was typed, record a consented
// beneficiary and assessment, find them, withdraw the consent and see the
// data gone, lock and see no personal data. It saves PNG screenshots of
// the main pages (in $NUMERIBUS_SCREENSHOTS when set).
func TestBrowserMediatorJourney(t *testing.T) {
	exe := chromiumPath(t)
	shots := os.Getenv("NUMERIBUS_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

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

	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- New(Config{Store: st}).Serve(srvCtx, ln) }()
	defer func() {
		stopSrv()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1366, 768))
	limit, cancelLimit := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelLimit()
	actx, cancelAlloc := chromedp.NewExecAllocator(limit, opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	html := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.OuterHTML(css("html")))
		if err != nil {
			t.Fatalf("page HTML: %v", err)
		}
		return s
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	location := func() string {
		t.Helper()
		u, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(u, base)
	}

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
	do("withdraw", chromedp.Click(css("button.danger")), chromedp.WaitVisible(css("#flash")))
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
	t.Logf("screenshots in %s", shots)
}
