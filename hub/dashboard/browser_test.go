package dashboard

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/hub/store"
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

// browser drives one headless Chromium against an env's server.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func newBrowser(t *testing.T, e *env) *browser {
	exe := chromiumPath(t)
	shots := os.Getenv("NUMERIBUS_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1366, 900))
	limit, cancelLimit := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancelLimit)
	actx, cancelAlloc := chromedp.NewExecAllocator(limit, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return &browser{t: t, ctx: ctx, base: e.ts.URL, shots: shots}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(css(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) html() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.OuterHTML(css("html")))
	if err != nil {
		b.t.Fatalf("page HTML: %v", err)
	}
	return s
}

// waitURL waits until the page's address holds part and the page is
// loaded: a form submitted by a click navigates asynchronously, and the
// page before may hold the very elements the next step waits for.
func (b *browser) waitURL(part string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](
			`location.href.includes(`+strconv.Quote(part)+`) && document.readyState === "complete"`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("page address never held %q (last error: %v)", part, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *browser) location() string {
	b.t.Helper()
	u, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.TrimPrefix(u, b.base)
}

func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) login(email string) {
	b.t.Helper()
	b.do("login page "+email, chromedp.Navigate(b.base+"/login?next=/exports"), chromedp.WaitVisible(css("#f-email")),
		chromedp.SendKeys(css("#f-email"), email), chromedp.SendKeys(css("#f-password"), testPass),
		chromedp.Click(css("#login-form button[type=submit]")), chromedp.WaitVisible(css("#who")))
}

func (b *browser) logout() {
	b.t.Helper()
	b.do("logout", chromedp.Click(css("#logout-button")), chromedp.WaitVisible(css("#f-email")))
}

// enrollDevice enrolls a device directly in the store, as an agent's
// enrollment would, and returns it.
func enrollDevice(t testing.TB, st store.Store, name, team string, at time.Time) store.Device {
	t.Helper()
	var tok [32]byte
	rand.Read(tok[:])
	ctx := context.Background()
	if err := st.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := st.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: []byte("dk"), PushKey: []byte("pk")}, at)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBrowserDevicesEnrollRevoke: an admin logs in (after a wrong
// password), sees a stale device flagged, creates an enrollment code
// shown as text and QR code, revokes a device after confirming; a
// coordinator sees no device page at all.
func TestBrowserDevicesEnrollRevoke(t *testing.T) {
	e := newEnv(t, false)
	fresh := enrollDevice(t, e.st, "bus-54", "cd54", testNow.Add(-30*24*time.Hour))
	e.st.MarkSeen(context.Background(), fresh.ID, store.Seen{At: testNow.Add(-2 * time.Hour), AgentVersion: "0.4.1", ClockOffsetMs: 1200})
	e.st.MarkSynced(context.Background(), fresh.ID, testNow.Add(-2*time.Hour))
	late := enrollDevice(t, e.st, "bus-88", "cd88", testNow.Add(-30*24*time.Hour))
	e.st.MarkSeen(context.Background(), late.ID, store.Seen{At: testNow.Add(-9 * 24 * time.Hour), AgentVersion: "0.3.0"})
	e.st.MarkSynced(context.Background(), late.ID, testNow.Add(-9*24*time.Hour))

	b := newBrowser(t, e)
	b.do("open", chromedp.Navigate(b.base+"/postes"), chromedp.WaitVisible(css("#f-email")))
	if p := b.location(); !strings.HasPrefix(p, "/login") {
		t.Fatalf("start page without session: %s", p)
	}
	b.shot("01-login")
	b.do("wrong password", chromedp.SendKeys(css("#f-email"), "admin@hub.fr"), chromedp.SendKeys(css("#f-password"), "pas le bon"),
		chromedp.Click(css("#login-form button[type=submit]")), chromedp.WaitVisible(css("#page-error")))
	b.do("login", chromedp.SendKeys(css("#f-password"), testPass),
		chromedp.Click(css("#login-form button[type=submit]")), chromedp.WaitVisible(css("#devices")))
	if p := b.location(); p != "/postes" {
		t.Fatalf("after login: %s, want back to /postes", p)
	}
	if s := b.text("#device-bus-88 .state"); !strings.Contains(s, "En retard") || !strings.Contains(s, "9 jours") {
		t.Fatalf("stale device state: %q", s)
	}
	if s := b.text("#device-bus-54 .state"); s != "À jour" {
		t.Fatalf("fresh device state: %q", s)
	}
	if s := b.text("#stale-summary"); !strings.Contains(s, "1 poste(s) en retard") {
		t.Fatalf("summary: %q", s)
	}
	b.shot("04-devices")

	b.do("enroll", chromedp.SendKeys(css("#f-name"), "bus-7"), chromedp.SendKeys(css("#f-team"), "cd54"),
		chromedp.Click(css("#enroll-form button[type=submit]")), chromedp.WaitVisible(css("#enroll-code")))
	code := b.text("#enroll-code")
	if !strings.HasPrefix(code, "NSYNC1-") {
		t.Fatalf("enrollment code %q", code)
	}
	if !strings.Contains(b.html(), `<svg xmlns="http://www.w3.org/2000/svg" class="qr"`) {
		t.Fatal("no QR code")
	}
	b.shot("05-enrollment-code")

	b.do("revoke", chromedp.Click(css(`a[href="/postes/bus-54/revoquer"]`)), chromedp.WaitVisible(css("#revoke-form")))
	if s := b.text("#revoke-text"); !strings.Contains(s, "bus-54") {
		t.Fatalf("confirmation: %q", s)
	}
	b.do("confirm", chromedp.Click(css("#revoke-form button[type=submit]")), chromedp.WaitVisible(css("#flash")))
	if s := b.text("#flash"); !strings.Contains(s, "bus-54 révoqué") {
		t.Fatalf("after revocation: %q", s)
	}
	if d, _ := e.st.Device(context.Background(), fresh.ID); !d.Revoked() {
		t.Fatal("device not revoked in the store")
	}
	if s := b.text("#device-bus-54 .state"); !strings.Contains(s, "Révoqué") {
		t.Fatalf("revoked state: %q", s)
	}
	b.logout()

	b.login("coord88@cd88.fr")
	b.do("coordinator on devices", chromedp.Navigate(b.base+"/postes"), chromedp.WaitReady(css("body")))
	if h := b.html(); strings.Contains(h, "bus-88") || strings.Contains(h, "bus-54") || !strings.Contains(h, "403") {
		t.Fatal("a coordinator sees the devices page")
	}
}

// TestBrowserReports: a coordinator of Meurthe-et-Moselle logs in,
// filters March–May 2026 on their département, sees the seeded numbers
// (17 accompagnements, 6 activities), the coverage and the tournées,
// downloads the activity CSV from the page and finds the 6 lines; then
// asks for the Vosges and is refused. The Vosges' coordinator sees none
// of Meurthe-et-Moselle's numbers.
func TestBrowserReports(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	b := newBrowser(t, e)
	b.login("coord54@cd54.fr")
	b.do("overview", chromedp.Navigate(b.base+"/apercu"), chromedp.WaitVisible(css("#filter-form")),
		chromedp.SetValue(css("#f-du"), "2026-03-01"), chromedp.SetValue(css("#f-au"), "2026-05-31"),
		chromedp.SendKeys(css("#f-territoire"), "54"),
		chromedp.Click(css("#filter-submit")))
	// The page before the submit has #applied too: wait for the new one.
	b.waitURL("du=2026-03-01")
	b.do("filtered overview", chromedp.WaitVisible(css("#applied")))
	if v := b.text("#tile-accompagnements .value"); v != itoa(seed54Acc) {
		t.Fatalf("accompagnements shown %q, want %d", v, seed54Acc)
	}
	if v := b.text("#tile-activites .value"); v != itoa(seed54Activities) {
		t.Fatalf("activities shown %q, want %d", v, seed54Activities)
	}
	if a := b.text("#applied"); !strings.Contains(a, "01/03/2026") || !strings.Contains(a, "31/05/2026") || !strings.Contains(a, "Meurthe-et-Moselle") {
		t.Fatalf("applied filter: %q", a)
	}
	b.shot("02-overview")

	// The activity CSV of the same selection, fetched by the page.
	csv, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](
		`fetch("/exports/activites.csv"+location.search, {credentials: "same-origin"}).then(r => r.ok ? r.text() : "HTTP " + r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	// fetch's text() drops the byte order mark the file starts with.
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(csv, "\ufeff")), "\n")
	if len(lines) != seed54Activities+1 || !strings.HasPrefix(lines[0], "id;date;type") || strings.Contains(csv, "Épinal") {
		t.Fatalf("activity CSV (%d lines):\n%s", len(lines), csv)
	}
	if n := strings.Count(csv, "Nancy"); n < 5 {
		t.Fatalf("Nancy appears %d times in the CSV, want the 5 sessions there", n)
	}

	b.do("coverage", chromedp.Navigate(b.base+"/couverture?du=2026-03-01&au=2026-05-31&territoire=54"), chromedp.WaitVisible(css("#tile-visitees")))
	if v := b.text("#tile-visitees .value"); !strings.HasPrefix(v, "2 / ") {
		t.Fatalf("communes visited: %q, want 2 of the département's", v)
	}
	b.shot("03-coverage")
	b.do("tours", chromedp.Navigate(b.base+"/tournees?du=2026-03-01&au=2026-05-31"), chromedp.WaitVisible(css("#vehicles")))
	if v := b.text("#vehicles tbody"); !strings.Contains(v, "Numéribus 54") || strings.Contains(v, "Numéribus 88") {
		t.Fatalf("vehicles: %q", v)
	}
	b.shot("06-tournees")

	// Outside the scope: refused, no number shown.
	b.do("other département", chromedp.Navigate(b.base+"/apercu?du=2026-03-01&au=2026-05-31&territoire=88"), chromedp.WaitVisible(css("#report-error")))
	if h := b.html(); strings.Contains(h, `id="tiles"`) || strings.Contains(h, "Épinal") {
		t.Fatal("numbers shown for a territory outside the scope")
	}
	b.logout()

	b.login("coord88@cd88.fr")
	b.do("88 overview", chromedp.Navigate(b.base+"/apercu?du=2026-03-01&au=2026-05-31"), chromedp.WaitVisible(css("#tiles")))
	if v := b.text("#tile-accompagnements .value"); v != itoa(seed88Acc) {
		t.Fatalf("coordinator 88 accompagnements %q, want %d", v, seed88Acc)
	}
	for _, p := range []string{"/apercu", "/couverture", "/tournees"} {
		b.do("88 "+p, chromedp.Navigate(b.base+p+"?du=2026-03-01&au=2026-05-31"), chromedp.WaitVisible(css("#applied")))
		if h := b.html(); strings.Contains(h, "Nancy") || strings.Contains(h, "Numéribus 54") || strings.Contains(h, "Camille Martin") {
			t.Fatalf("coordinator 88 sees Meurthe-et-Moselle on %s", p)
		}
	}
	t.Logf("screenshots in %s", b.shots)
}
