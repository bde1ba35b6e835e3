package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/diskspace"
	"numeribus/internal/domain"
)

// lowDiskEnv is newEnv over a store whose room on the disk the test
// sets (avail), and whose clock it moves past the store's measuring
// period.
func lowDiskEnv(t *testing.T, avail *atomic.Uint64) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.Local)}
	st, _, err := store.Create(context.Background(), t.TempDir(), []byte(testPass), store.Options{KDF: testKDF, Wall: c.Now,
		FreeSpace: func(string) (diskspace.Space, error) {
			return diskspace.Space{Avail: avail.Load(), Total: 500 << 30}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Lock()
	ui := New(Config{Store: st, Now: c.Now, AutoLock: 15 * time.Minute})
	srv := httptest.NewServer(ui.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, ui: ui, srv: srv, clock: c}
}

// The disk getting low shows on every page; nearly full, an activity is
// refused with the room left, the form keeps what was typed, nothing is
// written, the API says so too; room made, the same form saves.
func TestLowDiskBannerAndRefusal(t *testing.T) {
	var avail atomic.Uint64
	avail.Store(200 << 20)
	e := lowDiskEnv(t, &avail)
	b := e.browser()
	b.unlock()
	if _, _, body := b.get("/"); !strings.Contains(body, `id="disk-banner"`) || !strings.Contains(body, "Espace disque faible : il reste 200 Mo") {
		t.Fatalf("no low-disk banner:\n%s", body)
	}

	avail.Store(10 << 20)
	e.clock.Add(time.Minute)
	b.get("/activites/nouvelle")
	code, _, body := b.post("/activites/nouvelle", activityForm())
	if code == http.StatusOK || !strings.Contains(body, "Espace disque insuffisant : il reste 10 Mo") ||
		!strings.Contains(body, "texte tapé à garder") || !strings.Contains(body, "Disque presque plein") {
		t.Fatalf("save on a nearly full disk: %d\n%s", code, body)
	}
	if n := countKind(t, e.st, domain.KindActivity); n != 0 {
		t.Fatalf("%d activities written on a nearly full disk", n)
	}
	code, out := apiPost(t, b, "/api/activities", `{"type":"individuel","date":"2026-03-02","duree":30,"type_lieu":"a_distance","thematiques":["email"]}`)
	if code != http.StatusConflict || out["error"] != "state" || !strings.Contains(out["message"].(string), "Espace disque insuffisant") {
		t.Fatalf("API on a nearly full disk: %d %v", code, out)
	}

	avail.Store(20 << 30)
	e.clock.Add(time.Minute)
	code, path, body := b.post("/activites/nouvelle", activityForm())
	if code != http.StatusOK || path != "/" || strings.Contains(body, `id="disk-banner"`) {
		t.Fatalf("save once room was made: %d %s", code, path)
	}
	if n := countKind(t, e.st, domain.KindActivity); n != 1 {
		t.Fatalf("%d activities after the save, want 1", n)
	}
}
