package dashboard

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/hub/store"
	"numeribus/internal/browsertest"
	"numeribus/internal/ident"
)

type css = browsertest.CSS

// browser drives one headless Chromium against an env's server.
type browser struct{ *browsertest.Browser }

func newBrowser(t *testing.T, e *env) *browser {
	return &browser{browsertest.New(t, e.ts.URL, 1366, 900, 90*time.Second)}
}

func (b *browser) login(email string) {
	b.T.Helper()
	b.Do("login page "+email, chromedp.Navigate(b.Base+"/login?next=/exports"), chromedp.WaitVisible(css("#f-email")),
		chromedp.SendKeys(css("#f-email"), email), chromedp.SendKeys(css("#f-password"), testPass),
		chromedp.Click(css("#login-form button[type=submit]")), chromedp.WaitVisible(css("#who")))
}

func (b *browser) logout() {
	b.T.Helper()
	b.Do("logout", chromedp.Click(css("#logout-button")), chromedp.WaitVisible(css("#f-email")))
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
	b.Do("open", chromedp.Navigate(b.Base+"/postes"), chromedp.WaitVisible(css("#f-email")))
	if p := b.Location(); !strings.HasPrefix(p, "/login") {
		t.Fatalf("start page without session: %s", p)
	}
	b.Shot("01-login")
	b.Do("wrong password", chromedp.SendKeys(css("#f-email"), "admin@hub.fr"), chromedp.SendKeys(css("#f-password"), "pas le bon"),
		chromedp.Click(css("#login-form button[type=submit]")), chromedp.WaitVisible(css("#page-error")))
	b.Do("login", chromedp.SendKeys(css("#f-password"), testPass),
		chromedp.Click(css("#login-form button[type=submit]")), chromedp.WaitVisible(css("#devices")))
	if p := b.Location(); p != "/postes" {
		t.Fatalf("after login: %s, want back to /postes", p)
	}
	if s := b.Text("#device-bus-88 .state"); !strings.Contains(s, "En retard") || !strings.Contains(s, "9 jours") {
		t.Fatalf("stale device state: %q", s)
	}
	if s := b.Text("#device-bus-54 .state"); s != "À jour" {
		t.Fatalf("fresh device state: %q", s)
	}
	if s := b.Text("#stale-summary"); !strings.Contains(s, "1 poste(s) en retard") {
		t.Fatalf("summary: %q", s)
	}
	b.Shot("04-devices")

	b.Do("enroll", chromedp.SendKeys(css("#f-name"), "bus-7"), chromedp.SendKeys(css("#f-team"), "cd54"),
		chromedp.Click(css("#enroll-form button[type=submit]")), chromedp.WaitVisible(css("#enroll-code")))
	code := b.Text("#enroll-code")
	if !strings.HasPrefix(code, "NSYNC1-") {
		t.Fatalf("enrollment code %q", code)
	}
	if !strings.Contains(b.HTML(), `<svg xmlns="http://www.w3.org/2000/svg" class="qr"`) {
		t.Fatal("no QR code")
	}
	b.Shot("05-enrollment-code")

	b.Do("revoke", chromedp.Click(css(`a[href="/postes/bus-54/revoquer"]`)), chromedp.WaitVisible(css("#revoke-form")))
	if s := b.Text("#revoke-text"); !strings.Contains(s, "bus-54") {
		t.Fatalf("confirmation: %q", s)
	}
	b.Do("confirm", chromedp.Click(css("#revoke-form button[type=submit]")), chromedp.WaitVisible(css("#flash")))
	if s := b.Text("#flash"); !strings.Contains(s, "bus-54 révoqué") {
		t.Fatalf("after revocation: %q", s)
	}
	if d, _ := e.st.Device(context.Background(), fresh.ID); !d.Revoked() {
		t.Fatal("device not revoked in the store")
	}
	if s := b.Text("#device-bus-54 .state"); !strings.Contains(s, "Révoqué") {
		t.Fatalf("revoked state: %q", s)
	}
	b.logout()

	b.login("coord88@cd88.fr")
	b.Do("coordinator on devices", chromedp.Navigate(b.Base+"/postes"), chromedp.WaitReady(css("body")))
	if h := b.HTML(); strings.Contains(h, "bus-88") || strings.Contains(h, "bus-54") || !strings.Contains(h, "403") {
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
	b.Do("overview", chromedp.Navigate(b.Base+"/apercu"), chromedp.WaitVisible(css("#filter-form")),
		chromedp.SetValue(css("#f-du"), "2026-03-01"), chromedp.SetValue(css("#f-au"), "2026-05-31"),
		chromedp.SendKeys(css("#f-territoire"), "54"),
		chromedp.Click(css("#filter-submit")))
	// The page before the submit has #applied too: wait for the new one.
	b.WaitURL("du=2026-03-01")
	b.Do("filtered overview", chromedp.WaitVisible(css("#applied")))
	if v := b.Text("#tile-accompagnements .value"); v != itoa(seed54Acc) {
		t.Fatalf("accompagnements shown %q, want %d", v, seed54Acc)
	}
	if v := b.Text("#tile-activites .value"); v != itoa(seed54Activities) {
		t.Fatalf("activities shown %q, want %d", v, seed54Activities)
	}
	if a := b.Text("#applied"); !strings.Contains(a, "01/03/2026") || !strings.Contains(a, "31/05/2026") || !strings.Contains(a, "Meurthe-et-Moselle") {
		t.Fatalf("applied filter: %q", a)
	}
	b.Shot("02-overview")

	// The activity CSV of the same selection, fetched by the page.
	csv, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](
		`fetch("/exports/activites.csv"+location.search, {credentials: "same-origin"}).then(r => r.ok ? r.text() : "HTTP " + r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	// fetch's text() drops the byte order mark the file starts with.
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(csv, "\ufeff")), "\n")
	if len(lines) != seed54Activities+1 || !strings.HasPrefix(lines[0], "Identifiant;Date;") || strings.Contains(csv, "Épinal") {
		t.Fatalf("activity CSV (%d lines):\n%s", len(lines), csv)
	}
	if n := strings.Count(csv, "Nancy"); n < 5 {
		t.Fatalf("Nancy appears %d times in the CSV, want the 5 sessions there", n)
	}

	b.Do("coverage", chromedp.Navigate(b.Base+"/couverture?du=2026-03-01&au=2026-05-31&territoire=54"), chromedp.WaitVisible(css("#tile-visitees")))
	if v := b.Text("#tile-visitees .value"); !strings.HasPrefix(v, "2 / ") {
		t.Fatalf("communes visited: %q, want 2 of the département's", v)
	}
	b.Shot("03-coverage")
	b.Do("tours", chromedp.Navigate(b.Base+"/tournees?du=2026-03-01&au=2026-05-31"), chromedp.WaitVisible(css("#vehicles")))
	if v := b.Text("#vehicles tbody"); !strings.Contains(v, "Numéribus 54") || strings.Contains(v, "Numéribus 88") {
		t.Fatalf("vehicles: %q", v)
	}
	b.Shot("06-tournees")

	// Outside the scope: refused, no number shown.
	b.Do("other département", chromedp.Navigate(b.Base+"/apercu?du=2026-03-01&au=2026-05-31&territoire=88"), chromedp.WaitVisible(css("#report-error")))
	if h := b.HTML(); strings.Contains(h, `id="tiles"`) || strings.Contains(h, "Épinal") {
		t.Fatal("numbers shown for a territory outside the scope")
	}
	b.logout()

	b.login("coord88@cd88.fr")
	b.Do("88 overview", chromedp.Navigate(b.Base+"/apercu?du=2026-03-01&au=2026-05-31"), chromedp.WaitVisible(css("#tiles")))
	if v := b.Text("#tile-accompagnements .value"); v != itoa(seed88Acc) {
		t.Fatalf("coordinator 88 accompagnements %q, want %d", v, seed88Acc)
	}
	for _, p := range []string{"/apercu", "/couverture", "/tournees"} {
		b.Do("88 "+p, chromedp.Navigate(b.Base+p+"?du=2026-03-01&au=2026-05-31"), chromedp.WaitVisible(css("#applied")))
		if h := b.HTML(); strings.Contains(h, "Nancy") || strings.Contains(h, "Numéribus 54") || strings.Contains(h, "Camille Martin") {
			t.Fatalf("coordinator 88 sees Meurthe-et-Moselle on %s", p)
		}
	}
	t.Logf("screenshots in %s", b.Shots)
}
