package dashboard

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"numeribus/hub/plan"
)

// A coordinator plans a stop of their département from the tournées page:
// it is stored as a hub-planned stop (what agents pull) and listed; a stop
// in another département is refused, and so is a viewer's or one sent by
// another site; the coordinator of the other département can
// neither see nor cancel it; its own coordinator cancels it.
func TestPlanFromTheDashboard(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	c := e.login("coord54@cd54.fr")
	stop := url.Values{"team": {"cd54"}, "vehicule": {"Numéribus 54"}, "date": {"2026-06-20"},
		"debut": {"09:30"}, "fin": {"12:00"}, "lieu": {"Place Stanislas"}, "commune": {"54395"}}

	if code, _, _ := e.postFrom(c, "http://evil.example.com", "cross-site", "/tournees/planifier", url.Values{"team": {"cd54"}, "vehicule": {"X"},
		"date": {"2026-06-20"}, "lieu": {"Autre site"}, "commune": {"54395"}}); code != http.StatusForbidden {
		t.Fatalf("plan from another site: %d", code)
	}
	out := url.Values{}
	for k, v := range stop {
		out[k] = v
	}
	out.Set("commune", "88160")
	if code, body, _ := e.post(c, "/tournees/planifier", out); code != http.StatusForbidden || !strings.Contains(body, "pas dans votre territoire") {
		t.Fatalf("stop outside the territory: %d", code)
	}
	bad := url.Values{}
	for k, v := range stop {
		bad[k] = v
	}
	bad.Set("fin", "08:00")
	if code, body, _ := e.post(c, "/tournees/planifier", bad); code != http.StatusUnprocessableEntity || !strings.Contains(body, `id="plan-error"`) ||
		!strings.Contains(body, `value="Place Stanislas"`) {
		t.Fatalf("stop ending before it starts: %d", code)
	}
	code, body, _ := e.post(c, "/tournees/planifier", stop)
	if code != http.StatusOK || !strings.Contains(body, `id="plan-done"`) || !strings.Contains(body, "Place Stanislas") {
		t.Fatalf("plan: %d\n%s", code, body)
	}
	stops, err := e.st.PlannedStops(t.Context(), plan.Filter{Team: "cd54"})
	if err != nil || len(stops) != 1 || !stops[0].FromHub || stops[0].Commune != "54395" || stops[0].HeureDebut != "09:30" {
		t.Fatalf("stored stops: %+v %v", stops, err)
	}
	id := stops[0].ID.String()

	// The other département's coordinator sees none of it, cannot cancel it.
	c88 := e.login("coord88@cd88.fr")
	if _, body, _ := e.get(c88, "/tournees"); strings.Contains(body, "Place Stanislas") {
		t.Fatal("coordinator 88 sees a stop of Meurthe-et-Moselle")
	}
	if code, _, _ := e.post(c88, "/tournees/"+id+"/annuler", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("coordinator 88 cancelling: %d", code)
	}
	// A viewer reads, does not plan.
	v := e.login("lecteur@region.fr")
	_, body, _ = e.get(v, "/tournees")
	if strings.Contains(body, `id="plan-form"`) {
		t.Fatal("the plan form is shown to a viewer")
	}
	if code, _, _ := e.post(v, "/tournees/planifier", url.Values{"team": {"cd54"},
		"vehicule": {"V"}, "date": {"2026-06-21"}, "lieu": {"L"}, "commune": {"54395"}}); code != http.StatusForbidden {
		t.Fatalf("viewer planning: %d", code)
	}

	// Listed for its coordinator, then cancelled.
	_, body, _ = e.get(c, "/tournees")
	if !regexp.MustCompile(`action="/tournees/` + id + `/annuler"`).MatchString(body) {
		t.Fatal("planned stop not listed with its cancel button")
	}
	if code, body, _ := e.post(c, "/tournees/"+id+"/annuler", url.Values{}); code != http.StatusOK || !strings.Contains(body, "annulé") {
		t.Fatalf("cancel: %d", code)
	}
	if stops, _ := e.st.PlannedStops(t.Context(), plan.Filter{Team: "cd54"}); len(stops) != 0 {
		t.Fatalf("still planned after cancelling: %+v", stops)
	}
}
