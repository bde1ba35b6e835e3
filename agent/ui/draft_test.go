package ui

import (
	"bytes"
	"html"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"numeribus/internal/domain"
)

// A form saved after the auto-lock is not dropped: kept sealed, it comes
// back filled after the unlock, and saving it records the one activity.
func TestFormSavedAfterTheLockComesBack(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	b.get("/activites/nouvelle?type=individuel")
	fid := b.formID
	e.clock.Add(16 * time.Minute)
	e.ui.idleCheck()
	if !e.st.Locked() {
		t.Fatal("not locked")
	}
	typed := withValue(activityForm(), "form_id", fid)
	typed.Set("notes", "Mme Kerbrat-Lézardrieux, dossier CAF à finir")
	code, path, body := b.post("/activites/nouvelle", typed)
	if path != "/unlock" || !strings.Contains(body, html.EscapeString(fr["draft_kept"])) {
		t.Fatalf("post after the lock: %d %s, not told the form was kept", code, path)
	}
	for _, f := range []string{"agent.db", "agent.db-wal"} {
		raw, _ := os.ReadFile(filepath.Join(e.dir, f))
		if bytes.Contains(raw, []byte("Kerbrat")) {
			t.Fatalf("%s holds the typed text in clear", f)
		}
	}
	// The unlock leads to the kept form, which comes back as typed.
	code, path, body = b.post("/unlock", url.Values{"secret": {testPass}})
	if path != "/brouillons" || !strings.Contains(body, fr["draft_activity_individuel"]) {
		t.Fatalf("after unlock: %d %s", code, path)
	}
	resume := regexpFind(t, body, `href="(/activites/nouvelle\?brouillon=[^"]+)"`)
	_, _, body = b.get(html.UnescapeString(resume))
	if !strings.Contains(body, "Kerbrat") || !strings.Contains(body, `value="`+fid+`"`) || !strings.Contains(body, html.EscapeString(fr["draft_resumed"])) {
		t.Fatalf("the resumed form lacks what was typed or its form id:\n%s", body)
	}
	if _, _, again := b.get("/brouillons"); !strings.Contains(again, html.EscapeString(fr["drafts_none"])) {
		t.Fatal("a draft taken back is still listed")
	}
	b.post("/activites/nouvelle", typed)
	b.post("/activites/nouvelle", typed) // and once more, as a double-click
	if n := countKind(t, e.st, domain.KindActivity); n != 1 {
		t.Fatalf("%d activities after saving the resumed form twice, want 1", n)
	}
}

// What app.js sends as the auto-lock leaves a page is kept even while
// locked, and only for the create forms.
func TestDraftEndpoint(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.unlock()
	e.st.Lock()
	if code, _, _ := b.post("/brouillon", url.Values{"_form": {"/beneficiaires/nouveau"}, "genre": {"feminin"}}); code != 204 {
		t.Fatalf("draft while locked: %d", code)
	}
	if code, _, _ := b.post("/brouillon", url.Values{"_form": {"/unlock"}, "secret": {"x"}}); code != 422 {
		t.Fatalf("a draft of another form: %d, want 422", code)
	}
	b.unlock2(t)
	_, _, body := b.get("/brouillons")
	if strings.Count(body, "/abandon") != 1 {
		t.Fatalf("want one draft listed:\n%s", body)
	}
	id := regexpFind(t, body, `action="/brouillons/([0-9]+)/abandon"`)
	b.post("/brouillons/"+id+"/abandon", nil)
	if _, _, body := b.get("/brouillons"); !strings.Contains(body, html.EscapeString(fr["drafts_none"])) {
		t.Fatal("an abandoned draft is still listed")
	}
}

// unlock2 unlocks wherever the unlock leads (drafts may wait).
func (b *browser) unlock2(t *testing.T) {
	t.Helper()
	b.get("/unlock")
	if code, _, body := b.post("/unlock", url.Values{"secret": {testPass}}); code != 200 {
		t.Fatalf("unlock: %d\n%s", code, body)
	}
}

func regexpFind(t *testing.T, body, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, body)
	}
	return m[1]
}
