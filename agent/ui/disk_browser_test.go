package ui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/agent/store"
	"numeribus/internal/browsertest"
	"numeribus/internal/diskspace"
	"numeribus/internal/domain"
)

// TestBrowserLowDiskAxe: the low-disk banner, then the refusal of a save
// on a nearly full disk, as Chromium shows them: the message in the
// form's error summary, and axe-core finds nothing to fix on either page.
func TestBrowserLowDiskAxe(t *testing.T) {
	var avail atomic.Uint64
	avail.Store(200 << 20)
	wall := &clock{t: time.Now()}
	st, _, err := store.Create(context.Background(), t.TempDir(), []byte(testPass), store.Options{KDF: testKDF, Wall: wall.Now,
		FreeSpace: func(string) (diskspace.Space, error) {
			return diskspace.Space{Avail: avail.Load(), Total: 500 << 30}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Lock()
	c := newChrome(t, st)
	unlockChrome(c)
	if got := c.Text("#disk-banner"); !strings.Contains(got, "Espace disque faible") {
		t.Fatalf("banner %q", got)
	}
	c.Axe("today, disk low")

	avail.Store(10 << 20)
	wall.Add(time.Minute)
	c.Do("activity form", chromedp.Navigate(c.Base+"/activites/nouvelle?type=individuel"), chromedp.WaitVisible(css("#f-duree")),
		chromedp.SendKeys(css("#f-duree"), "45"))
	c.NextPage("save on a nearly full disk", chromedp.Click(css("main form button[type=submit]")), "#summary")
	if got := c.Text("#summary"); !strings.Contains(got, "Espace disque insuffisant : il reste 10 Mo") {
		t.Fatalf("summary %q", got)
	}
	if got := c.Text("#disk-banner"); !strings.Contains(got, "Disque presque plein") {
		t.Fatalf("banner %q", got)
	}
	c.Axe("activity refused, disk nearly full")
	if n := countKind(t, st, domain.KindActivity); n != 0 {
		t.Fatalf("%d activities written", n)
	}
}

// TestBrowserDamagedStorePage: the page `agent serve` shows instead of
// the UI when the store is damaged, with a backup to offer and without,
// and once restored; axe-core finds nothing to fix on any of them.
func TestBrowserDamagedStorePage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, _, err := store.Create(ctx, dir, []byte(testPass), store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	serve := func(d string) *browsertest.Browser {
		t.Helper()
		ln, err := Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := ServeDamaged(sctx, ln, DamagedConfig{Err: &store.DamagedError{Dir: d, Problems: []string{"Tree 5 page 5: btreeInitPage() returns error code 11"}},
				Command: `agent restore --data "` + d + `" --latest`})
			done <- err
		}()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("ServeDamaged: %v", err)
			}
		})
		return browsertest.New(t, "http://"+ln.Addr().String(), 1366, 768, 60*time.Second)
	}

	if _, err := st.Backup(ctx, store.BackupManual); err != nil {
		t.Fatal(err)
	}
	st.Close()
	c := serve(dir)
	c.Do("damaged page", chromedp.Navigate(c.Base+"/"), chromedp.WaitVisible(css("#restore")))
	if got := c.Text("#command"); !strings.Contains(got, "agent restore --data") {
		t.Fatalf("command %q", got)
	}
	c.Axe("damaged store, a backup to restore")
	c.NextPage("restore", chromedp.Click(css("#restore")), "#restored")
	c.Axe("damaged store, restored")
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
		t.Fatal(err)
	}
	if bs, err := store.Backups(ctx, dir); err != nil || len(bs) != 2 {
		t.Fatalf("after the restore: %d backups (%v), want the copy and the store put aside", len(bs), err)
	}

	c = serve(empty)
	c.Do("damaged page, no backup", chromedp.Navigate(c.Base+"/"), chromedp.WaitVisible(css("#no-backup")))
	c.Axe("damaged store, no backup")
	if _, err := os.Stat(filepath.Join(empty, store.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("something was written in a directory without backup: %v", err)
	}
}
