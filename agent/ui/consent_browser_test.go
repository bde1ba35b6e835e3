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

// consentStore is a store holding, when with is set, a followed person
// with a consent for follow-up and assessment, an activity with notes and
// an assessment; it is locked, as at the agent's start.
func consentStore(t *testing.T, with bool) (*store.Store, *domain.Beneficiary, *domain.Consent) {
	t.Helper()
	ctx := context.Background()
	st, _, err := store.Create(ctx, t.TempDir(), []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var b *domain.Beneficiary
	var c *domain.Consent
	if with {
		today := time.Now().Format(domain.DateLayout)
		b = &domain.Beneficiary{ID: ident.New(), Prenom: "Hélène", Nom: "Lefèvre", Telephone: "0612345678", Commune: "54395", Genre: "feminin"}
		c = &domain.Consent{ID: ident.New(), Beneficiaire: b.ID, Finalites: []string{domain.FinaliteSuivi, domain.FinaliteDiagnostic},
			Mode: "ecrit", Date: today, TexteVersion: ConsentTextVersion}
		a := &domain.Activity{ID: ident.New(), Type: "individuel", Date: today, Duree: 30, TypeLieu: "lieu_activite",
			Commune: "54395", Thematiques: []string{"email"}, Beneficiaire: &b.ID, Notes: "Rappeler Hélène"}
		d := &domain.Assessment{ID: ident.New(), Beneficiaire: b.ID, Date: today,
			Domaines: map[string]string{"information_donnees": "1"}, Commentaire: "veut écrire à sa fille"}
		if _, err := st.Save(ctx, b, c, a, d); err != nil {
			t.Fatal(err)
		}
	}
	st.Lock()
	return st, b, c
}

func unlockChrome(c *browsertest.Browser) {
	c.T.Helper()
	c.Do("unlock", chromedp.Navigate(c.Base+"/unlock"), chromedp.WaitVisible(css("#f-secret")),
		chromedp.SendKeys(css("#f-secret"), testPass), chromedp.Click(css("main form button[type=submit]")),
		chromedp.WaitVisible(css("#h-stops")))
}

// ticked counts the consent boxes and radios ticked on the page.
func ticked(c *browsertest.Browser) int {
	c.T.Helper()
	n, err := chromedp.Run(c.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('input[name^="consent."]:checked').length`))
	if err != nil {
		c.T.Fatal(err)
	}
	return n
}

// TestBrowserConsentUntickedThenSaved: the new followed person's form
// arrives with nothing ticked and the text to read above the boxes; saved
// without a choice it says what is missing and still ticks nothing; the
// mediator ticks follow-up and the written mode, and the consent is saved
// with them and the text's version. The consent form of a person already
// recorded starts unticked too.
func TestBrowserConsentUntickedThenSaved(t *testing.T) {
	st, _, _ := consentStore(t, false)
	c := newChrome(t, st)
	unlockChrome(c)

	c.Do("new followed person", chromedp.Navigate(c.Base+"/beneficiaires/nouveau?suivi=1"), chromedp.WaitVisible(css("#consent-text")))
	if n := ticked(c); n != 0 {
		t.Fatalf("%d consent boxes ticked in advance", n)
	}
	before, err := chromedp.Run(c.Ctx, chromedp.Evaluate[bool](
		`!!(document.getElementById("consent-text").compareDocumentPosition(document.getElementById("f-consent-finalites")) & Node.DOCUMENT_POSITION_FOLLOWING)`))
	if err != nil || !before {
		t.Fatalf("the text read to the person is not before the boxes (%v)", err)
	}
	if txt := c.Text("#consent-text"); !strings.Contains(txt, ConsentTextVersion) || !strings.Contains(txt, "changer d'avis à tout moment") {
		t.Fatalf("consent text: %q", txt)
	}
	c.Shot("13-consent-unticked")

	c.Do("save without a choice", chromedp.SendKeys(css("#f-prenom"), "Gaston"), chromedp.SendKeys(css("#f-nom"), "Lagaffe"),
		chromedp.Click(css("#beneficiary-form button[type=submit]")), chromedp.WaitVisible(css("#summary")))
	if n := ticked(c); n != 0 {
		t.Fatalf("after the error, %d consent boxes ticked", n)
	}
	if !strings.Contains(c.HTML(), `id="e-consent-mode"`) {
		t.Fatal("no error next to the mode")
	}
	if v, _ := chromedp.Run(c.Ctx, chromedp.Value(css("#f-nom"))); v != "Lagaffe" {
		t.Fatalf("typed name lost: %q", v)
	}

	c.Do("tick and save", chromedp.Click(css("#f-consent-finalites-suivi_nominatif")), chromedp.Click(css("#f-consent-mode-ecrit")),
		chromedp.Click(css("#beneficiary-form button[type=submit]")), chromedp.WaitVisible(css("#h-who")))
	if h := c.Text("#h-who"); h != "Gaston Lagaffe" {
		t.Fatalf("saved person: %q", h)
	}
	var got []*domain.Consent
	st.List(context.Background(), domain.KindConsent, false, func(it store.Item) error {
		got = append(got, it.Record.(*domain.Consent))
		return nil
	})
	if len(got) != 1 || !slices.Equal(got[0].Finalites, []string{domain.FinaliteSuivi}) || got[0].Mode != "ecrit" || got[0].TexteVersion != ConsentTextVersion {
		t.Fatalf("stored consents: %+v", got)
	}

	// Later, a consent for an assessment: that form starts unticked too.
	c.Do("consent later", chromedp.Click(css(`a[href$="/consentement"]`)), chromedp.WaitVisible(css("#consent-form")))
	if n := ticked(c); n != 0 {
		t.Fatalf("consent form: %d boxes ticked in advance", n)
	}
	c.Do("assessment consent", chromedp.Click(css("#f-consent-finalites-diagnostic")), chromedp.Click(css("#f-consent-mode-oral_trace")),
		chromedp.Click(css("#consent-form button[type=submit]")), chromedp.WaitVisible(css("#flash")))
	if f := c.Text("#flash"); !strings.Contains(f, "Consentement enregistré") {
		t.Fatalf("after saving: %q", f)
	}
}
