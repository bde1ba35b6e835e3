package ui

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// counts is how many records of each kind the store holds, and its last
// logged change.
type storeCounts struct {
	kinds map[domain.Kind]int
	seq   uint64
}

func countAll(t *testing.T, st *store.Store) storeCounts {
	t.Helper()
	c := storeCounts{kinds: map[domain.Kind]int{}}
	for _, k := range domain.Kinds {
		c.kinds[k] = countKind(t, st, k)
	}
	last, _, err := st.Seqs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.seq = last
	return c
}

// createForms are the create forms: where the form is, where it posts,
// what it creates, and the message of a second submission.
func createForms(e *env) []struct {
	name, get, post string
	v               url.Values
	kinds           map[domain.Kind]int // records one submission adds
	already         string
} {
	bn, _ := followed(e)
	anon := &domain.Beneficiary{ID: ident.New(), Genre: "masculin", Commune: "54395"}
	e.seed(anon)
	page := "/beneficiaires/" + bn.ID.String()
	act := activityForm()
	dem := activityForm()
	dem.Set("flow", "demarche")
	dem["thematiques"] = []string{domain.ThemeDemarches}
	dem.Set("demarches", "social_sante")
	return []struct {
		name, get, post string
		v               url.Values
		kinds           map[domain.Kind]int
		already         string
	}{
		{"individual activity with an anonymous person", "/activites/nouvelle?type=individuel", "/activites/nouvelle", act,
			map[domain.Kind]int{domain.KindActivity: 1, domain.KindBeneficiary: 1}, fr["activity_already"]},
		{"démarche", "/activites/nouvelle?type=demarche", "/activites/nouvelle", dem,
			map[domain.Kind]int{domain.KindActivity: 1, domain.KindBeneficiary: 1}, fr["activity_already"]},
		{"workshop", "/activites/nouvelle?type=collectif", "/activites/nouvelle",
			url.Values{"flow": {"collectif"}, "date": {"02/03/2026"}, "duree": {"90"}, "type_lieu": {"lieu_activite"},
				"commune": {"54395"}, "thematiques": {"securite_numerique"}, "titre_atelier": {"Arnaques"}, "participants.total": {"8"}},
			map[domain.Kind]int{domain.KindActivity: 1}, fr["activity_already"]},
		{"activity of a followed person", "/activites/nouvelle?type=individuel&beneficiaire=" + bn.ID.String(), "/activites/nouvelle",
			url.Values{"flow": {"individuel"}, "beneficiaire": {bn.ID.String()}, "date": {"02/03/2026"}, "duree": {"30"},
				"type_lieu": {"lieu_activite"}, "commune": {"54395"}, "thematiques": {"email"}},
			map[domain.Kind]int{domain.KindActivity: 1}, fr["activity_already"]},
		{"anonymous beneficiary", "/beneficiaires/nouveau", "/beneficiaires/nouveau",
			url.Values{"genre": {"feminin"}, "commune": {"54395"}},
			map[domain.Kind]int{domain.KindBeneficiary: 1}, fr["beneficiary_already"]},
		{"followed beneficiary with consent", "/beneficiaires/nouveau?suivi=1", "/beneficiaires/nouveau",
			url.Values{"suivi": {"1"}, "prenom": {"Léa"}, "nom": {"Martin"}, "consent.finalites": {domain.FinaliteSuivi},
				"consent.mode": {"oral_trace"}, "consent.date": {"02/03/2026"}, "commune": {"54395"}},
			map[domain.Kind]int{domain.KindBeneficiary: 1, domain.KindConsent: 1}, fr["beneficiary_already"]},
		{"consent given later", "/beneficiaires/" + anon.ID.String() + "/consentement", "/beneficiaires/" + anon.ID.String() + "/consentement",
			url.Values{"consent.finalites": {domain.FinaliteDiagnostic}, "consent.mode": {"oral_trace"}, "consent.date": {"02/03/2026"}},
			map[domain.Kind]int{domain.KindConsent: 1}, fr["consent_already"]},
		{"needs assessment", page + "/diagnostic", page + "/diagnostic",
			url.Values{"date": {"02/03/2026"}, "domaines.information_donnees": {"1"}, "autonomie_globale": {"partiellement_autonome"}},
			map[domain.Kind]int{domain.KindAssessment: 1}, fr["assessment_already"]},
	}
}

// Each create form, submitted twice as rendered (a double-click, or Back
// then submit again), makes its records once: the second submission
// writes nothing, not even a change for the hub, and says so.
func TestCreateFormPostedTwiceIsOneRecord(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	for _, c := range createForms(e) {
		t.Run(c.name, func(t *testing.T) {
			if code, _, _ := b.get(c.get); code != 200 || b.formID == "" {
				t.Errorf("GET %s: %d, form id %q", c.get, code, b.formID)
			}
			fid := b.formID
			before := countAll(t, e.st)
			code, path, body := b.post(c.post, url.Values(c.v))
			if code != 200 || strings.Contains(body, `id="summary"`) {
				t.Fatalf("first submission: %d %s\n%s", code, path, body)
			}
			after := countAll(t, e.st)
			for _, k := range domain.Kinds {
				if got, want := after.kinds[k]-before.kinds[k], c.kinds[k]; got != want {
					t.Errorf("first submission: %d new %s, want %d", got, k, want)
				}
			}
			// The same rendered form again.
			again := url.Values(c.v)
			code, path2, body := b.post(c.post, withValue(again, "form_id", fid))
			if code != 200 || path2 != path || !strings.Contains(body, html.EscapeString(c.already)) {
				t.Fatalf("second submission: %d %s (first went to %s), message %q shown: %v", code, path2, path, c.already,
					strings.Contains(body, html.EscapeString(c.already)))
			}
			if again := countAll(t, e.st); again.seq != after.seq || !equalCounts(again.kinds, after.kinds) {
				t.Fatalf("second submission wrote: %v seq %d, was %v seq %d", again.kinds, again.seq, after.kinds, after.seq)
			}
		})
	}
}

func withValue(v url.Values, name, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(name, value)
	return out
}

func equalCounts(a, b map[domain.Kind]int) bool {
	for _, k := range domain.Kinds {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// Two tabs are two renders: two forms, two records, even with the same
// content.
func TestTwoRendersAreTwoRecords(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/activites/nouvelle")
	tab1 := b.formID
	b.get("/activites/nouvelle")
	tab2 := b.formID
	if tab1 != "" && tab1 == tab2 {
		t.Fatalf("form ids of two renders: %q and %q", tab1, tab2)
	}
	for _, id := range []string{tab1, tab2} {
		if _, path, _ := b.post("/activites/nouvelle", withValue(activityForm(), "form_id", id)); path != "/" {
			t.Fatalf("save of form %s: %s", id, path)
		}
	}
	if n := countKind(t, e.st, domain.KindActivity); n != 2 {
		t.Fatalf("%d activities from two tabs, want 2", n)
	}
}

// A form shown again for its errors keeps its id: corrected and saved,
// then resubmitted after Back, it is still one activity.
func TestBackAfterCorrectionResubmitIsOneRecord(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/activites/nouvelle")
	fid := b.formID
	bad := activityForm()
	bad.Set("duree", "")
	code, _, body := b.post("/activites/nouvelle", bad)
	if code != http.StatusUnprocessableEntity || b.formID != fid {
		t.Fatalf("invalid form: %d, shown again with id %q, rendered with %q", code, b.formID, fid)
	}
	if !strings.Contains(body, `name="form_id" value="`+fid+`"`) {
		t.Fatal("form shown again without its id")
	}
	if _, path, _ := b.post("/activites/nouvelle", activityForm()); path != "/" {
		t.Fatalf("corrected form not saved: %s", path)
	}
	// Back to the corrected form (same id), submit again.
	if _, _, body := b.post("/activites/nouvelle", withValue(activityForm(), "form_id", fid)); !strings.Contains(body, html.EscapeString(fr["activity_already"])) {
		t.Fatal("resubmission after Back not told it was already saved")
	}
	if n := countKind(t, e.st, domain.KindActivity); n != 1 {
		t.Fatalf("%d activities, want 1", n)
	}
}

// Two copies of one submission in flight at once (a double-click) make
// one record.
func TestConcurrentSubmissionsOfOneForm(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/beneficiaires/nouveau?suivi=1")
	v := url.Values{"suivi": {"1"}, "prenom": {"Léa"}, "nom": {"Martin"}, "consent.finalites": {domain.FinaliteSuivi},
		"consent.mode": {"oral_trace"}, "consent.date": {"02/03/2026"}, "form_id": {b.formID}}
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.srv.URL+"/beneficiaires/nouveau", strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := b.c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if nb, nc := countKind(t, e.st, domain.KindBeneficiary), countKind(t, e.st, domain.KindConsent); nb != 1 || nc != 1 {
		t.Fatalf("%d beneficiaries and %d consents from one form, want 1 and 1", nb, nc)
	}
}

// A request the browser gave up on (the first click of a double-click)
// still saves: the save does not run on the request's context.
func TestCancelledRequestStillSaves(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/beneficiaires/nouveau")
	v := url.Values{"genre": {"feminin"}, "commune": {"54395"}, "form_id": {b.formID}}
	u, _ := url.Parse(e.srv.URL)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), http.LocalAddrContextKey, e.srv.Listener.Addr()))
	cancel() // the browser has gone
	req := httptest.NewRequestWithContext(ctx, "POST", e.srv.URL+"/beneficiaires/nouveau", strings.NewReader(v.Encode()))
	req.Host = u.Host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range b.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	e.ui.Handler().ServeHTTP(rec, req)
	if n := countKind(t, e.st, domain.KindBeneficiary); n != 1 {
		t.Fatalf("cancelled request: %d beneficiaries saved (answer %d), want 1", n, rec.Code)
	}
	// The second click finds it.
	if _, _, body := b.post("/beneficiaires/nouveau", v); !strings.Contains(body, html.EscapeString(fr["beneficiary_already"])) {
		t.Fatal("second click not told the person is already saved")
	}
	if n := countKind(t, e.st, domain.KindBeneficiary); n != 1 {
		t.Fatalf("%d beneficiaries, want 1", n)
	}
}

// A form without a well-formed id is shown again, with what was typed and
// a fresh id, and saves nothing; a form whose id names another record —
// never a rendered form — overwrites nothing.
func TestFormIDChecked(t *testing.T) {
	e := newEnv(t)
	bn, consent := followed(e)
	b := e.browser()
	b.unlock()
	acts := countKind(t, e.st, domain.KindActivity) // followed's
	for _, bad := range []string{"", "pas-un-identifiant", "00000000-0000-0000-0000-000000000000",
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8" /* v1 */} {
		v := activityForm()
		v.Set("form_id", bad)
		code, _, body := b.post("/activites/nouvelle", v)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, html.EscapeString(fr["form_id_bad"])) ||
			!strings.Contains(body, "texte tapé à garder") {
			t.Errorf("form id %q: %d", bad, code)
		}
		if b.formID == "" || b.formID == bad {
			t.Errorf("form id %q: shown again with id %q", bad, b.formID)
		}
	}
	if n := countKind(t, e.st, domain.KindActivity); n != acts {
		t.Fatalf("%d activities saved without a form id", n-acts)
	}
	// The id of a followed person (it is in her page's address) posted
	// as a new activity, or as a new person.
	code, _, body := b.post("/activites/nouvelle", withValue(activityForm(), "form_id", bn.ID.String()))
	if code != http.StatusConflict || !strings.Contains(body, html.EscapeString(fr["form_id_taken"])) || b.formID == bn.ID.String() {
		t.Fatalf("activity with a beneficiary's id: %d, new id %q", code, b.formID)
	}
	b.post("/beneficiaires/nouveau", url.Values{"form_id": {bn.ID.String()}, "genre": {"masculin"}, "commune": {"55545"}})
	it, err := e.st.Get(context.Background(), bn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := it.Record.(*domain.Beneficiary); got.Genre != bn.Genre || got.Commune != bn.Commune || got.Nom != bn.Nom {
		t.Fatalf("a crafted form id overwrote a person: %+v", got)
	}
	// A consent of one person posted on another's consent form.
	other := &domain.Beneficiary{ID: ident.New(), Genre: "masculin"}
	e.seed(other)
	code, _, _ = b.post("/beneficiaires/"+other.ID.String()+"/consentement", url.Values{"form_id": {consent.ID.String()},
		"consent.finalites": {domain.FinaliteDiagnostic}, "consent.mode": {"ecrit"}, "consent.date": {"02/03/2026"}})
	if code != http.StatusConflict {
		t.Fatalf("another person's consent id: %d", code)
	}
	if it, _ := e.st.Get(context.Background(), consent.ID); it.Record.(*domain.Consent).Beneficiaire != bn.ID {
		t.Fatal("consent moved to another person")
	}
	if n := countKind(t, e.st, domain.KindActivity); n != acts {
		t.Fatalf("%d activities saved with crafted ids", n-acts)
	}
}
