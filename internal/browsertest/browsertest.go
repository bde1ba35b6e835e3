// Package browsertest drives Debian's headless Chromium for the web
// interfaces' browser tests (agent/ui, hub/dashboard): finding the
// browser, the CI rule (fail, never skip, when CI is set), screenshots,
// and the few steps every test repeats. Test code only imports it.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// CSS selects by CSS selector.
type CSS = chromedp.CSS

// Browser is one headless Chromium tab on a server at Base.
type Browser struct {
	T     *testing.T
	Ctx   context.Context
	Base  string // "http://127.0.0.1:PORT"
	Shots string // where Shot writes: $NUMERIBUS_SCREENSHOTS, else a temp dir
}

// ChromiumPath finds a Chromium; without one the test fails when the
// environment variable CI is set, and is skipped, saying so, elsewhere.
func ChromiumPath(t *testing.T) string {
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

// New opens a browser window of width×height on base, closed at the end
// of the test; every step must be done within limit.
func New(t *testing.T, base string, width, height int, limit time.Duration) *Browser {
	t.Helper()
	exe := ChromiumPath(t)
	shots := os.Getenv("NUMERIBUS_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(width, height))
	lctx, cancelLimit := context.WithTimeout(context.Background(), limit)
	actx, cancelAlloc := chromedp.NewExecAllocator(lctx, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc(); cancelLimit() })
	return &Browser{T: t, Ctx: ctx, Base: base, Shots: shots}
}

// Do runs steps, failing the test with what on error.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.T.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.T.Fatalf("%s: %v", what, err)
	}
}

// Text returns the visible text of the element sel.
func (b *Browser) Text(sel string) string {
	b.T.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(CSS(sel)))
	if err != nil {
		b.T.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// HTML returns the page's HTML.
func (b *Browser) HTML() string {
	b.T.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.OuterHTML(CSS("html")))
	if err != nil {
		b.T.Fatalf("page HTML: %v", err)
	}
	return s
}

// Shot saves a full-page PNG screenshot as Shots/name.png.
func (b *Browser) Shot(name string) {
	b.T.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.T.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.Shots, name+".png"), png, 0o644); err != nil {
		b.T.Fatal(err)
	}
}

// Location returns the page's path (and query), without Base.
func (b *Browser) Location() string {
	b.T.Helper()
	u, err := chromedp.Run(b.Ctx, chromedp.Location())
	if err != nil {
		b.T.Fatal(err)
	}
	return strings.TrimPrefix(u, b.Base)
}

// WaitURL waits until the page's address holds part and the page is
// loaded: a form submitted by a click navigates asynchronously, and the
// page before may hold the very elements the next step waits for.
func (b *Browser) WaitURL(part string) {
	b.T.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](
			`location.href.includes(`+strconv.Quote(part)+`) && document.readyState === "complete"`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.T.Fatalf("page address never held %q (last error: %v)", part, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NextPage runs act, which leads to another page (a click on a link or a
// submit button), and waits until that page is the one loaded, in full,
// and holds ready. Waiting for ready alone is not enough when the page
// before holds it too (a search shown again with its results), nor
// for the page's style sheet, which may come after its elements.
func (b *Browser) NextPage(what string, act chromedp.Action[chromedp.Void], ready string) {
	b.T.Helper()
	b.Do(what, chromedp.Evaluate[chromedp.Void](`window.browsertestLeft = true`), act)
	b.WaitJS(what, `!window.browsertestLeft && document.readyState === "complete" && document.querySelector(`+strconv.Quote(ready)+`) !== null`)
}

// WaitJS waits, up to 20 s, until the expression is true in the page,
// through navigations (an evaluation cut by one is tried again).
func (b *Browser) WaitJS(what, expr string) {
	b.T.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || b.Ctx.Err() != nil {
			b.T.Fatalf("%s: never true: %s (last error: %v)", what, expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
