package ui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

var inputTagRE = regexp.MustCompile(`<input [^>]*>`)

// checkedInputs lists the name=value of the checked boxes and radios of
// body whose name starts with prefix.
func checkedInputs(body, prefix string) []string {
	var out []string
	for _, tag := range inputTagRE.FindAllString(body, -1) {
		name := attr(tag, "name")
		if !strings.HasPrefix(name, prefix) || !regexp.MustCompile(`\schecked[\s>]`).MatchString(tag) {
			continue
		}
		out = append(out, name+"="+attr(tag, "value"))
	}
	return out
}

func attr(tag, name string) string {
	m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// Nothing consent-related is ever ticked when a form is first shown: no
// purpose, no mode, on the new followed person's form and on the consent
// form of a person already recorded. The text read to the person comes
// before the boxes, with its version.
func TestConsentFormsStartUnticked(t *testing.T) {
	e := newEnv(t)
	anon := &domain.Beneficiary{ID: ident.New(), Genre: "masculin"}
	e.seed(anon)
	b := e.browser()
	b.unlock()
	for _, p := range []string{"/beneficiaires/nouveau?suivi=1", "/beneficiaires/" + anon.ID.String() + "/consentement"} {
		code, _, body := b.get(p)
		if code != 200 {
			t.Fatalf("GET %s: %d", p, code)
		}
		if c := checkedInputs(body, "consent."); len(c) > 0 {
			t.Errorf("%s: ticked in advance: %v", p, c)
		}
		for _, code := range domain.Finalites.Codes {
			if !strings.Contains(body, `name="consent.finalites" value="`+code.Code+`"`) {
				t.Errorf("%s: no box for %s", p, code.Code)
			}
		}
		for _, code := range domain.ModesConsentement.Codes {
			if !strings.Contains(body, `type="radio" id="f-consent-mode-`+code.Code+`" name="consent.mode" value="`+code.Code+`">`) {
				t.Errorf("%s: no unticked radio for mode %s", p, code.Code)
			}
		}
		text, boxes := strings.Index(body, `id="consent-text"`), strings.Index(body, `name="consent.finalites"`)
		if text < 0 || boxes < 0 || text > boxes {
			t.Errorf("%s: the text read to the person (at %d) is not before the boxes (at %d)", p, text, boxes)
		}
		if !strings.Contains(body, tr("consent_text_version", ConsentTextVersion)) {
			t.Errorf("%s: text version not shown", p)
		}
		if !strings.Contains(body, `id="f-consent-mode"`) || !strings.Contains(body[strings.Index(body, `id="f-consent-mode"`):], tr("required_mark")) {
			t.Errorf("%s: the mode is not marked required", p)
		}
	}
}

// After a validation error the form shows what the mediator ticked, and
// nothing more; the mode has no default and is required.
func TestConsentReRenderKeepsOnlyWhatWasTicked(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/beneficiaires/nouveau?suivi=1")
	f := url.Values{"suivi": {"1"}, "consent.finalites": {domain.FinaliteSuivi, domain.FinalitePartage},
		"consent.date": {"02/03/2026"}, "prenom": {"Gaston"}, "nom": {"Lagaffe"}}
	code, _, body := b.post("/beneficiaires/nouveau", f)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `id="e-consent-mode"`) {
		t.Fatalf("no mode: %d (mode error shown: %v)", code, strings.Contains(body, `id="e-consent-mode"`))
	}
	got := checkedInputs(body, "consent.")
	want := []string{"consent.finalites=" + domain.FinaliteSuivi, "consent.finalites=" + domain.FinalitePartage}
	if !slices.Equal(got, want) {
		t.Fatalf("ticked after the error: %v, want %v", got, want)
	}
	if n := countKind(t, e.st, domain.KindConsent) + countKind(t, e.st, domain.KindBeneficiary); n != 0 {
		t.Fatalf("%d records saved without a mode", n)
	}
	// A mode ticked, no purpose: the mode stays ticked, no purpose appears.
	f["consent.mode"] = []string{"ecrit"}
	delete(f, "consent.finalites")
	_, _, body = b.post("/beneficiaires/nouveau", f)
	if got := checkedInputs(body, "consent."); !slices.Equal(got, []string{"consent.mode=ecrit"}) {
		t.Fatalf("ticked after the second error: %v", got)
	}
	// Both: saved, with how it was collected and the text's version.
	f["consent.finalites"] = []string{domain.FinaliteSuivi}
	if code, p, _ := b.post("/beneficiaires/nouveau", f); code != 200 || !strings.HasPrefix(p, "/beneficiaires/") {
		t.Fatalf("consent with a mode: %d %s", code, p)
	}
	var c *domain.Consent
	e.st.List(context.Background(), domain.KindConsent, false, func(it store.Item) error {
		c = it.Record.(*domain.Consent)
		return nil
	})
	if c == nil || c.Mode != "ecrit" || c.TexteVersion != ConsentTextVersion || !slices.Equal(c.Finalites, []string{domain.FinaliteSuivi}) {
		t.Fatalf("stored consent: %+v", c)
	}
	// The person's page says how and with which text.
	_, _, page := b.get("/beneficiaires/" + c.Beneficiaire.String())
	if !strings.Contains(page, domain.ModesConsentement.Label("ecrit")) || !strings.Contains(page, html.EscapeString(tr("consent_text_read", ConsentTextVersion))) {
		t.Fatal("the person's page does not say how the consent was given and with which text")
	}
}

// The mode is required on the consent form of a person already recorded.
func TestConsentLaterNeedsAMode(t *testing.T) {
	e := newEnv(t)
	anon := &domain.Beneficiary{ID: ident.New(), Genre: "masculin"}
	e.seed(anon)
	b := e.browser()
	b.unlock()
	page := "/beneficiaires/" + anon.ID.String()
	b.get(page + "/consentement")
	code, _, body := b.post(page+"/consentement", url.Values{"consent.finalites": {domain.FinaliteDiagnostic}, "consent.date": {"02/03/2026"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `id="e-consent-mode"`) {
		t.Fatalf("consent without a mode: %d", code)
	}
	if got := checkedInputs(body, "consent."); !slices.Equal(got, []string{"consent.finalites=" + domain.FinaliteDiagnostic}) {
		t.Fatalf("ticked after the error: %v", got)
	}
	if n := countKind(t, e.st, domain.KindConsent); n != 0 {
		t.Fatalf("%d consents saved without a mode", n)
	}
}

// consentTextHashes pins the wording of each version of the text read to
// the person: a consent records the version it was given under, so the
// words of a version never change. Changing the text means a new
// ConsentTextVersion and a new line here.
var consentTextHashes = map[string]string{
	"ui-v2": "4e2bc3a47bcc2c8446ec133e6142fa838443be2b90274a65c2aca080ad4fe519",
}

var tagRE = regexp.MustCompile(`<[^>]+>`)

func TestConsentTextIsVersioned(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	_, _, body := b.get("/beneficiaires/nouveau?suivi=1")
	m := regexp.MustCompile(`(?s)<section class="consent-text".*?</section>`).FindString(body)
	if m == "" {
		t.Fatal("no consent text")
	}
	text := strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(m, " "))), " ")
	sum := sha256.Sum256([]byte(text))
	got := hex.EncodeToString(sum[:])
	if want, ok := consentTextHashes[ConsentTextVersion]; !ok || got != want {
		t.Fatalf("the text read to the person is not the one pinned for version %s (hash %s):\n%s\n"+
			"A new wording needs a new ConsentTextVersion and its hash in consentTextHashes.", ConsentTextVersion, got, text)
	}
}

func TestConsentTextsDoNotOverride(t *testing.T) {
	if len(frConsentOverrides) > 0 {
		t.Fatalf("text_fr_consent.go redefines keys of text_fr.go: %v", frConsentOverrides)
	}
}
