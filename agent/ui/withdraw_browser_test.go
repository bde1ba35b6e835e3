package ui

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"numeribus/internal/domain"
)

// TestBrowserWithdrawAsksCancelConfirm: « Retirer le consentement… »
// opens a page that lists what will be erased and says it cannot be
// undone; « Annuler » goes back with everything kept; confirming erases.
func TestBrowserWithdrawAsksCancelConfirm(t *testing.T) {
	st, b, _ := consentStore(t, true)
	c := newChrome(t, st)
	unlockChrome(c)
	page := "/beneficiaires/" + b.ID.String()

	c.Do("person", chromedp.Navigate(c.Base+page), chromedp.WaitVisible(css("#h-who")))
	c.Do("ask", chromedp.Click(css("#h-consents ~ ul button.danger")), chromedp.WaitVisible(css("#withdraw-confirm")))
	erase := c.Text("#withdraw-erase")
	for _, want := range []string{"Hélène", "Lefèvre", "0612345678", "notes de ses accompagnements", "diagnostics", "définitive"} {
		if !strings.Contains(erase, want) {
			t.Errorf("the confirmation does not say %q will go: %q", want, erase)
		}
	}
	c.Shot("14-withdraw-confirm")

	c.Do("cancel", chromedp.Click(css("#withdraw-cancel")), chromedp.WaitVisible(css("#h-who")))
	if p := c.Location(); p != page {
		t.Fatalf("cancel led to %s", p)
	}
	if m := c.Text("main"); !strings.Contains(m, "Hélène Lefèvre") || !strings.Contains(m, "Compétences de base") {
		t.Fatalf("after cancelling, the person's data is not all there: %q", m)
	}
	if it, err := st.Get(context.Background(), b.ID); err != nil || !it.Record.(*domain.Beneficiary).Identified() {
		t.Fatalf("cancelled withdrawal erased the identity (%v)", err)
	}

	c.Do("ask again", chromedp.Click(css("#h-consents ~ ul button.danger")), chromedp.WaitVisible(css("#withdraw-confirm")))
	c.Do("confirm", chromedp.Click(css("#withdraw-confirm")), chromedp.WaitVisible(css("#flash")))
	if f := c.Text("#flash"); !strings.Contains(f, "effacées") {
		t.Fatalf("withdrawal message: %q", f)
	}
	if m := c.Text("main"); strings.Contains(m, "Hélène") || strings.Contains(m, "Lefèvre") || strings.Contains(m, "Compétences de base") {
		t.Fatalf("data still shown after withdrawal: %q", m)
	}
	if it, err := st.Get(context.Background(), b.ID); err != nil || it.Record.(*domain.Beneficiary).Identified() {
		t.Fatalf("confirmed withdrawal did not erase the identity (%v)", err)
	}
}
