package ui

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/agent/store"
	"numeribus/internal/browsertest"
	"numeribus/internal/domain"
)

// slowChrome is newChrome behind a server whose answers to form posts
// leave late, after the handler has run — a busy laptop: the record is
// stored but the browser does not know yet, and the mediator clicks
// again. It counts the posts handled.
func slowChrome(t *testing.T, st *store.Store, late time.Duration) (*browsertest.Browser, *atomic.Int32) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var posts atomic.Int32
	h := New(Config{Store: st}).Handler()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.Method == http.MethodPost && r.URL.Path == "/activites/nouvelle" {
			posts.Add(1)
			time.Sleep(late) // the answer is buffered until the handler returns
		}
	})}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
	return browsertest.New(t, "http://"+ln.Addr().String(), 1366, 768, 60*time.Second), &posts
}

func unlockedStore(t *testing.T) *store.Store {
	t.Helper()
	st, _, err := store.Create(context.Background(), t.TempDir(), []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Lock()
	return st
}

func browserUnlock(c *browsertest.Browser) {
	c.Do("unlock", chromedp.Navigate(c.Base+"/unlock"), chromedp.WaitVisible(css("#f-secret")),
		chromedp.SendKeys(css("#f-secret"), testPass), chromedp.Click(css("main form button[type=submit]")),
		chromedp.WaitVisible(css("#h-stops")))
}

// fillActivity opens a new individual activity in c's tab and fills it.
func fillActivity(c *browsertest.Browser, ctx context.Context, notes string) {
	c.T.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(c.Base+"/activites/nouvelle?type=individuel"), chromedp.WaitVisible(css("#activity-form")),
		chromedp.SendKeys(css("#f-duree"), "45"),
		chromedp.SendKeys(css("#f-commune"), "54395"),
		chromedp.Click(css("#f-thematiques-email")),
		chromedp.Click(css("#f-autonomie-autonome")),
		chromedp.SendKeys(css("#f-notes"), notes)); err != nil {
		c.T.Fatalf("fill the activity form: %v", err)
	}
}

// submitCenter is the middle of the activity form's submit button, in
// the viewport, once scrolled into view.
func submitCenter(c *browsertest.Browser) (float64, float64) {
	c.T.Helper()
	xy, err := chromedp.Run(c.Ctx, chromedp.Evaluate[[]float64](`(b => { b.scrollIntoView({block: "center"});
		const r = b.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })(document.querySelector("#activity-form button[type=submit]"))`))
	if err != nil || len(xy) != 2 {
		c.T.Fatalf("submit button position: %v %v", xy, err)
	}
	return xy[0], xy[1]
}

func activities(t *testing.T, st *store.Store) int {
	t.Helper()
	return countKind(t, st, domain.KindActivity) // unlocked through the browser
}

// waitFlash waits for today's page and returns its message, by script:
// after a history navigation chromedp's DOM queries may not follow the
// page.
func waitFlash(c *browsertest.Browser) string {
	c.T.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		f, err := chromedp.Run(c.Ctx, chromedp.Evaluate[string](
			`location.pathname === "/" && document.readyState === "complete" && document.querySelector("#flash") ? document.querySelector("#flash").textContent : ""`))
		if err == nil && f != "" {
			return f
		}
		if time.Now().After(deadline) {
			page, _ := chromedp.Run(c.Ctx, chromedp.Evaluate[string](`location.pathname + ": " + document.querySelector("main").innerText.slice(0, 300)`))
			c.T.Fatalf("no message on today's page (last error: %v); the page is %q", err, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPosts waits until the server has handled n posts of the form.
func waitPosts(t *testing.T, posts *atomic.Int32, n int32) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for posts.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the server handled %d posts of the form, want %d", posts.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A double-click on « Enregistrer l'activité » sends the form twice (the
// browser drops the first answer for the second); the store holds one
// activity, and the page says it is saved.
func TestBrowserDoubleClickSavesOnce(t *testing.T) {
	st := unlockedStore(t)
	c, posts := slowChrome(t, st, 500*time.Millisecond)
	browserUnlock(c)
	fillActivity(c, c.Ctx, "double clic")
	x, y := submitCenter(c)
	c.Do("double-click", chromedp.MouseClickXY(x, y), chromedp.Sleep(80*time.Millisecond),
		chromedp.MouseClickXY(x, y, chromedp.ClickCount(2)))
	c.Do("answer", chromedp.WaitVisible(css("#flash")))
	if p := c.Location(); p != "/" {
		t.Fatalf("answer at %s, want /", p)
	}
	waitPosts(t, posts, 2)
	if n := activities(t, st); n != 1 {
		t.Fatalf("a double-click recorded %d activities, want 1", n)
	}
	if f := c.Text("#flash"); !strings.Contains(f, "enregistrée") {
		t.Fatalf("after the double-click: %q", f)
	}
}

// Saved, then Back to the form and saved again: one activity, and the
// page says it was already saved — whether the browser shows the form
// from its back/forward cache or loads it again (a page with an unload
// handler is not cached).
func TestBrowserBackThenResubmitSavesOnce(t *testing.T) {
	t.Run("cached", func(t *testing.T) { backThenResubmit(t, false) })
	t.Run("loaded again", func(t *testing.T) { backThenResubmit(t, true) })
}

func backThenResubmit(t *testing.T, noCache bool) {
	st := unlockedStore(t)
	c, posts := slowChrome(t, st, 0)
	browserUnlock(c)
	fillActivity(c, c.Ctx, "retour arrière")
	if noCache {
		if _, err := chromedp.Run(c.Ctx, chromedp.Evaluate[any](`window.addEventListener("unload", () => {}); null`)); err != nil {
			t.Fatal(err)
		}
	}
	c.Do("save", chromedp.Click(css("#activity-form button[type=submit]")), chromedp.WaitVisible(css("#flash")))
	if f := c.Text("#flash"); !strings.Contains(f, "Activité enregistrée") {
		t.Fatalf("after saving: %q", f)
	}
	if _, err := chromedp.Run(c.Ctx, chromedp.Evaluate[any](`history.back()`)); err != nil {
		t.Fatal(err)
	}
	c.WaitURL("/activites/nouvelle")
	// The page may come back from the back/forward cache, which the
	// DOM queries of chromedp do not follow: plain script and a click
	// at the button's place.
	got, err := chromedp.Run(c.Ctx, chromedp.Evaluate[string](`document.querySelector("#f-notes").value + "|" +
		document.querySelector("input[name=form_id]").value + "|" + performance.getEntriesByType("navigation")[0].type`))
	t.Logf("after Back: %q (err %v)", got, err)
	if noCache {
		// Fields with autocomplete=off come back empty: the mediator
		// types them again.
		if _, err := chromedp.Run(c.Ctx, chromedp.Evaluate[any](`document.querySelector("#f-duree").value = "45";
			document.querySelector("#f-commune").value = "54395"; null`)); err != nil {
			t.Fatal(err)
		}
	}
	x, y := submitCenter(c)
	c.Do("save again", chromedp.MouseClickXY(x, y))
	waitPosts(t, posts, 2)
	if n := activities(t, st); n != 1 {
		t.Fatalf("save, Back, save recorded %d activities, want 1", n)
	}
	if f := waitFlash(c); !strings.Contains(f, "déjà enregistrée") {
		t.Fatalf("after saving again: %q", f)
	}
}

// Two tabs are two forms: two activities, even with the same content.
func TestBrowserTwoTabsSaveTwice(t *testing.T) {
	st := unlockedStore(t)
	c, posts := slowChrome(t, st, 0)
	browserUnlock(c)
	tab2, cancel := chromedp.NewContext(c.Ctx)
	defer cancel()
	fillActivity(c, c.Ctx, "même contenu")
	fillActivity(c, tab2, "même contenu")
	for i, ctx := range []context.Context{c.Ctx, tab2} {
		if err := chromedp.Do(ctx, chromedp.Click(css("#activity-form button[type=submit]")), chromedp.WaitVisible(css("#flash"))); err != nil {
			t.Fatalf("save in tab %d: %v", i+1, err)
		}
	}
	waitPosts(t, posts, 2)
	if n := activities(t, st); n != 2 {
		t.Fatalf("two tabs recorded %d activities, want 2", n)
	}
}
