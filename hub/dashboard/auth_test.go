package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"numeribus/hub/accounts"
)

func TestPagesNeedASession(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	for _, p := range []string{"/", "/apercu", "/couverture", "/tournees", "/exports", "/postes", "/utilisateurs", "/exports/activites.csv"} {
		code, _, res := e.get(c, p)
		if code != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Errorf("GET %s without a session: %d %s, want 303 to /login", p, code, res.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/api/overview", "/api/coverage", "/api/vehicles", "/api/devices"} {
		if code, body, _ := e.get(c, p); code != http.StatusUnauthorized || apiErrorCode(t, body) != "auth" {
			t.Errorf("GET %s without a session: %d %s, want 401 with the error code auth", p, code, body)
		}
	}
	// A made-up cookie is no session.
	u, _ := url.Parse(e.ts.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "forged"}})
	if code, _, _ := e.get(c, "/api/devices"); code != http.StatusUnauthorized {
		t.Errorf("forged cookie: %d", code)
	}
}

func TestLoginSessionCookieAndLogout(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	if code, body := e.tryLogin(c, "admin@hub.fr", "pas le bon mot de passe"); code != http.StatusUnauthorized || !strings.Contains(body, "incorrect") {
		t.Fatalf("wrong password: %d", code)
	}
	_, _, res := e.post(c, "/login", url.Values{"email": {"Admin@Hub.fr"}, "password": {testPass}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/apercu" {
		t.Fatalf("login: %d → %s", res.StatusCode, res.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure {
		t.Fatalf("session cookie over http: %+v", sc)
	}
	// Only the token's hash is stored.
	if _, err := e.st.Session(context.Background(), accounts.HashToken(sc.Value)); err != nil {
		t.Fatalf("session not stored under the token's hash: %v", err)
	}
	if code, body, _ := e.get(c, "/postes"); code != http.StatusOK || !strings.Contains(body, "admin@hub.fr") {
		t.Fatalf("devices page after login: %d", code)
	}
	// Idle for longer than the limit: logged out.
	e.clock.Add(accounts.IdleTimeout + time.Minute)
	if code, _, _ := e.get(c, "/postes"); code != http.StatusSeeOther {
		t.Fatalf("idle session still valid: %d", code)
	}
	c = e.login("admin@hub.fr")
	if code, _, _ := e.post(c, "/logout", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := e.get(c, "/postes"); code != http.StatusSeeOther {
		t.Fatalf("page after logout: %d", code)
	}
	log, _ := e.st.AuditLog(context.Background(), 10)
	var actions []string
	for _, a := range log {
		actions = append(actions, string(a.Action))
	}
	if got := strings.Join(actions, " "); !strings.Contains(got, "logout login") || !strings.Contains(got, "login_failed") {
		t.Fatalf("audit log: %s", got)
	}
}

func TestSessionCookieSecureOverTLS(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	_, _, res := e.post(c, "/login", url.Values{"email": {"admin@hub.fr"}, "password": {testPass}})
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie && ck.Secure && ck.HttpOnly && ck.SameSite == http.SameSiteStrictMode {
			return
		}
	}
	t.Fatalf("no Secure session cookie over TLS: %v", res.Cookies())
}

// Every write another site sends is refused, whatever the browser says
// of it, even with the session cookie (which SameSite=Strict keeps from
// it anyway); the same writes from the dashboard's pages pass. The login
// too: another site cannot log a browser into an account of its choosing.
func TestCrossSiteWritesRefused(t *testing.T) {
	e := newEnv(t, false)
	c := e.login("admin@hub.fr")
	senders := []struct{ name, origin, site string }{
		{"another site", "http://evil.example.com", "cross-site"},
		{"another site, no Origin", "", "cross-site"},
		{"a sibling subdomain", "http://other.example.com", "same-site"},
		{"another site, old browser", "http://evil.example.com", ""},
		{"an opaque origin, old browser", "null", ""},
	}
	form := url.Values{"name": {"bus-1"}, "team": {"cd54"}, "days": {"7"}}
	for _, s := range senders {
		if code, _, _ := e.postFrom(c, s.origin, s.site, "/postes/inscription", form); code != http.StatusForbidden {
			t.Errorf("enrollment from %s: %d, want 403", s.name, code)
		}
		if code, _, _ := e.postFrom(c, s.origin, s.site, "/logout", nil); code != http.StatusForbidden {
			t.Errorf("logout from %s: %d, want 403", s.name, code)
		}
		if code, _, _ := e.postFrom(e.client(), s.origin, s.site, "/login", url.Values{"email": {"coord54@cd54.fr"}, "password": {testPass}}); code != http.StatusForbidden {
			t.Errorf("login from %s: %d, want 403", s.name, code)
		}
	}
	if ds, _ := e.st.Devices(context.Background()); len(ds) != 0 {
		t.Fatal("an enrollment code was made from another site")
	}
	if code, _, _ := e.get(c, "/postes"); code != http.StatusOK {
		t.Fatalf("logged out from another site: %d", code)
	}
	// From the dashboard's pages, as Chromium and an older browser send them.
	if code, body, _ := e.post(c, "/postes/inscription", form); code != http.StatusOK || !strings.Contains(body, "NSYNC1-") {
		t.Fatalf("enrollment from the dashboard: %d", code)
	}
	form.Set("name", "bus-2")
	if code, body, _ := e.postFrom(c, e.ts.URL, "", "/postes/inscription", form); code != http.StatusOK || !strings.Contains(body, "NSYNC1-") {
		t.Fatalf("enrollment from the dashboard, old browser: %d", code)
	}
	if code, _, _ := e.post(c, "/logout", nil); code != http.StatusSeeOther {
		t.Fatalf("logout from the dashboard: %d", code)
	}
}

// A form the server cannot read in full is refused before any handler
// acts on part of it.
func TestUnreadableFormRefused(t *testing.T) {
	e := newEnv(t, false)
	c := e.login("admin@hub.fr")
	big := url.Values{"name": {"bus-1"}, "team": {"cd54"}, "days": {"7"}, "pad": {strings.Repeat("x", 1<<20)}}
	if code, _, _ := e.post(c, "/postes/inscription", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("enrollment over 1 MiB: %d, want 413", code)
	}
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/postes/inscription", strings.NewReader("name=bus-3&team=cd54&days=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("broken form encoding: %d, want 400", res.StatusCode)
	}
	big = url.Values{"email": {"admin@hub.fr"}, "password": {testPass}, "pad": {strings.Repeat("x", 64<<10)}}
	if code, _, _ := e.post(e.client(), "/login", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("login over 64 KiB: %d, want 413", code)
	}
	if ds, _ := e.st.Devices(context.Background()); len(ds) != 0 {
		t.Fatalf("enrollment codes made from unreadable forms: %d", len(ds))
	}
}

func TestHostAndOriginChecked(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.Hosts = []string{"hub.example.fr"} })
	c := e.login("admin@hub.fr")
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/login", nil)
	req.Host = "evil.example.com"
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Host: %d", res.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, e.ts.URL+"/login", nil)
	req.Host = "hub.example.fr"
	res, _ = c.Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("configured Host refused: %d", res.StatusCode)
	}
	form := url.Values{"name": {"bus-1"}, "team": {"cd54"}, "days": {"7"}}
	req, _ = http.NewRequest(http.MethodPost, e.ts.URL+"/postes/inscription", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example.com")
	res, _ = c.Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %d", res.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, e.ts.URL+"/postes", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, _ = c.Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site fetch: %d", res.StatusCode)
	}
	if ds, _ := e.st.Devices(context.Background()); len(ds) != 0 {
		t.Fatal("refused requests changed something")
	}
}

func TestLoginRateLimited(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	for i := 0; i < accounts.DefaultFreeFailures; i++ {
		if code, _ := e.tryLogin(c, "coord54@cd54.fr", "mauvais mot de passe"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	// Now even the right password waits.
	code, body := e.tryLogin(c, "coord54@cd54.fr", testPass)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "Trop de tentatives") {
		t.Fatalf("after %d failures: %d", accounts.DefaultFreeFailures, code)
	}
	e.clock.Add(accounts.DefaultBaseDelay + time.Second)
	if code, _ := e.tryLogin(c, "coord54@cd54.fr", testPass); code != http.StatusSeeOther {
		t.Fatalf("after the delay: %d", code)
	}

	// Per address: guessing many e-mails from one place is slowed too.
	e2 := newEnv(t, false)
	c2 := e2.client()
	for i := 0; i < accounts.DefaultFreeFailures; i++ {
		e2.tryLogin(c2, "personne"+itoa(i)+"@x.fr", "devine")
	}
	if code, _ := e2.tryLogin(c2, "admin@hub.fr", testPass); code != http.StatusTooManyRequests {
		t.Fatalf("same address after %d failures on other e-mails: %d", accounts.DefaultFreeFailures, code)
	}
	log, _ := e2.st.AuditLog(context.Background(), 20)
	var failed, limited int
	for _, a := range log {
		switch a.Action {
		case accounts.ActionLoginFailed:
			failed++
		case accounts.ActionLoginLimited:
			limited++
		}
	}
	if failed != accounts.DefaultFreeFailures || limited != 1 {
		t.Fatalf("audit: %d failures, %d limited", failed, limited)
	}
}

func TestAdminPagesRefusedToOthers(t *testing.T) {
	e := newEnv(t, false)
	for _, who := range []string{"coord54@cd54.fr", "lecteur@region.fr"} {
		c := e.login(who)
		for _, p := range []string{"/postes", "/utilisateurs", "/api/devices", "/postes/bus-1/revoquer"} {
			if code, _, _ := e.get(c, p); code != http.StatusForbidden {
				t.Errorf("%s GET %s: %d, want 403", who, p, code)
			}
		}
		// Even from the dashboard's own pages, no admin action.
		form := url.Values{"name": {"bus-9"}, "team": {"cd54"}, "days": {"7"}}
		if code, _, _ := e.post(c, "/postes/inscription", form); code != http.StatusForbidden {
			t.Errorf("%s POST enrollment: %d, want 403", who, code)
		}
	}
}

// apiErrorCode is the "error" member of an API answer: one of
// internal/apperr's codes, as in the agent's API.
func apiErrorCode(t *testing.T, body string) string {
	t.Helper()
	var v struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Message == "" {
		t.Fatalf("an API error answer without a message (%v): %s", err, body)
	}
	return v.Error
}
