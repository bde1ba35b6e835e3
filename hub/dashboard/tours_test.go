package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/hub/plan"
	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
)

// planMany plans n stops of "Numéribus 54" (team cd54) in Nancy, two a
// day from 1 May 2026 (09:00 and 14:00), through the store as the
// dashboard does, and returns them.
func planMany(t testing.TB, st Planner, n int) []domain.TourStop {
	t.Helper()
	var stops []domain.TourStop
	day := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		start, end := "09:00", "11:00"
		if i%2 == 1 {
			start, end = "14:00", "16:00"
		}
		stops = append(stops, domain.TourStop{Vehicule: "Numéribus 54", Date: day.AddDate(0, 0, i/2).Format("2006-01-02"),
			HeureDebut: start, HeureFin: end, Lieu: fmt.Sprintf("Arrêt %03d", i), Commune: "54395"})
	}
	saved, err := st.PlanStops(context.Background(), "cd54", stops, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return saved
}

// markMade sends, from device d, the change a laptop makes when the
// mediators mark stop made (realise), numbered seq.
func markMade(t testing.TB, st store.Store, d store.Device, stop domain.TourStop, seq uint64) {
	t.Helper()
	stop.Realise = true
	f, err := change.Encode(&stop)
	if err != nil {
		t.Fatal(err)
	}
	c := change.Change{Kind: domain.KindTourStop, ID: stop.ID, Op: change.OpUpsert, Fields: f, HLC: hlc.FromTime(testNow.Add(time.Hour)), Seq: seq}
	if _, _, err := st.ApplyBatch(context.Background(), d.ID, []change.Change{c}, 1000); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserTours: a coordinator's tournées page at 1,280 px with 120
// stops planned lists them fifty a page; the calendar of June 2026 shows
// two stops on the 16th, one made, and a click lists that day's; the
// plan form finds a commune by its name; ?commune=INSEE opens the form
// with it; a stop is changed (place and time) from its own page, which
// keeps the mediators' "made" and logs a new change of the stop for the
// team's laptops. Every state fits the window and passes axe-core.
func TestBrowserTours(t *testing.T) {
	e := newEnv(t, false)
	bus54, _ := seed(t, e.st)
	stops := planMany(t, e.st, 120)
	// 16 June 2026 holds stops 92 and 93 (two a day from 1 May).
	june16 := stops[92]
	if june16.Date != "2026-06-16" {
		t.Fatalf("stop 92 on %s", june16.Date)
	}
	markMade(t, e.st, bus54, june16, uint64(len(seed54)+1))

	b := newBrowserAt(t, e, 1280)
	b.login("coord54@cd54.fr")
	b.Do("tours", chromedp.Navigate(b.Base+"/tournees?du=2026-05-01&au=2026-07-31"), chromedp.WaitVisible(css("#planned")))
	if c := b.Text("#plan-count"); c != "Arrêts 1 à 50 sur 120." {
		t.Fatalf("count: %q", c)
	}
	if n := len(b.texts("#planned tbody tr")); n != 50 {
		t.Fatalf("%d rows on page 1, want 50", n)
	}
	b.fits("/tournees")
	b.Axe("/tournees")
	b.NextPage("page 3", chromedp.Navigate(b.Base+"/tournees?du=2026-05-01&au=2026-07-31&page=3"), "#planned")
	if c, p := b.Text("#plan-count"), b.Text("#page-of"); c != "Arrêts 101 à 120 sur 120." || p != "Page 3 sur 3" {
		t.Fatalf("page 3: %q, %q", c, p)
	}
	b.NextPage("page 2", chromedp.Click(css("#page-prev")), "#planned")
	if c := b.Text("#plan-count"); c != "Arrêts 51 à 100 sur 120." {
		t.Fatalf("back to page 2: %q", c)
	}

	// The calendar: June 2026, the current month.
	if h := b.Text("#h-calendar"); h != "Calendrier de juin 2026" {
		t.Fatalf("calendar: %q", h)
	}
	if d := b.Text("#day-2026-06-16"); !strings.Contains(d, "2 prévu(s)") || !strings.Contains(d, "1 réalisé(s)") {
		t.Fatalf("16 June: %q", d)
	}
	if s := b.Text("#cal-summary"); s != "58 arrêt(s) prévu(s) ce mois-ci, dont 1 réalisé(s)." {
		t.Fatalf("June: %q", s)
	}
	b.NextPage("day", chromedp.Click(css("#day-2026-06-16 a")), "#planned")
	if h := b.Text("#planned-title"); h != "Arrêts planifiés le 16/06/2026" {
		t.Fatalf("day list title %q", h)
	}
	if rows := b.texts("#planned tbody tr"); len(rows) != 2 || !strings.Contains(rows[0], "oui") || !strings.Contains(rows[1], "non") {
		t.Fatalf("16 June's stops: %q", rows)
	}
	b.Shot("hub-tournees")
	b.fits("/tournees (un jour)")
	b.Axe("/tournees (un jour)")
	b.NextPage("July", chromedp.Click(css("#cal-next")), "#cal-table")
	if h := b.Text("#h-calendar"); h != "Calendrier de juillet 2026" {
		t.Fatalf("next month: %q", h)
	}

	// Plan a stop, the commune found by its name.
	b.Do("plan form", chromedp.Navigate(b.Base+"/tournees?du=2026-05-01&au=2026-07-31"), chromedp.WaitVisible(css("#plan-form")),
		chromedp.SendKeys(css("#p-commune"), "Vandœuvre"))
	b.WaitJS("commune suggestions", `Array.from(document.querySelectorAll("#communes-list option")).some(o => o.value === "Vandœuvre-lès-Nancy (54547)")`)
	b.Do("fill", chromedp.SetValue(css("#p-commune"), "Vandœuvre-lès-Nancy (54547)"), chromedp.SetValue(css("#p-team"), "cd54"),
		chromedp.SetValue(css("#p-vehicule"), "Numéribus 54"), chromedp.SetValue(css("#p-date"), "2026-07-20"),
		chromedp.SetValue(css("#p-debut"), "10:00"), chromedp.SetValue(css("#p-fin"), "11:30"), chromedp.SetValue(css("#p-lieu"), "Médiathèque"))
	b.NextPage("plan", chromedp.Click(css("#plan-submit")), "#plan-done")
	planned, err := e.st.PlannedStops(context.Background(), plan.Filter{Team: "cd54", From: "2026-07-20", To: "2026-07-20"})
	if err != nil || len(planned) != 1 || planned[0].Commune != "54547" || planned[0].Lieu != "Médiathèque" {
		t.Fatalf("stop planned by name: %+v %v", planned, err)
	}

	// From the map: ?commune= opens the form with the commune.
	b.Do("from the map", chromedp.Navigate(b.Base+"/tournees?commune=54329#plan-form"), chromedp.WaitVisible(css("#plan-form")))
	if v, err := chromedp.Run(b.Ctx, chromedp.Value(css("#p-commune"))); err != nil || v != "Lunéville (54329)" {
		t.Fatalf("commune from the query: %q %v", v, err)
	}

	// Change the stop made on 16 June: place and start time.
	b.Do("day again", chromedp.Navigate(b.Base+"/tournees?jour=2026-06-16&du=2026-05-01&au=2026-07-31"), chromedp.WaitVisible(css("#planned")))
	b.NextPage("edit", chromedp.Click(css("#stop-"+june16.ID.String()+" a.button")), "#plan-form")
	b.fits("modifier un arrêt")
	b.Axe("modifier un arrêt")
	b.Do("edit", chromedp.SetValue(css("#p-lieu"), "Salle des fêtes"), chromedp.SetValue(css("#p-debut"), "08:30"))
	b.NextPage("save", chromedp.Click(css("#plan-submit")), "#plan-done")
	if f := b.Text("#plan-done"); !strings.Contains(f, "Salle des fêtes") || !strings.Contains(f, "modifié") {
		t.Fatalf("after the change: %q", f)
	}
	got, err := e.st.PlannedStops(context.Background(), plan.Filter{Team: "cd54", From: "2026-06-16", To: "2026-06-16"})
	if err != nil {
		t.Fatal(err)
	}
	var edited *plan.Stop
	for i := range got {
		if got[i].ID == june16.ID {
			edited = &got[i]
		}
	}
	if edited == nil || edited.Lieu != "Salle des fêtes" || edited.HeureDebut != "08:30" || !edited.Made || !edited.Realise || !edited.FromHub {
		t.Fatalf("stop after the change: %+v", edited)
	}
	// The change is in the team's log, what the laptops pull.
	logged, _, _, err := e.st.ChangesSince(context.Background(), "cd54", "", 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.DecodeLogged(logged); err != nil {
		t.Fatal(err)
	}
	last := logged[len(logged)-1]
	if last.ID != june16.ID || last.Kind != domain.KindTourStop || len(last.Fields) != 2 {
		t.Fatalf("last change of cd54's log: %s %s with %d field(s), want the stop's place and start", last.Kind, last.ID, len(last.Fields))
	}
	if a := strings.Join(e.auditOf("coord54@cd54.fr"), "\n"); !strings.Contains(a, "stop_edited "+june16.ID.String()+" cd54 Numéribus 54 2026-06-16 54395") {
		t.Fatalf("audit:\n%s", a)
	}
	b.fits("/tournees après modification")
	b.Axe("/tournees après modification")

	// A refused change stays on its page with the problem, nothing stored.
	b.Do("bad edit", chromedp.Navigate(b.Base+"/tournees/"+june16.ID.String()+"/modifier"), chromedp.WaitVisible(css("#plan-form")),
		chromedp.SetValue(css("#p-fin"), "07:00"))
	b.NextPage("refused", chromedp.Click(css("#plan-submit")), "#plan-error")
	b.Axe("modifier un arrêt (refusé)")
}

// A stop of another territory cannot be changed, nor a commune outside
// the scope chosen, nor by a viewer or another site.
func TestEditStopRefusals(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	st := planMany(t, e.st, 2)[0]
	path := "/tournees/" + st.ID.String() + "/modifier"
	form := url.Values{"vehicule": {"Numéribus 54"}, "date": {st.Date}, "debut": {"09:00"}, "fin": {"11:00"}, "lieu": {"Ailleurs"}, "commune": {"Nancy"}}
	for _, who := range []string{"coord88@cd88.fr", "lecteur@region.fr"} {
		c := e.login(who)
		if code, _, _ := e.get(c, path); code != http.StatusForbidden {
			t.Errorf("%s opening the change: %d", who, code)
		}
		if code, _, _ := e.post(c, path, form); code != http.StatusForbidden {
			t.Errorf("%s changing: %d", who, code)
		}
	}
	c := e.login("coord54@cd54.fr")
	if code, _, _ := e.postFrom(c, "https://evil.example", "cross-site", path, form); code != http.StatusForbidden {
		t.Errorf("cross-site change: %d", code)
	}
	out := url.Values{}
	for k, v := range form {
		out[k] = v
	}
	out.Set("commune", "Épinal")
	if code, body, _ := e.post(c, path, out); code != http.StatusForbidden || !strings.Contains(body, "Épinal (88160) n&#39;est pas dans votre territoire") {
		t.Errorf("moving a stop out of the territory: %d", code)
	}
	out.Set("commune", "Nulle-Part-sur-Mer")
	if code, body, _ := e.post(c, path, out); code != http.StatusUnprocessableEntity || !strings.Contains(body, "introuvable") {
		t.Errorf("unknown commune: %d", code)
	}
	got, _ := e.st.PlannedStops(context.Background(), plan.Filter{Team: "cd54"})
	for _, s := range got {
		if s.Lieu == "Ailleurs" {
			t.Fatalf("a refused change was stored: %+v", s)
		}
	}
	// The name alone finds the commune of the scope.
	if code, body, _ := e.post(c, path, form); code != http.StatusOK || !strings.Contains(body, "modifié") {
		t.Fatalf("change with the commune's name: %d", code)
	}
	if code, _, _ := e.post(c, "/tournees/"+st.ID.String()+"/annuler", url.Values{}); code != http.StatusOK {
		t.Fatalf("cancel: %d", code)
	}
	if code, _, _ := e.post(c, path, form); code != http.StatusForbidden {
		t.Fatalf("changing a cancelled stop: %d", code)
	}
}
