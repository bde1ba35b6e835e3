package ui

import (
	"context"
	"slices"
	"strings"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/domain"
)

// A démarche's theme is said, not pre-ticked: no theme box is ticked when
// the form is shown, and the démarche is saved with its theme.
func TestDemarcheThemeNotPreTicked(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	_, _, body := b.get("/activites/nouvelle?type=demarche")
	if c := checkedInputs(body, "thematiques"); len(c) > 0 {
		t.Fatalf("démarche form ticked in advance: %v", c)
	}
	if strings.Contains(body, `name="thematiques" value="`+domain.ThemeDemarches+`"`) || !strings.Contains(body, `id="demarche-theme"`) {
		t.Fatal("the démarche theme should be said, not offered as a box")
	}
	v := activityForm()
	v.Set("flow", "demarche")
	delete(v, "thematiques")
	v.Set("demarches", "logement")
	if code, p, _ := b.post("/activites/nouvelle", v); code != 200 || p != "/" {
		t.Fatalf("démarche: %d %s", code, p)
	}
	var a *domain.Activity
	e.st.List(context.Background(), domain.KindActivity, false, func(it store.Item) error {
		a = it.Record.(*domain.Activity)
		return nil
	})
	if a == nil || !slices.Equal(a.Thematiques, []string{domain.ThemeDemarches}) || !slices.Equal(a.Demarches, []string{"logement"}) {
		t.Fatalf("saved démarche: %+v", a)
	}
}
