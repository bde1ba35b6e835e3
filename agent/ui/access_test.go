package ui

import (
	"net/http"
	"strings"
	"testing"

	"numeribus/internal/access"
	"numeribus/internal/ident"
)

// The person's page links to her dossier, which says everything this
// laptop holds about her, under a policy that allows its own style sheet
// and nothing more; locked, nothing; about nobody, not found.
func TestAccessDocument(t *testing.T) {
	e := newEnv(t)
	b, _ := followed(e)
	e.st.Lock()
	br := e.browser()
	path := "/beneficiaires/" + b.ID.String() + "/acces"
	if code, at, body := br.get(path); at != "/unlock" {
		t.Fatalf("locked: %d %s", code, at)
	} else {
		assertNoPersonal(t, "the unlock page", body)
	}
	br.unlock()
	if _, _, page := br.get("/beneficiaires/" + b.ID.String()); !strings.Contains(page, `href="`+path+`"`) {
		t.Fatal("the person's page has no link to her dossier")
	}
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	resp, err := br.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'self' "+access.StyleHash) || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("policy: %q", csp)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, access.FileName(b.ID, "html")) {
		t.Errorf("disposition: %q", cd)
	}
	code, _, body := br.get(path)
	if code != 200 {
		t.Fatalf("dossier: %d", code)
	}
	for _, want := range []string{"<dt>Nom</dt><dd>Lefèvre-Garnier</dd>", "<dt>Notes du médiateur</dt><dd>Rappeler Hélène</dd>",
		"<dt>Commentaire</dt><dd>Hélène veut apprendre</dd>", "Suivi nominatif"} {
		if !strings.Contains(body, want) {
			t.Errorf("the dossier lacks %q", want)
		}
	}
	if code, _, _ := br.get("/beneficiaires/" + ident.New().String() + "/acces"); code != http.StatusNotFound {
		t.Errorf("nobody's dossier: %d", code)
	}
}
