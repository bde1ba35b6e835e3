package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/agent/store"
	"numeribus/internal/browsertest"
)

// TestBrowserAxeFirstStart runs axe-core on the first-start pages in
// headless Chromium — the form empty and with its problems, « Quitter »
// from it, the recovery code — and checks the way a person goes through
// them with the keyboard's order: the form, then the code.
func TestBrowserAxeFirstStart(t *testing.T) {
	dir := t.TempDir()
	setup := NewSetup(SetupConfig{MinLength: 8, Quit: func() {}, Create: func(ctx context.Context, pass []byte) (string, error) {
		s, code, err := store.Create(ctx, dir, pass, store.Options{KDF: testKDF})
		if err != nil {
			return "", err
		}
		return code, s.Close()
	}})
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: setup.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := browsertest.New(t, "http://"+ln.Addr().String(), 1366, 768, 2*time.Minute)

	c.Do("first start", chromedp.Navigate(c.Base+"/"), chromedp.WaitVisible(css("#setup-form")))
	c.Axe("first start, empty")
	c.Shot("agent-first-start")
	c.Do("mistyped", chromedp.SendKeys(css("#f-passphrase"), "trois mots secrets"), chromedp.SendKeys(css("#f-confirm"), "trois mots secret"))
	c.NextPage("mistyped", chromedp.Click(css("#setup-form button[type=submit]")), "#summary")
	c.Axe("first start, with problems")
	if v, _ := chromedp.Run(c.Ctx, chromedp.Value(css("#f-passphrase"))); v != "" {
		t.Fatal("the passphrase typed is shown again")
	}
	c.NextPage("quit", chromedp.Click(css("footer form button")), "#stopped")
	c.Axe("first start, « Quitter »")

	c.Do("again", chromedp.Navigate(c.Base+"/"), chromedp.WaitVisible(css("#setup-form")),
		chromedp.SendKeys(css("#f-passphrase"), "trois mots secrets"), chromedp.SendKeys(css("#f-confirm"), "trois mots secrets"))
	c.NextPage("create", chromedp.Click(css("#setup-form button[type=submit]")), "#recovery-code")
	c.Axe("first start, recovery code")
	c.Shot("agent-first-start-code")
	if code := c.Text("#recovery-code"); len(strings.Split(code, "-")) < 4 {
		t.Fatalf("recovery code shown: %q", code)
	}
}
