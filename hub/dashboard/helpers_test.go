package dashboard

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/store/sqlite"
)

// testPass is every test user's password.
const testPass = "un mot de passe solide"

// cheap keeps the tests fast; hashes carry their parameters, so the
// login verifies them the same way.
var cheap = accounts.Params{Memory: 64, Time: 1, Threads: 1}

// clock is a settable time for the server under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testLog sends the server's error log to the test's output.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// env is a dashboard on a real hub store in a temporary directory.
type env struct {
	t     testing.TB
	st    *sqlite.Store
	srv   *Server
	ts    *httptest.Server
	clock *clock
}

var testNow = time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC)

type envOpt func(*Config)

func newEnv(t testing.TB, tlsOn bool, opts ...envOpt) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: testNow}
	cfg := Config{Store: st, Accounts: st, Now: c.Now, SyncURL: "ws://127.0.0.1:9/sync",
		Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelError}))}
	cfg.Reports = st
	cfg.Plans = st
	cfg.Places = st
	cfg.PasswordParams = cheap
	cfg.ChoicesTTL = -1 // the tests plan and push between pages
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ts *httptest.Server
	if tlsOn {
		ts = httptest.NewTLSServer(srv.Handler())
	} else {
		ts = httptest.NewServer(srv.Handler())
	}
	t.Cleanup(ts.Close)
	e := &env{t: t, st: st, srv: srv, ts: ts, clock: c}
	e.user("admin@hub.fr", accounts.RoleAdmin)
	e.user("coord54@cd54.fr", accounts.RoleCoordinator, "54")
	e.user("coord88@cd88.fr", accounts.RoleCoordinator, "88")
	e.user("lecteur@region.fr", accounts.RoleViewer)
	return e
}

func (e *env) user(email string, role accounts.Role, terr ...string) accounts.User {
	e.t.Helper()
	h, err := accounts.HashPassword([]byte(testPass), cheap)
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.st.CreateUser(context.Background(), accounts.User{Email: email, Role: role, Territories: terr, PasswordHash: h, Created: testNow})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// client returns a browser-like client: cookies kept, redirects not
// followed (the tests look at them).
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches path and returns the status and body.
func (e *env) get(c *http.Client, path string) (int, string, *http.Response) {
	e.t.Helper()
	res, err := c.Get(e.ts.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res
}

// post sends a form, with the Origin and Sec-Fetch-Site a browser sends.
func (e *env) post(c *http.Client, path string, v url.Values) (int, string, *http.Response) {
	e.t.Helper()
	return e.postFrom(c, e.ts.URL, "same-origin", path, v)
}

// postFrom is post sent by a page of origin, as Sec-Fetch-Site site
// says (either "" for none).
func (e *env) postFrom(c *http.Client, origin, site, path string, v url.Values) (int, string, *http.Response) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res
}

// tryLogin loads the login page and posts its form as a browser does,
// and returns the status.
func (e *env) tryLogin(c *http.Client, email, pass string) (int, string) {
	e.t.Helper()
	if code, _, _ := e.get(c, "/login"); code != http.StatusOK {
		e.t.Fatalf("login page: %d", code)
	}
	code, body, _ := e.post(c, "/login", url.Values{"email": {email}, "password": {pass}})
	return code, body
}

// login returns a client logged in as email.
func (e *env) login(email string) *http.Client {
	e.t.Helper()
	c := e.client()
	if code, body := e.tryLogin(c, email, testPass); code != http.StatusSeeOther {
		e.t.Fatalf("login %s: %d %s", email, code, body)
	}
	return c
}
