package ui

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"numeribus/agent/store"
)

// setupEnv serves the first-start page over a real directory: Create
// makes a real store there.
type setupEnv struct {
	t     *testing.T
	dir   string
	setup *Setup
	srv   *httptest.Server
	mu    sync.Mutex
	made  [][]byte // passphrases Create was called with
	quits int
}

func newSetupEnv(t *testing.T) *setupEnv {
	t.Helper()
	e := &setupEnv{t: t, dir: t.TempDir()}
	e.setup = NewSetup(SetupConfig{MinLength: 8,
		Quit: func() { e.mu.Lock(); e.quits++; e.mu.Unlock() },
		Create: func(ctx context.Context, pass []byte) (string, error) {
			e.mu.Lock()
			e.made = append(e.made, append([]byte(nil), pass...))
			e.mu.Unlock()
			s, code, err := store.Create(ctx, e.dir, pass, store.Options{KDF: testKDF})
			if err != nil {
				return "", err
			}
			return code, s.Close()
		}})
	e.srv = httptest.NewServer(e.setup.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// post sends the form as the page's browser does, or, with origin set,
// as a page of that origin would.
func (e *setupEnv) post(c *http.Client, origin, path string, v url.Values) (int, string, string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin == "" {
		origin = e.srv.URL
	}
	req.Header.Set("Origin", origin)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Request.URL.Path, string(b)
}

func noRedirect() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// The first start refuses an empty, short or mistyped passphrase with
// the problem next to its field, never echoing what was typed, and
// creates nothing; another site cannot post it; a good one creates the
// store once, shows the recovery code once, and from then on every
// address leads to the unlock page (served by the UI).
func TestSetupCreatesTheStoreOnce(t *testing.T) {
	e := newSetupEnv(t)
	c := noRedirect()
	resp, err := c.Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	const good = "trois mots secrets"
	for _, tc := range []struct {
		name, pass, confirm, field, want string
	}{
		{"empty", "  ", "  ", "f-passphrase", fr["setup_empty"]},
		{"short", "k7q2", "k7q2", "f-passphrase", tr("setup_short", 8)},
		{"seven letters with accents", "éèàçùôî", "éèàçùôî", "f-passphrase", tr("setup_short", 8)},
		{"mistyped", good, good + "s", "f-confirm", fr["setup_differ"]},
	} {
		code, _, body := e.post(c, "", "/", url.Values{"passphrase": {tc.pass}, "confirm": {tc.confirm}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, html.EscapeString(tc.want)) {
			t.Errorf("%s: %d, without %q", tc.name, code, tc.want)
		}
		if !strings.Contains(body, `id="`+tc.field+`"`) || !strings.Contains(body, `href="#`+tc.field+`"`) {
			t.Errorf("%s: the summary does not lead to %s", tc.name, tc.field)
		}
		if strings.TrimSpace(tc.pass) != "" && strings.Contains(body, html.EscapeString(tc.pass)) {
			t.Errorf("%s: the page shows what was typed", tc.name)
		}
	}
	code, _, _ := e.post(c, "http://evil.example", "/", url.Values{"passphrase": {good}, "confirm": {good}})
	if code != http.StatusForbidden {
		t.Errorf("cross-origin post: %d, want 403", code)
	}
	if len(e.made) != 0 {
		t.Fatalf("a store was created from a refused form: %d", len(e.made))
	}

	code, _, body := e.post(c, "", "/", url.Values{"passphrase": {good}, "confirm": {good}})
	if code != 200 || !strings.Contains(body, `id="recovery-code"`) {
		t.Fatalf("good passphrase: %d\n%s", code, body)
	}
	select {
	case <-e.setup.Done():
	default:
		t.Fatal("Done not closed after the store was created")
	}
	if len(e.made) != 1 || string(e.made[0]) != good {
		t.Fatalf("Create called with %q", e.made)
	}
	// The code shown unlocks the store made.
	code0 := body[strings.Index(body, `id="recovery-code">`)+len(`id="recovery-code">`):]
	code0 = code0[:strings.Index(code0, "<")]
	st, err := store.Open(context.Background(), e.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Unlock(context.Background(), []byte(code0)); err != nil {
		t.Fatalf("the recovery code shown (%q) does not unlock the store: %v", code0, err)
	}
	if err := st.Unlock(context.Background(), []byte(good)); err != nil {
		t.Fatalf("the passphrase chosen does not unlock the store: %v", err)
	}

	// From now on the UI answers: everything leads there, nothing is
	// created again, the code is never shown again.
	for _, p := range []string{"/", "/unlock", "/beneficiaires"} {
		resp, err := c.Get(e.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != p || !resp.Close {
			t.Errorf("GET %s after the first start: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	code, _, body = e.post(c, "", "/", url.Values{"passphrase": {good}, "confirm": {good}})
	if code != http.StatusSeeOther || strings.Contains(body, code0) || len(e.made) != 1 {
		t.Errorf("posted again: %d, Create called %d times", code, len(e.made))
	}
}

// A store made meanwhile (agent init in a terminal) is not overwritten:
// the page hands over to the UI, which asks for that store's passphrase.
func TestSetupFindsAStoreMadeMeanwhile(t *testing.T) {
	e := newSetupEnv(t)
	s, _, err := store.Create(context.Background(), e.dir, []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	code, _, body := e.post(noRedirect(), "", "/", url.Values{"passphrase": {"une autre phrase"}, "confirm": {"une autre phrase"}})
	if code != http.StatusSeeOther || strings.Contains(body, "recovery-code") {
		t.Fatalf("store made meanwhile: %d", code)
	}
	select {
	case <-e.setup.Done():
	default:
		t.Fatal("not handed over to the UI")
	}
	st, err := store.Open(context.Background(), e.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Unlock(context.Background(), []byte(testPass)); err != nil {
		t.Fatalf("the store made meanwhile was replaced: %v", err)
	}
}

// « Quitter »: on the first-start page and in the UI, it stops the
// program (Config.Quit), locks the store first, and says so; it is
// there only when the program can be stopped that way.
func TestQuit(t *testing.T) {
	e := newSetupEnv(t)
	code, _, body := e.post(noRedirect(), "", "/quitter", nil)
	if code != 200 || !strings.Contains(body, `id="stopped"`) || e.quits != 1 {
		t.Fatalf("quit from the first start: %d, %d quits", code, e.quits)
	}

	u := newEnv(t)
	quits := 0
	u.ui = New(Config{Store: u.st, Quit: func() { quits++ }})
	u.srv.Config.Handler = u.ui.Handler()
	b := u.browser()
	if _, _, body := b.get("/unlock"); !strings.Contains(body, `id="quit-button"`) {
		t.Fatal("no « Quitter » on the unlock page")
	}
	b.unlock()
	if _, _, body := b.get("/"); !strings.Contains(body, `id="quit-button"`) {
		t.Fatal("no « Quitter » once unlocked")
	}
	code, _, body = b.post("/quitter", nil)
	if code != 200 || !strings.Contains(body, `id="stopped"`) || strings.Contains(body, `id="quit-button"`) {
		t.Fatalf("quit: %d", code)
	}
	if quits != 1 || !u.st.Locked() {
		t.Fatalf("after « Quitter »: %d quits, locked %v", quits, u.st.Locked())
	}
	if code, _, _ := b.postFrom("http://evil.example", "cross-site", "/quitter", nil); code != http.StatusForbidden || quits != 1 {
		t.Fatalf("cross-site quit: %d, %d quits", code, quits)
	}

	// `agent serve`: no Quit, no button, no route.
	plain := newEnv(t)
	pb := plain.browser()
	if _, _, body := pb.get("/unlock"); strings.Contains(body, "quit-button") {
		t.Fatal("« Quitter » shown without Config.Quit")
	}
	if code, _, _ := pb.post("/quitter", nil); code != http.StatusNotFound {
		t.Fatalf("quit without Config.Quit: %d", code)
	}
}
