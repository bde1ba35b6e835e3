package ui

import (
	"context"
	"html"
	"io"
	"strings"
	"testing"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/retention"
)

// The information notice: linked from the person's page and the consent
// forms, the same for everyone (no personal data), with what is recorded,
// why, how long, the rights and whom to contact; a print stylesheet for
// one A4 page. Unconfigured, the structure and contact are lines to fill
// in by hand, and the mediator is told so on screen.
func TestNoticePage(t *testing.T) {
	e := newEnv(t)
	bn, _ := followed(e)
	b := e.browser()
	b.unlock()
	for _, p := range []string{"/beneficiaires/" + bn.ID.String(), "/beneficiaires/" + bn.ID.String() + "/consentement", "/beneficiaires/nouveau?suivi=1"} {
		if _, _, body := b.get(p); !strings.Contains(body, `href="/notice"`) {
			t.Errorf("%s: no link to the notice", p)
		}
	}
	code, _, body := b.get("/notice")
	if code != 200 || strings.Contains(body, "[[") {
		t.Fatalf("notice: %d (missing text: %v)", code, strings.Contains(body, "[["))
	}
	assertNoPersonal(t, "the notice", body)
	for _, key := range []string{"notice_what", "notice_why", "notice_how_long", "notice_rights", "notice_contact", "notice_retention_default", "notice_cnil"} {
		if !strings.Contains(body, html.EscapeString(tr(key))) {
			t.Errorf("notice lacks %s", key)
		}
	}
	for _, f := range domain.Finalites.Codes {
		if !strings.Contains(body, html.EscapeString(tr("consent_text_fin."+f.Code))) {
			t.Errorf("notice lacks the purpose %s", f.Code)
		}
	}
	for _, right := range []string{"(accès)", "(rectification)", "(effacement)", "retirer votre consentement"} {
		if !strings.Contains(body, right) {
			t.Errorf("notice lacks the right %q", right)
		}
	}
	if strings.Count(body, `class="blank"`) != 2 || !strings.Contains(body, `id="notice-unconfigured"`) {
		t.Error("unconfigured notice: want two lines to fill in and a warning")
	}
	// Periods the hub set replace the defaults.
	p, _ := retention.Default().With(retention.Identite, 12)
	if _, err := e.st.SetRetention(context.Background(), p, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, body := b.get("/notice"); !strings.Contains(body, "gardés 12 mois (1 an) après votre dernier contact avec nous, vos diagnostics 24 mois (2 ans)") {
		t.Error("the notice does not say the hub's periods")
	}
	e.ui.cfg.Notice = Notice{Structure: "Numéribus 54, 1 rue de la Paix, Nancy", Contact: "dpo@numeribus54.fr", Retention: "Un an après le dernier accompagnement."}
	_, _, body = b.get("/notice")
	for _, want := range []string{"Numéribus 54, 1 rue de la Paix, Nancy", "dpo@numeribus54.fr", "Un an après le dernier accompagnement."} {
		if !strings.Contains(body, want) {
			t.Errorf("configured notice lacks %q", want)
		}
	}
	if strings.Contains(body, `class="blank"`) || strings.Contains(body, `id="notice-unconfigured"`) || strings.Contains(body, html.EscapeString(tr("notice_retention_default"))) {
		t.Error("configured notice still shows the defaults")
	}
	resp, err := b.c.Get(e.srv.URL + "/static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	css, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(css), "@media print") || !strings.Contains(string(css), "size: A4") {
		t.Error("no print stylesheet for the notice")
	}
}
