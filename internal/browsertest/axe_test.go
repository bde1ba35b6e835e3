package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAxe checks that Axe sees a broken page as broken and a sound
// one as sound, under the UI's own Content-Security-Policy (axe-core must
// run where inline scripts are refused).
func TestBrowserAxe(t *testing.T) {
	page := func(body string) string {
		return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Essai</title></head><body>
<main><h1>Essai</h1>` + body + `</main></body></html>`
	}
	pages := map[string]string{
		"/ok":     page(`<form><label for="a">Nom</label><input id="a" name="a"><button type="submit">Envoyer</button></form>`),
		"/broken": page(`<form><input id="a" name="a"><button type="submit">Envoyer</button></form><img src="/x.png">`),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if p, ok := pages[r.URL.Path]; ok {
			w.Write([]byte(p))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	b := New(t, srv.URL, 800, 600, 30*time.Second)

	b.Do("sound page", chromedp.Navigate(srv.URL+"/ok"), chromedp.WaitVisible(CSS("h1")))
	if vs := b.AxeViolations(); len(vs) != 0 {
		t.Errorf("sound page: violations:\n%s", FormatAxe(vs))
	}
	// A second run on the same page reuses the loaded script.
	if vs := b.AxeViolations(); len(vs) != 0 {
		t.Errorf("sound page, second run: %d violations", len(vs))
	}

	b.Do("broken page", chromedp.Navigate(srv.URL+"/broken"), chromedp.WaitVisible(CSS("h1")))
	vs := b.AxeViolations()
	got := map[string]AxeViolation{}
	for _, v := range vs {
		got[v.ID] = v
	}
	l, ok := got["label"]
	if !ok || len(l.Nodes) != 1 || strings.Join(l.Nodes[0].Target, "") != "#a" || l.Impact == "" || l.Help == "" {
		t.Errorf("unlabelled input not reported as such: %+v", vs)
	}
	if _, ok := got["image-alt"]; !ok {
		t.Errorf("image without alt not reported: %+v", vs)
	}
	msg := FormatAxe(vs)
	for _, want := range []string{"label [critical]", "#a", "image-alt"} {
		if !strings.Contains(msg, want) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
}
