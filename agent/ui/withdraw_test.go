package ui

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// Every personal field has a French label: the withdrawal page and the
// notice name them.
func TestPersonalFieldsHaveLabels(t *testing.T) {
	for _, f := range domain.Fields(domain.KindBeneficiary) {
		if _, ok := fr["f."+f.Name]; f.Personal && !ok {
			t.Errorf("personal field %s has no label f.%s", f.Name, f.Name)
		}
	}
	b := &domain.Beneficiary{Prenom: "A", Nom: "B", Telephone: "0600000000", Email: "a@b.fr", AnneeNaissance: 1950, Adresse: "1 rue", Notes: "n", Genre: "feminin"}
	if got := filledPersonal(b); len(got) != len(domain.PersonalFields(domain.KindBeneficiary)) {
		t.Fatalf("filled personal fields: %v", got)
	}
}

// withdrawFormRE finds the withdrawal form of the person's page.
var withdrawFormRE = regexp.MustCompile(`<form method="(get|post)" action="(/consentements/[0-9a-f-]+/retrait)">`)

func storedBeneficiary(t *testing.T, st *store.Store, id ident.ID) *domain.Beneficiary {
	t.Helper()
	it, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it.Record.(*domain.Beneficiary)
}

// « Retirer le consentement » asks first: a page that says what will be
// erased, that it cannot be undone, with a confirm button and a cancel
// link. Neither that page nor a post without the confirmation erases
// anything; the confirmation erases as before.
func TestWithdrawAsksBeforeErasing(t *testing.T) {
	e := newEnv(t)
	bn, _ := followed(e)
	b := e.browser()
	b.unlock()
	page := "/beneficiaires/" + bn.ID.String()
	_, _, body := b.get(page)
	m := withdrawFormRE.FindStringSubmatch(body)
	if m == nil || m[1] != "get" {
		t.Fatalf("the person's page withdraws without asking: %v", m)
	}
	before := countAll(t, e.st)
	code, _, confirm := b.get(m[2])
	if code != 200 || strings.Contains(confirm, "[[") {
		t.Fatalf("confirmation page: %d (missing text: %v)", code, strings.Contains(confirm, "[["))
	}
	for _, want := range []string{"<dt>Prénom</dt><dd>Hélène</dd>", "<dt>Nom</dt><dd>Lefèvre-Garnier</dd>", "<dt>Téléphone</dt><dd>0612345678</dd>",
		html.EscapeString(tr("withdraw_activity_notes", 1)), html.EscapeString(tr("withdraw_assessments", 1)),
		html.EscapeString(tr("withdraw_irreversible")), html.EscapeString(tr("withdraw_stays")),
		`name="confirmer" value="oui"`, `href="` + page + `" id="withdraw-cancel"`} {
		if !strings.Contains(confirm, want) {
			t.Errorf("confirmation page lacks %q", want)
		}
	}
	if !strings.Contains(confirm, `<form method="post" action="`+m[2]+`"`) {
		t.Error("no confirmation form")
	}
	// Unconfirmed: back to the confirmation, nothing written.
	for _, v := range []url.Values{nil, {"confirmer": {"non"}}, {"finalites": {domain.FinaliteSuivi}}} {
		code, p, body := b.post(m[2], v)
		if code != 200 || !strings.HasPrefix(p, m[2]) || !strings.Contains(body, html.EscapeString(tr("withdraw_unconfirmed"))) {
			t.Fatalf("unconfirmed %v: %d %s", v, code, p)
		}
	}
	if after := countAll(t, e.st); after.seq != before.seq {
		t.Fatalf("asking wrote to the store: seq %d → %d", before.seq, after.seq)
	}
	if got := storedBeneficiary(t, e.st, bn.ID); got.Prenom != "Hélène" || got.Telephone != "0612345678" {
		t.Fatalf("erased before the confirmation: %+v", got)
	}
	// A purpose this consent never gave is refused, not taken for "all".
	if code, _, _ := b.post(m[2], url.Values{"confirmer": {"oui"}, "finalites": {domain.FinalitePartage}}); code != http.StatusBadRequest {
		t.Fatalf("unknown purpose: %d", code)
	}
	if got := storedBeneficiary(t, e.st, bn.ID); got.Prenom != "Hélène" {
		t.Fatal("erased by a purpose the consent never gave")
	}
	// Confirmed: erased, as before.
	code, p, body := b.post(m[2], url.Values{"confirmer": {"oui"}, "finalites": {domain.FinaliteDiagnostic, domain.FinaliteSuivi}})
	if code != 200 || p != page || !strings.Contains(body, fr["withdraw_identity_erased"]) {
		t.Fatalf("confirmed withdrawal: %d %s", code, p)
	}
	assertNoPersonal(t, "the person's page after withdrawal", body)
	if got := storedBeneficiary(t, e.st, bn.ID); got.Identified() {
		t.Fatalf("not erased: %+v", got)
	}
	// A second click on the confirmation changes nothing more.
	seq := countAll(t, e.st).seq
	if code, p, body := b.post(m[2], url.Values{"confirmer": {"oui"}}); code != 200 || p != page || !strings.Contains(body, html.EscapeString(tr("withdraw_already_done"))) {
		t.Fatalf("second confirmation: %d %s", code, p)
	}
	if countAll(t, e.st).seq != seq {
		t.Fatal("a second confirmation wrote again")
	}
	if _, _, body := b.get(m[2]); !strings.Contains(body, html.EscapeString(tr("withdraw_already"))) || strings.Contains(body, `name="confirmer"`) {
		t.Fatal("the confirmation page of a withdrawn consent still offers to withdraw")
	}
}

// The confirmation says exactly what goes for the purposes chosen: only
// the assessments for diagnostic; nothing while another consent still
// gives follow-up by name.
func TestWithdrawPageSaysWhatGoes(t *testing.T) {
	e := newEnv(t)
	bn, c := followed(e)
	b := e.browser()
	b.unlock()
	_, _, body := b.get("/consentements/" + c.ID.String() + "/retrait?finalites=" + domain.FinaliteDiagnostic)
	if !strings.Contains(body, html.EscapeString(tr("withdraw_assessments", 1))) || strings.Contains(body, "<dd>Hélène</dd>") ||
		strings.Contains(body, html.EscapeString(tr("withdraw_activity_notes", 1))) {
		t.Fatal("withdrawing diagnostic: the page does not say that only the assessments go")
	}
	if !strings.Contains(body, `<input type="hidden" name="finalites" value="diagnostic">`) || strings.Contains(body, `value="suivi_nominatif"`) {
		t.Fatal("the confirmation form does not carry the purpose chosen")
	}
	other := &domain.Consent{ID: ident.New(), Beneficiaire: bn.ID, Finalites: []string{domain.FinaliteSuivi}, Mode: "oral_trace", Date: "2026-03-02"}
	e.seed(other)
	_, _, body = b.get("/consentements/" + c.ID.String() + "/retrait?finalites=" + domain.FinaliteSuivi)
	if !strings.Contains(body, `id="withdraw-nothing"`) || strings.Contains(body, `id="withdraw-irreversible"`) {
		t.Fatal("another consent gives suivi_nominatif: the page should say nothing is erased")
	}
	if code, _, _ := b.get("/consentements/" + c.ID.String() + "/retrait?finalites=inconnue"); code != http.StatusBadRequest {
		t.Fatalf("unknown purpose: %d", code)
	}
}
