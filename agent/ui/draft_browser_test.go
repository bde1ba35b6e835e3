package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/agent/store"
	"numeribus/internal/browsertest"
)

// A form left open until the auto-lock: the page leaves (no personal data
// stays on screen), what was typed is kept sealed, and after the unlock
// the form comes back as it was.
func TestBrowserFormLeftOpenUntilTheLock(t *testing.T) {
	ctx := context.Background()
	st, _, err := store.Create(ctx, t.TempDir(), []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Lock()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(ctx)
	served := make(chan error, 1)
	// A one-second auto-lock: app.js leaves the page about 6 s after the
	// last keystroke.
	go func() { served <- New(Config{Store: st, AutoLock: time.Second}).Serve(srvCtx, ln) }()
	t.Cleanup(func() {
		stopSrv()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := browsertest.New(t, "http://"+ln.Addr().String(), 1366, 768, 90*time.Second)
	unlock := func(next string) {
		c.Do("unlock", chromedp.Navigate(c.Base+"/unlock"), chromedp.WaitVisible(css("#f-secret")),
			chromedp.SendKeys(css("#f-secret"), testPass), chromedp.Click(css("main form button[type=submit]")),
			chromedp.WaitVisible(css(next)))
	}
	unlock("#h-stops")
	const typed = "Dossier CAF de Mme Kerbrat à finir"
	c.Do("type in a new activity", chromedp.Navigate(c.Base+"/activites/nouvelle?type=individuel"),
		chromedp.WaitVisible(css("#f-notes")), chromedp.SendKeys(css("#f-notes"), typed))
	c.WaitURL("/unlock")
	if strings.Contains(c.HTML(), "Kerbrat") {
		t.Fatal("the typed text is still on screen after the lock")
	}
	unlock("#h-drafts")
	c.Do("resume", chromedp.Click(css(`a[href*="brouillon="]`)), chromedp.WaitVisible(css("#f-notes")))
	if v, _ := chromedp.Run(c.Ctx, chromedp.Value(css("#f-notes"))); v != typed {
		t.Fatalf("resumed notes %q, want %q", v, typed)
	}
}
