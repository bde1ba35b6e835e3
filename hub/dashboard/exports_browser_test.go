package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"numeribus/hub/report"
)

// download clicks the link sel of the page, as a person would, lets
// Chromium save the file in dir and returns the name the server
// suggested and the file's bytes.
func (b *browser) download(sel, dir string) (string, []byte) {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	begin := chromedp.Events(ctx, cdpbrowser.DownloadWillBegin)
	progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	events := true
	b.Do("download "+sel, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events})
		return err
	}), chromedp.Click(css(sel)))
	var name string
	for ev, err := range begin {
		if err != nil {
			b.T.Fatalf("download %s: %v", sel, err)
		}
		name = ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			b.T.Fatalf("download %s: %v", sel, err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			data, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				b.T.Fatal(err)
			}
			return name, data
		case cdpbrowser.DownloadProgressStateCanceled:
			b.T.Fatalf("download %s canceled", sel)
		}
	}
	b.T.Fatalf("download %s never completed", sel)
	return "", nil
}

// TestBrowserExports: a coordinator of Meurthe-et-Moselle opens the
// exports page, which lists each export in its formats (axe-core finds
// no violation), and downloads the activities in XLSX and in the
// « format La Coop »: her département's rows only, one La Coop row per
// accompagnement (the workshop of 12 is 12 rows).
func TestBrowserExports(t *testing.T) {
	e := newEnv(t, false)
	seed(t, e.st)
	b := newBrowser(t, e)
	b.login("coord54@cd54.fr")
	b.Do("exports", chromedp.Navigate(b.Base+"/exports?du=2026-03-01&au=2026-05-31"), chromedp.WaitVisible(css("#export-activites-lacoop")))
	for sel, want := range map[string]string{
		"#export-indicateurs h2": "Indicateurs", "#export-activites h2": "Activités",
		"#export-activites-lacoop h2": "Activités au format La Coop",
		"#csv-indicateurs":            "Indicateurs en CSV", "#xlsx-indicateurs": "Indicateurs en XLSX",
		"#csv-activites": "Activités en CSV", "#xlsx-activites": "Activités en XLSX",
		"#xlsx-activites-lacoop": "Activités au format La Coop en XLSX",
	} {
		if got := b.Text(sel); got != want {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	b.Axe("exports")
	b.Shot("07-exports")

	dir := t.TempDir()
	name, data := b.download("#xlsx-activites-lacoop", dir)
	if name != "numeribus-activites-lacoop-2026-06-15.xlsx" {
		t.Errorf("La Coop file named %q", name)
	}
	top, header, lines := xlsxTable(t, data, "Date")
	if !slices.Equal(header, report.LaCoopColumns) || len(lines) != seed54Acc || top["Exporté par"] != "coord54@cd54.fr" {
		t.Fatalf("La Coop file: %d rows, want %d; header block %v", len(lines), seed54Acc, top)
	}
	insee, part := slices.Index(header, "Code Insee"), slices.Index(header, "Participants")
	workshop := 0
	for _, l := range lines {
		if l[insee] != "54395" && l[insee] != "54547" {
			t.Fatalf("a row outside Meurthe-et-Moselle: %q", l)
		}
		if l[insee] == "54547" {
			workshop++
			if want := itoa(workshop) + "/12"; l[part] != want {
				t.Errorf("workshop row %d: participants %q, want %q", workshop, l[part], want)
			}
		}
	}
	if workshop != 12 {
		t.Errorf("the workshop of 12 gave %d rows", workshop)
	}

	name, data = b.download("#xlsx-activites", dir)
	_, header, lines = xlsxTable(t, data, "Identifiant")
	if name != "numeribus-activites-2026-06-15.xlsx" || len(lines) != seed54Activities {
		t.Fatalf("activities file %q: %d lines, want %d", name, len(lines), seed54Activities)
	}
	for _, l := range lines {
		if l[slices.Index(header, "Équipe")] != "cd54" {
			t.Fatalf("a line of another team: %q", l)
		}
	}
}
