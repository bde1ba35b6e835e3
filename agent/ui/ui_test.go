package ui

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/seal"
	"numeribus/internal/wire"
)

var testKDF = seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

const testPass = "phrase de passe de test"

// clock is a movable test clock.
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

type env struct {
	t     *testing.T
	dir   string
	st    *store.Store
	ui    *Server
	srv   *httptest.Server
	clock *clock
}

// newEnv starts the UI over a real store, locked, in a temp dir.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, _, err := store.Create(context.Background(), dir, []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatalf("store.Create: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	st.Lock()
	c := &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.Local)}
	ui := New(Config{Store: st, Now: c.Now, AutoLock: 15 * time.Minute})
	srv := httptest.NewServer(ui.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, dir: dir, st: st, ui: ui, srv: srv, clock: c}
}

// seed writes records straight into the store (unlocking it if needed).
func (e *env) seed(recs ...domain.Record) {
	e.t.Helper()
	if e.st.Locked() {
		if err := e.st.Unlock(context.Background(), []byte(testPass)); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.st.Save(context.Background(), recs...); err != nil {
		e.t.Fatalf("seed: %v", err)
	}
}

// browser is one HTTP client with its cookies.
type browser struct {
	e *env
	c *http.Client
	// formID is the form_id of the last page, if it had one: posting
	// again without loading the form again resubmits that form.
	formID string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar}}
}

var formIDRE = regexp.MustCompile(`name="form_id" value="([^"]+)"`)

// do sends a request and returns status, final URL path and body.
func (b *browser) do(req *http.Request) (int, string, string) {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.formID = ""
	if m := formIDRE.FindSubmatch(body); m != nil {
		b.formID = string(m[1])
	}
	return resp.StatusCode, resp.Request.URL.Path, string(body)
}

func (b *browser) get(path string) (int, string, string) {
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form with the form_id of the last page (unless v has
// one), as a browser submits the form shown: with its Origin and
// Sec-Fetch-Site.
func (b *browser) post(path string, v url.Values) (int, string, string) {
	return b.postFrom(b.e.srv.URL, "same-origin", path, v)
}

// postFrom is post sent by a page of origin, as Sec-Fetch-Site site
// says (either "" for none).
func (b *browser) postFrom(origin, site, path string, v url.Values) (int, string, string) {
	v = maps.Clone(v) // the caller's values stay as they are, for the next post
	if v == nil {
		v = url.Values{}
	}
	if _, ok := v["form_id"]; !ok && b.formID != "" {
		v.Set("form_id", b.formID)
	}
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	return b.do(req)
}

func (b *browser) unlock() {
	b.e.t.Helper()
	b.get("/unlock")
	code, path, body := b.post("/unlock", url.Values{"secret": {testPass}})
	if code != 200 || path != "/" {
		b.e.t.Fatalf("unlock: %d %s\n%s", code, path, body)
	}
}

func countKind(t *testing.T, st *store.Store, k domain.Kind) int {
	t.Helper()
	n := 0
	if err := st.List(context.Background(), k, false, func(store.Item) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUnlockWrongThenRight(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	if _, path, _ := b.get("/"); path != "/unlock" {
		t.Fatalf("locked: / went to %s, want /unlock", path)
	}
	code, _, body := b.post("/unlock", url.Values{"secret": {"pas la bonne"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, fr["unlock_wrong"]) {
		t.Fatalf("wrong passphrase: %d, body without the French error", code)
	}
	if !e.st.Locked() {
		t.Fatal("store unlocked by a wrong passphrase")
	}
	for _, empty := range []string{"", "   "} {
		code, _, body := b.post("/unlock", url.Values{"secret": {empty}})
		if code != http.StatusUnauthorized || !strings.Contains(body, html.EscapeString(fr["unlock_empty"])) || strings.Contains(body, fr["unlock_wrong"]) {
			t.Fatalf("empty passphrase %q: %d, not told it is empty", empty, code)
		}
	}
	b.unlock()
	if e.st.Locked() {
		t.Fatal("store still locked")
	}
	if _, path, body := b.get("/"); path != "/" || !strings.Contains(body, html.EscapeString(fr["title_today"])) {
		t.Fatalf("after unlock: %s", path)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/unlock")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			found = true
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
}

// followed seeds an identified beneficiary with consent, an activity and
// an assessment.
func followed(e *env) (*domain.Beneficiary, *domain.Consent) {
	b := &domain.Beneficiary{ID: ident.New(), Prenom: "Hélène", Nom: "Lefèvre-Garnier", Telephone: "0612345678",
		Commune: "54395", Genre: "feminin"}
	c := &domain.Consent{ID: ident.New(), Beneficiaire: b.ID, Finalites: []string{domain.FinaliteSuivi, domain.FinaliteDiagnostic},
		Mode: "ecrit", Date: "2026-03-01"}
	a := &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-01", Duree: 30, TypeLieu: "lieu_activite",
		Commune: "54395", Thematiques: []string{"email"}, Beneficiaire: &b.ID, Notes: "Rappeler Hélène"}
	d := &domain.Assessment{ID: ident.New(), Beneficiaire: b.ID, Date: "2026-03-01",
		Domaines: map[string]string{"information_donnees": "1"}, Commentaire: "Hélène veut apprendre"}
	e.seed(b, c, a, d)
	return b, c
}

var personal = []string{"Hélène", "Lefèvre", "0612345678", "apprendre", "Rappeler"}

func assertNoPersonal(t *testing.T, what, body string) {
	t.Helper()
	for _, p := range personal {
		if strings.Contains(body, p) {
			t.Fatalf("%s shows personal data %q", what, p)
		}
	}
}

func TestLockedServesNoPersonalData(t *testing.T) {
	e := newEnv(t)
	bn, cs := followed(e)
	b := e.browser()
	b.unlock()
	page := "/beneficiaires/" + bn.ID.String()
	if _, _, body := b.get(page); !strings.Contains(body, "Lefèvre") {
		t.Fatal("unlocked: the beneficiary page does not show the name (test would prove nothing)")
	}
	// Another browser, while the store is unlocked for the first: nothing.
	other := e.browser()
	if _, path, body := other.get(page); path != "/unlock" {
		t.Fatalf("second browser reached %s", path)
	} else {
		assertNoPersonal(t, "second browser", body)
	}

	b.post("/lock", nil)
	if !e.st.Locked() {
		t.Fatal("Lock button did not lock the store")
	}
	b.get("/unlock") // fresh token
	gets := []string{"/", page, page + "/diagnostic", "/beneficiaires", "/beneficiaires/nouveau?suivi=1",
		"/activites/nouvelle?type=individuel&beneficiaire=" + bn.ID.String()}
	for _, p := range gets {
		_, path, body := b.get(p)
		if path != "/unlock" {
			t.Errorf("locked: GET %s reached %s", p, path)
		}
		assertNoPersonal(t, "locked GET "+p, body)
	}
	for _, p := range []string{"/beneficiaires", "/consentements/" + cs.ID.String() + "/retrait"} {
		_, path, body := b.post(p, url.Values{"q": {"Hélène"}})
		if path != "/unlock" {
			t.Errorf("locked: POST %s reached %s", p, path)
		}
		assertNoPersonal(t, "locked POST "+p, body)
	}
	for _, p := range []string{"/api/status", "/api/communes?q=nancy"} {
		code, _, body := b.get(p)
		if code != http.StatusLocked {
			t.Errorf("locked: GET %s = %d, want 423", p, code)
		}
		assertNoPersonal(t, "locked API "+p, body)
	}
	if e.st.Locked() != true {
		t.Fatal("store unlocked by the locked requests")
	}
	// The consent is untouched: the POST was refused.
	e.seed()
	it, err := e.st.Get(context.Background(), cs.ID)
	if err != nil || len(it.Record.(*domain.Consent).Retraits) != 0 {
		t.Fatalf("locked withdraw went through: %v", err)
	}
}

func TestHostHeaderChecked(t *testing.T) {
	e := newEnv(t)
	u, _ := url.Parse(e.srv.URL)
	for host, want := range map[string]int{
		u.Host:                         http.StatusOK,
		"localhost:" + u.Port():        http.StatusOK,
		"evil.example:" + u.Port():     http.StatusForbidden,
		"evil.example":                 http.StatusForbidden,
		"127.0.0.1.nip.io:" + u.Port(): http.StatusForbidden,
	} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/unlock", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func TestOriginChecked(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/unlock")
	send := func(origin string) int {
		v := url.Values{"secret": {testPass}}
		req, _ := http.NewRequest("POST", e.srv.URL+"/unlock", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		defer func() { b.c.CheckRedirect = nil }()
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("http://evil.example"); code != http.StatusForbidden {
		t.Fatalf("foreign Origin: %d, want 403", code)
	}
	if !e.st.Locked() {
		t.Fatal("a cross-origin request unlocked the store")
	}
	if code := send("null"); code != http.StatusForbidden {
		t.Fatalf("Origin null: %d, want 403", code)
	}
	if code := send(e.srv.URL); code != http.StatusSeeOther {
		t.Fatalf("own Origin: %d, want 303", code)
	}
}

// Every write another site sends is refused, whatever the browser
// says of it, even with the session cookie (which SameSite=Strict keeps
// from it anyway); the same writes from the UI's own pages pass.
func TestCrossSiteWritesRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/unlock")
	senders := []struct{ name, origin, site string }{
		{"another site", "http://evil.example", "cross-site"},
		{"another site, no Origin", "", "cross-site"},
		{"another local port", "http://127.0.0.1:8080", "same-site"},
		{"another site, old browser", "http://evil.example", ""},
		{"an opaque origin, old browser", "null", ""},
	}
	for _, s := range senders {
		if code, _, _ := b.postFrom(s.origin, s.site, "/unlock", url.Values{"secret": {testPass}}); code != http.StatusForbidden {
			t.Errorf("unlock from %s: %d, want 403", s.name, code)
		}
	}
	if !e.st.Locked() {
		t.Fatal("unlocked from another site")
	}
	b.unlock()
	for _, s := range senders {
		if code, _, _ := b.postFrom(s.origin, s.site, "/activites/nouvelle", activityForm()); code != http.StatusForbidden {
			t.Errorf("activity from %s: %d, want 403", s.name, code)
		}
		if code, _, _ := b.postFrom(s.origin, s.site, "/lock", nil); code != http.StatusForbidden || e.st.Locked() {
			t.Errorf("lock from %s: %d", s.name, code)
		}
		if code, _ := apiPostFrom(t, b, s.origin, s.site, "/api/activities", `{"type":"individuel","date":"2026-03-02","duree":30,"type_lieu":"a_distance","thematiques":["email"]}`); code != http.StatusForbidden {
			t.Errorf("API write from %s: %d, want 403", s.name, code)
		}
	}
	if n := countKind(t, e.st, domain.KindActivity); n != 0 {
		t.Fatalf("%d activities saved from another site", n)
	}
	// From the UI's own pages, as Chromium and an older browser send them.
	b.get("/activites/nouvelle")
	if code, _, body := b.post("/activites/nouvelle", activityForm()); code != http.StatusOK || !strings.Contains(body, fr["activity_saved"]) {
		t.Fatalf("activity from the UI: %d", code)
	}
	b.get("/activites/nouvelle")
	if code, _, _ := b.postFrom(e.srv.URL, "", "/activites/nouvelle", activityForm()); code != http.StatusOK {
		t.Fatalf("activity from the UI, old browser: %d", code)
	}
	if code, _ := apiPost(t, b, "/api/activities", `{"type":"individuel","date":"2026-03-02","duree":30,"type_lieu":"a_distance","thematiques":["email"]}`); code != http.StatusCreated {
		t.Fatalf("API write from the UI: %d", code)
	}
	if n := countKind(t, e.st, domain.KindActivity); n != 3 {
		t.Fatalf("%d activities saved from the UI, want 3", n)
	}
}

// A form the server cannot read in full is refused before any handler
// acts on part of it.
func TestUnreadableFormRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/activites/nouvelle")
	big := activityForm()
	big.Set("commentaire", strings.Repeat("x", 1<<20))
	if code, _, _ := b.post("/activites/nouvelle", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("form over 1 MiB: %d, want 413", code)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/activites/nouvelle", strings.NewReader("type=individuel&duree=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, _, body := b.do(req); code != http.StatusBadRequest || !strings.Contains(body, fr["bad_form"]) {
		t.Errorf("broken form encoding: %d, want 400", code)
	}
	if n := countKind(t, e.st, domain.KindActivity); n != 0 {
		t.Fatalf("%d activities saved from unreadable forms", n)
	}
}

func TestAutoLock(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	e.clock.Add(14 * time.Minute)
	if _, path, _ := b.get("/"); path != "/" {
		t.Fatalf("locked before the delay: %s", path)
	}
	e.clock.Add(14 * time.Minute) // 14 min after the last request
	if e.st.Locked() {
		t.Fatal("locked before the delay")
	}
	e.clock.Add(2 * time.Minute)
	e.ui.idleCheck() // what the background ticker does
	if !e.st.Locked() {
		t.Fatal("store not locked after 16 minutes of inactivity")
	}
	if _, path, _ := b.get("/"); path != "/unlock" {
		t.Fatalf("after auto-lock: %s", path)
	}
	// And on the next request alone, without the ticker.
	b.unlock()
	e.clock.Add(16 * time.Minute)
	if _, path, _ := b.get("/"); path != "/unlock" || !e.st.Locked() {
		t.Fatalf("next request after inactivity reached %s (locked %v)", path, e.st.Locked())
	}
}

func activityForm() url.Values {
	return url.Values{"flow": {"individuel"}, "date": {"02/03/2026"}, "duree": {"45"}, "type_lieu": {"lieu_activite"},
		"commune": {"54395"}, "thematiques": {"email", "navigation_sur_internet"}, "materiel": {"ordinateur"},
		"autonomie": {"partiellement_autonome"}, "notes": {"texte tapé à garder"}, "beneficiaire.genre": {"feminin"}}
}

func TestRecordActivity(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	first := activityForm()
	first.Set("vehicule", "Numéribus 3")
	first.Set("mediateur", "Camille D.")
	b.get("/activites/nouvelle")
	if code, path, body := b.post("/activites/nouvelle", first); code != 200 || path != "/" || !strings.Contains(body, fr["activity_saved"]) {
		t.Fatalf("save: %d %s", code, path)
	}
	// The crew is offered again for the next activity.
	if _, _, form := b.get("/activites/nouvelle?type=individuel"); !strings.Contains(form, `value="Numéribus 3"`) || !strings.Contains(form, `value="Camille D."`) {
		t.Fatal("vehicle and mediator not offered for the next activity")
	}
	var got *domain.Activity
	e.st.List(context.Background(), domain.KindActivity, false, func(it store.Item) error {
		got = it.Record.(*domain.Activity)
		return nil
	})
	if got == nil || got.Date != "2026-03-02" || got.Duree != 45 || len(got.Thematiques) != 2 || got.Beneficiaire == nil ||
		got.Vehicule != "Numéribus 3" || got.Mediateur != "Camille D." {
		t.Fatalf("saved activity: %+v", got)
	}
	if n := countKind(t, e.st, domain.KindBeneficiary); n != 1 {
		t.Fatalf("%d beneficiaries, want the anonymous one", n)
	}
	// A commune typed by name resolves to its code.
	f := activityForm()
	f.Set("commune", "Nancy")
	if _, path, _ := b.post("/activites/nouvelle", f); path != "/" {
		t.Fatalf("commune by name: %s", path)
	}
}

func TestActivityValidationKeepsTypedValues(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	f := activityForm()
	f.Set("duree", "")
	f.Set("commune", "99999")
	b.get("/activites/nouvelle")
	code, _, body := b.post("/activites/nouvelle", f)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid activity: %d", code)
	}
	for _, want := range []string{
		`id="f-duree"`, `aria-describedby="e-duree`, `id="e-duree"`, "durée en minutes",
		`id="e-commune"`, "code INSEE de commune inconnu", `value="99999"`,
		"texte tapé à garder", `value="email" checked`, `value="navigation_sur_internet" checked`,
		`value="partiellement_autonome" checked`, `value="feminin" selected`, `value="02/03/2026"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("re-rendered form lacks %q", want)
		}
	}
	if n := countKind(t, e.st, domain.KindActivity); n != 0 {
		t.Fatalf("invalid activity saved")
	}
	// A number that is not one is caught before the store.
	f.Set("duree", "trois quarts d'heure")
	f.Set("commune", "54395")
	code, _, body = b.post("/activites/nouvelle", f)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, fr["problem_not_number"]) || !strings.Contains(body, "trois quarts d&#39;heure") {
		t.Fatalf("non-number duration: %d", code)
	}
}

func TestRecordWorkshopWithoutPersonalData(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	if _, _, body := b.get("/activites/nouvelle?type=collectif"); strings.Contains(body, `name="prenom"`) || !strings.Contains(body, `name="participants.total"`) {
		t.Fatal("workshop form: asks a name, or lacks the head count")
	}
	f := url.Values{"flow": {"collectif"}, "date": {"2026-03-02"}, "duree": {"90"}, "type_lieu": {"lieu_activite"},
		"commune": {"54395"}, "thematiques": {"securite_numerique"}, "titre_atelier": {"Arnaques en ligne"}, "niveau": {"debutant"},
		"participants.total": {"8"}, "participants.genre.feminin": {"5"}, "participants.genre.masculin": {"3"}}
	if _, path, _ := b.post("/activites/nouvelle", f); path != "/" {
		t.Fatalf("workshop not saved: %s", path)
	}
	f.Set("participants.genre.feminin", "9")
	b.get("/activites/nouvelle?type=collectif")
	if code, _, body := b.post("/activites/nouvelle", f); code != http.StatusUnprocessableEntity || !strings.Contains(body, "dépasse le total") {
		t.Fatalf("breakdown over total accepted: %d", code)
	}
	if n := countKind(t, e.st, domain.KindBeneficiary); n != 0 {
		t.Fatalf("a workshop created %d beneficiaries", n)
	}
}

func TestConsentedBeneficiaryAssessmentSearchWithdraw(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/beneficiaires/nouveau?suivi=1")
	f := url.Values{"suivi": {"1"}, "prenom": {"Hélène"}, "nom": {"Lefèvre-Garnier"}, "telephone": {"06 12 34 56 78"},
		"consent.finalites": {domain.FinaliteDiagnostic}, "consent.mode": {"oral_trace"}, "consent.date": {"02/03/2026"},
		"genre": {"feminin"}, "commune": {"54395"}}
	code, _, body := b.post("/beneficiaires/nouveau", f)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "suivi nominatif") || !strings.Contains(body, `aria-describedby="e-prenom`) {
		t.Fatalf("identity without suivi_nominatif consent: %d", code)
	}
	if !strings.Contains(body, `value="Lefèvre-Garnier"`) {
		t.Fatal("typed name lost")
	}
	f["consent.finalites"] = []string{domain.FinaliteSuivi, domain.FinaliteDiagnostic}
	code, path, body := b.post("/beneficiaires/nouveau", f)
	if code != 200 || !strings.HasPrefix(path, "/beneficiaires/") || !strings.Contains(body, "Lefèvre-Garnier") {
		t.Fatalf("consented beneficiary: %d %s", code, path)
	}
	page := path
	if countKind(t, e.st, domain.KindConsent) != 1 {
		t.Fatal("no consent saved")
	}
	// Assessment.
	b.get(page + "/diagnostic")
	af := url.Values{"date": {"02/03/2026"}, "domaines.information_donnees": {"1"}, "domaines.communication_collaboration": {"0"},
		"domaines.creation_contenu": {"non_evalue"}, "domaines.protection_securite": {"2"}, "domaines.environnement_numerique": {"1"},
		"autonomie_globale": {"partiellement_autonome"}, "besoins": {"email"}, "outil": {"pix"}, "commentaire": {"veut écrire à sa fille"}}
	if _, p, body := b.post(page+"/diagnostic", af); p != page || !strings.Contains(body, "Information et données : Compétences de base") {
		t.Fatalf("assessment: %s", p)
	}
	// Search, accent- and case-insensitive.
	b.get("/beneficiaires")
	if _, _, body := b.post("/beneficiaires", url.Values{"q": {"helene lefevre"}}); !strings.Contains(body, page) {
		t.Fatal("search by name without accents did not find her")
	}
	if _, _, body := b.post("/beneficiaires", url.Values{"q": {"Dupont"}}); strings.Contains(body, page) {
		t.Fatal("search found her under another name")
	}
	// Withdraw every purpose: identity and assessments erased.
	_, _, body = b.get(page)
	m := regexp.MustCompile(`/consentements/([0-9a-f-]+)/retrait`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no withdraw form")
	}
	// Withdrawal is confirmed on a page of its own: a post without the
	// confirmation lands there and erases nothing.
	_, p, body := b.post("/consentements/"+m[1]+"/retrait", nil)
	if p != "/consentements/"+m[1]+"/retrait" || !strings.Contains(body, "Lefèvre-Garnier") {
		t.Fatalf("unconfirmed withdrawal: %s", p)
	}
	_, p, body = b.post("/consentements/"+m[1]+"/retrait", url.Values{"confirmer": {"oui"}})
	if p != page || !strings.Contains(body, fr["withdraw_identity_erased"]) || !strings.Contains(body, fr["withdraw_assessments_erased"]) {
		t.Fatalf("withdraw result: %s", p)
	}
	for _, s := range []string{"Hélène", "Lefèvre", "0612345678", "sa fille", "Information et données : Compétences de base"} {
		if strings.Contains(body, s) {
			t.Errorf("after withdrawal the page still shows %q", s)
		}
	}
	if _, _, body := b.post("/beneficiaires", url.Values{"q": {"helene"}}); strings.Contains(body, page) {
		t.Fatal("erased person still found by name")
	}
}

func TestAssessmentRefusedWithoutDiagnosticConsent(t *testing.T) {
	e := newEnv(t)
	bn := &domain.Beneficiary{ID: ident.New(), Genre: "masculin"}
	e.seed(bn)
	b := e.browser()
	b.unlock()
	page := "/beneficiaires/" + bn.ID.String()
	b.get(page + "/diagnostic")
	code, _, body := b.post(page+"/diagnostic", url.Values{"date": {"02/03/2026"}, "commentaire": {"gardé"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "consentement « diagnostic »") || !strings.Contains(body, "gardé") {
		t.Fatalf("assessment without consent: %d", code)
	}
}

// apiPost sends a JSON write as the UI's scripts do.
func apiPost(t *testing.T, b *browser, path, body string) (int, map[string]any) {
	t.Helper()
	return apiPostFrom(t, b, b.e.srv.URL, "same-origin", path, body)
}

// apiPostFrom is apiPost sent by a script of origin, as Sec-Fetch-Site
// site says (either "" for none).
func apiPostFrom(t *testing.T, b *browser, origin, site, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAPI(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	code, out := apiPost(t, b, "/api/activities", `{"type":"individuel","date":"2026-03-02","duree":30,"type_lieu":"a_distance","thematiques":["email"]}`)
	if code != http.StatusCreated || out["id"] == nil {
		t.Fatalf("API create: %d %v", code, out)
	}
	code, out = apiPost(t, b, "/api/activities", `{"type":"individuel","date":"2026-03-02","duree":0,"type_lieu":"domicile","thematiques":[]}`)
	if code != http.StatusUnprocessableEntity || out["error"] != "invalid" {
		t.Fatalf("API invalid: %d %v", code, out)
	}
	fields := map[string]bool{}
	for _, p := range out["problems"].([]any) {
		fields[p.(map[string]any)["field"].(string)] = true
	}
	for _, f := range []string{"duree", "commune", "thematiques"} {
		if !fields[f] {
			t.Errorf("API problems lack %s: %v", f, out["problems"])
		}
	}
	_, _, body := b.get("/api/communes?q=nancy")
	var cs []communeJSON
	if err := json.Unmarshal([]byte(body), &cs); err != nil || len(cs) == 0 || cs[0].Code != "54395" {
		t.Fatalf("communes: %v %v", err, cs)
	}
	code, _, body = b.get("/api/status")
	if code != 200 || !strings.Contains(body, `"pending_changes":1`) {
		t.Fatalf("status: %d %s", code, body)
	}
}

func TestSyncIndicator(t *testing.T) {
	e := newEnv(t)
	var calls int
	e.ui.cfg.Sync = func(context.Context) error { calls++; return nil }
	b := e.browser()
	b.unlock()
	b.get("/activites/nouvelle")
	b.post("/activites/nouvelle", activityForm())
	_, _, body := b.get("/")
	for _, want := range []string{"2 modification(s) en attente", "Dernière synchronisation : jamais", fr["sync_offline"], html.EscapeString(fr["sync_not_enrolled"]), fr["sync_now"]} {
		if !strings.Contains(body, want) {
			t.Errorf("header lacks %q", want)
		}
	}
	// A change the hub refused is listed, with what to do.
	if err := e.ui.cfg.Store.Reject(context.Background(), []wire.Rejection{{Seq: 1, Code: wire.CodeClockAhead, Reason: "x",
		Ahead: uint64(3 * 24 * time.Hour / time.Millisecond)}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, body = b.get("/")
	for _, want := range []string{"1 modification(s) refusée(s) par le hub", html.EscapeString("l'horloge de ce poste est en avance de 3 j 0 h")} {
		if !strings.Contains(body, want) {
			t.Errorf("header lacks %q", want)
		}
	}
	if _, path, body := b.post("/sync", url.Values{"back": {"/beneficiaires"}}); calls != 1 || path != "/beneficiaires" || !strings.Contains(body, fr["sync_done"]) {
		t.Fatalf("sync now: calls %d, back to %s", calls, path)
	}
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{10 * time.Second: "à l'instant", 5 * time.Minute: "il y a 5 minutes",
		time.Hour: "il y a 1 heure", 49 * time.Hour: "il y a 2 jours"} {
		if got := relTime(now, now.Add(-d)); got != want {
			t.Errorf("relTime(%v) = %q, want %q", d, got, want)
		}
	}
	if got := plainSyncError("hub unreachable: dial tcp: connection refused"); got != fr["syncerr_unreachable"] {
		t.Errorf("plain error: %q", got)
	}
}

func TestTodayStops(t *testing.T) {
	e := newEnv(t)
	stop := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 3", Date: "2026-03-02", HeureDebut: "09:00", HeureFin: "12:00",
		Lieu: "Place de la mairie", Commune: "54395"}
	other := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 3", Date: "2026-03-03", Lieu: "Marché couvert", Commune: "54395"}
	e.seed(stop, other)
	b := e.browser()
	b.unlock()
	_, _, body := b.get("/")
	if !strings.Contains(body, "Place de la mairie") || strings.Contains(body, "Marché couvert") {
		t.Fatal("today's stops wrong")
	}
	_, _, body = b.get("/activites/nouvelle?type=individuel&arret=" + stop.ID.String())
	for _, want := range []string{`name="arret" value="` + stop.ID.String(), `value="54395"`, `value="lieu_activite" checked`, `value="02/03/2026"`} {
		if !strings.Contains(body, want) {
			t.Errorf("activity from a stop lacks %q", want)
		}
	}
}

func TestEveryTextKeyExists(t *testing.T) {
	e := newEnv(t)
	bn, _ := followed(e)
	b := e.browser()
	_, _, body := b.get("/unlock")
	pages := []string{body}
	b.unlock()
	for _, p := range []string{"/", "/activites/nouvelle?type=individuel", "/activites/nouvelle?type=collectif", "/activites/nouvelle?type=demarche",
		"/beneficiaires", "/beneficiaires/nouveau", "/beneficiaires/nouveau?suivi=1", "/beneficiaires/" + bn.ID.String(),
		"/beneficiaires/" + bn.ID.String() + "/diagnostic"} {
		code, _, body := b.get(p)
		if code != 200 {
			t.Errorf("GET %s: %d", p, code)
		}
		pages = append(pages, body)
	}
	_, _, body = b.post("/activites/nouvelle", url.Values{"flow": {"collectif"}, "participants.genre.feminin": {"x"}})
	pages = append(pages, body)
	for _, p := range pages {
		if i := strings.Index(p, "[["); i >= 0 {
			t.Errorf("missing text key: %s", p[i:min(len(p), i+60)])
		}
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.168.1.10:7070", "[::]:0", "example.com:7070"} {
		if ln, err := Listen(addr); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := Listen(addr)
		if err != nil {
			t.Errorf("Listen(%q): %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// A person helped anonymously at a first visit agrees later to be
// followed: the consent screen of their page records the consent and the
// identity together. Without suivi_nominatif, a typed name is not kept.
func TestConsentGivenLaterToAnAnonymousPerson(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/beneficiaires/nouveau")
	code, page, body := b.post("/beneficiaires/nouveau", url.Values{"genre": {"masculin"}, "commune": {"54395"}})
	if code != 200 || !strings.HasPrefix(page, "/beneficiaires/") || !strings.Contains(body, page+"/consentement") {
		t.Fatalf("anonymous person: %d %s (consent link shown: %v)", code, page, strings.Contains(body, page+"/consentement"))
	}
	if _, _, form := b.get(page + "/consentement"); !strings.Contains(form, `id="consent-form"`) {
		t.Fatal("no consent form")
	}
	// Assessment only: a name typed by mistake is not stored.
	f := url.Values{"consent.finalites": {domain.FinaliteDiagnostic}, "consent.mode": {"oral_trace"},
		"consent.date": {"02/03/2026"}, "prenom": {"Gaston"}, "nom": {"Lagaffe"}}
	if code, p, body := b.post(page+"/consentement", f); code != 200 || p != page || strings.Contains(body, "Lagaffe") {
		t.Fatalf("assessment consent: %d %s (name shown: %v)", code, p, strings.Contains(body, "Lagaffe"))
	}
	// Follow-up by name: identity stored with its consent.
	f["consent.finalites"] = []string{domain.FinaliteSuivi}
	b.get(page + "/consentement")
	if code, p, body := b.post(page+"/consentement", f); code != 200 || p != page || !strings.Contains(body, "Gaston Lagaffe") {
		t.Fatalf("follow-up consent: %d %s", code, p)
	}
	if n := countKind(t, e.st, domain.KindConsent); n != 2 {
		t.Fatalf("%d consents, want 2", n)
	}
	// A missing mode keeps what was typed and says which field.
	delete(f, "consent.mode")
	b.get(page + "/consentement")
	code, _, body = b.post(page+"/consentement", f)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `value="Lagaffe"`) || !strings.Contains(body, `id="e-consent-mode"`) {
		t.Fatalf("missing mode: %d", code)
	}
}

// The header follows the sync loop's live connection: online while it is
// open and the hub heard (pings every 20 s), even long after the
// handshake the store recorded; offline as soon as it is gone, or when
// the hub has been silent too long.
func TestHeaderFollowsTheLiveConnection(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	handshake := e.clock.Now()
	if err := e.st.RecordContact(ctx, handshake, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	connected, heard := true, handshake
	e.ui.cfg.Live = func() (bool, time.Time) {
		mu.Lock()
		defer mu.Unlock()
		return connected, heard
	}
	set := func(c bool, h time.Time) {
		mu.Lock()
		connected, heard = c, h
		mu.Unlock()
	}
	b := e.browser()
	b.unlock()
	status := func() (bool, string) {
		t.Helper()
		code, _, body := b.get("/api/status")
		var st struct {
			Sync syncView `json:"sync"`
		}
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
			t.Fatalf("status: %d %v %s", code, err, body)
		}
		return st.Sync.Online, st.Sync.LastContact
	}
	// Ten minutes on the open connection, pinged all along.
	for range 20 {
		e.clock.Add(30 * time.Second)
		set(true, e.clock.Now().Add(-5*time.Second))
	}
	if online, last := status(); !online || last != fr["rel_now"] {
		t.Fatalf("10 min into a live connection: online %v, last contact %q", online, last)
	}
	if _, _, page := b.get("/"); !strings.Contains(page, fr["sync_online"]) {
		t.Fatal("header does not say online")
	}
	// The connection drops: offline at once, last contact kept.
	set(false, e.clock.Now().Add(-5*time.Second))
	e.clock.Add(3 * time.Minute)
	if online, last := status(); online || last != "il y a 3 minutes" {
		t.Fatalf("connection gone: online %v, last contact %q", online, last)
	}
	// Open but silent for longer than OnlineWithin: a dead link.
	set(true, e.clock.Now().Add(-OnlineWithin-time.Second))
	if online, _ := status(); online {
		t.Fatal("a connection silent for over 2 minutes shows online")
	}
	// Without a loop, a recent contact recorded in the store counts.
	e.ui.cfg.Live = nil
	if err := e.st.RecordContact(ctx, e.clock.Now().Add(-time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if online, last := status(); !online || last != "il y a 1 minute" {
		t.Fatalf("no loop, contact 1 min ago: online %v, last contact %q", online, last)
	}
}
