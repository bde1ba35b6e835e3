package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"numeribus/hub/accounts"
	"numeribus/hub/report"
)

// spring is March–May 2026, the seeded period.
const spring = "?du=2026-03-01&au=2026-05-31"

func headline(t *testing.T, e *env, c *http.Client, query string) (int, report.Headline) {
	t.Helper()
	code, body, _ := e.get(c, "/api/overview"+query)
	var ov report.Overview
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &ov); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
	}
	return code, ov.Headline
}

func TestIndicatorsMatchTheSeed(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	admin := e.login("admin@hub.fr")
	if code, h := headline(t, e, admin, spring); code != http.StatusOK || h.Activites != seed54Activities+seed88Activities || h.Accompagnements != seed54Acc+seed88Acc {
		t.Fatalf("admin, everything: %d %+v", code, h)
	}
	if code, h := headline(t, e, admin, spring+"&territoire=88"); code != http.StatusOK || h.Accompagnements != seed88Acc {
		t.Fatalf("admin, 88: %d %+v", code, h)
	}
	if code, h := headline(t, e, admin, "?du=2026-03-01&au=2026-04-30&territoire=54"); code != http.StatusOK || h.Activites != 4 || h.Accompagnements != 15 {
		t.Fatalf("admin, 54 in March–April: %d %+v", code, h)
	}
	code, body, _ := e.get(admin, "/apercu"+spring+"&territoire=54")
	if code != http.StatusOK || !strings.Contains(body, `id="tile-accompagnements"><span class="label">Accompagnements</span><span class="value">17</span>`) {
		t.Fatalf("overview page for 54: %d", code)
	}
	if !strings.Contains(body, `<svg xmlns="http://www.w3.org/2000/svg" class="chart"`) || !strings.Contains(body, "<title") {
		t.Fatal("no accessible SVG chart on the overview")
	}
	// Every text exists in text_fr.go: a missing key shows as [[key]].
	for _, p := range []string{"/apercu", "/couverture", "/tournees", "/exports", "/postes", "/utilisateurs"} {
		if code, body, _ := e.get(admin, p+spring); code != http.StatusOK || strings.Contains(body, "[[") {
			t.Errorf("%s: %d, or a text key missing", p, code)
		}
	}
}

// containsWord reports whether word occurs in body as a whole token: not
// inside a random id, whose hex digits spell "cd88" or "88160" now and
// then (the test failed about once in 200 runs on such an id).
func containsWord(body, word string) bool {
	return regexp.MustCompile(`(^|[^0-9A-Za-z-])` + regexp.QuoteMeta(word) + `($|[^0-9A-Za-z-])`).MatchString(body)
}

// TestCoordinatorSeesOnlyTheirTerritory: numbers of another
// département never reach a coordinator, on pages, in the API or in
// exports; asking for it explicitly is refused.
func TestCoordinatorSeesOnlyTheirTerritory(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	c := e.login("coord54@cd54.fr")
	if code, h := headline(t, e, c, spring); code != http.StatusOK || h.Accompagnements != seed54Acc || h.Activites != seed54Activities {
		t.Fatalf("coordinator 54, no territory asked: %d %+v", code, h)
	}
	for _, q := range []string{spring + "&territoire=88", spring + "&territoire=88160", spring + "&territoire=dep:88", spring + "&territoire=reg:44"} {
		code, h := headline(t, e, c, q)
		if code == http.StatusOK && (h.Accompagnements >= seed88Acc || h.Activites > seed54Activities) {
			t.Fatalf("coordinator 54 asked %s and got 88's numbers: %+v", q, h)
		}
		if strings.Contains(q, "88") && code != http.StatusForbidden {
			t.Errorf("coordinator 54 asking %s: %d, want 403", q, code)
		}
	}
	for _, p := range []string{"/apercu", "/couverture", "/tournees", "/exports/activites.csv", "/exports/indicateurs.csv", "/api/coverage", "/api/vehicles"} {
		code, body, _ := e.get(c, p+spring)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", p, code)
		}
		for _, leak := range []string{"Épinal", "88160", "Numéribus 88", "Luc Petitjean", "cd88", "Intelligence artificielle"} {
			// The indicators CSV lists every theme of the code list,
			// zeros included: a label there is no leak.
			if containsWord(body, leak) && !(p == "/exports/indicateurs.csv" && leak == "Intelligence artificielle") {
				t.Errorf("coordinator 54 sees %q on %s", leak, p)
			}
		}
		if code, _, _ := e.get(c, p+spring+"&territoire=88"); code != http.StatusForbidden {
			t.Errorf("%s for 88: %d, want 403", p, code)
		}
	}
	// The other way round.
	c88 := e.login("coord88@cd88.fr")
	if code, h := headline(t, e, c88, spring); code != http.StatusOK || h.Accompagnements != seed88Acc {
		t.Fatalf("coordinator 88: %d %+v", code, h)
	}
	_, body, _ := e.get(c88, "/exports/activites.csv"+spring)
	if containsWord(body, "Nancy") || containsWord(body, "54395") || strings.Count(body, "\n") != seed88Activities+1 {
		t.Fatalf("coordinator 88's export:\n%s", body)
	}
	// Refusals are audited.
	log, _ := e.st.AuditLog(context.Background(), 100)
	denied := 0
	for _, a := range log {
		if a.Action == accounts.ActionDenied {
			denied++
		}
	}
	if denied == 0 {
		t.Fatal("out-of-scope requests not audited")
	}
}

// TestViewerGetsNoPersonalData: no mediator names, no per-activity
// export, no mediator filter.
func TestViewerGetsNoPersonalData(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	c := e.login("lecteur@region.fr")
	if code, h := headline(t, e, c, spring); code != http.StatusOK || h.Accompagnements != seed54Acc+seed88Acc {
		t.Fatalf("viewer aggregates: %d %+v", code, h)
	}
	for _, p := range []string{"/apercu", "/couverture", "/tournees", "/exports", "/exports/indicateurs.csv", "/api/vehicles", "/api/overview", "/api/coverage"} {
		code, body, _ := e.get(c, p+spring)
		if code != http.StatusOK {
			t.Fatalf("viewer %s: %d", p, code)
		}
		for _, name := range []string{"Camille Martin", "Luc Petitjean", "activites.csv"} {
			if strings.Contains(body, name) {
				t.Errorf("viewer sees %q on %s", name, p)
			}
		}
	}
	if code, _, _ := e.get(c, "/exports/activites.csv"+spring); code != http.StatusForbidden {
		t.Fatalf("viewer per-activity export: %d", code)
	}
	if code, body, _ := e.get(c, "/api/overview"+spring+"&mediateur=Camille+Martin"); code != http.StatusForbidden || apiErrorCode(t, body) != "forbidden" {
		t.Fatalf("viewer mediator filter: %d %s", code, body)
	}
	if code, body, _ := e.get(c, "/api/overview?du=2026-13-45"); code != http.StatusBadRequest && code != http.StatusUnprocessableEntity || apiErrorCode(t, body) == "" {
		t.Fatalf("a bad period: %d %s", code, body)
	}
	// A coordinator does see the mediators, and that read is audited.
	co := e.login("coord54@cd54.fr")
	if _, body, _ := e.get(co, "/tournees"+spring); !strings.Contains(body, "Camille Martin") {
		t.Fatal("coordinator does not see their mediators")
	}
	log, _ := e.st.AuditLog(context.Background(), 50)
	if len(log) == 0 || log[0].Action != accounts.ActionPersonalRead {
		t.Fatalf("mediator list read not audited: %+v", log[:1])
	}
}

func TestBearerToken(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	u, _ := e.st.UserByEmail(context.Background(), "coord54@cd54.fr")
	tok, _ := accounts.NewToken()
	if err := e.st.CreateAPIToken(context.Background(), accounts.APIToken{Hash: accounts.HashToken(tok), UserID: u.ID, Name: "test", Created: testNow}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/overview"+spring, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ov report.Overview
	json.NewDecoder(res.Body).Decode(&ov)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || ov.Headline.Accompagnements != seed54Acc {
		t.Fatalf("bearer: %d %+v", res.StatusCode, ov.Headline)
	}
	req.Header.Set("Authorization", "Bearer wrong")
	res, _ = http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong bearer: %d", res.StatusCode)
	}
	// Bearer tokens do not open the HTML pages.
	req, _ = http.NewRequest(http.MethodGet, e.ts.URL+"/apercu", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, _ = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("bearer on a page: %d", res.StatusCode)
	}
}
