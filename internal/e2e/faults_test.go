package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"numeribus/agent/syncclient"
	hubcli "numeribus/hub/cli"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/sqlitex"
)

// stops returns n valid, distinct tour stops.
func stops(n int) []domain.Record {
	communes := []string{"88413", "88160", "54395", "23096", "48095"}
	out := make([]domain.Record, n)
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for i := range out {
		d := base.AddDate(0, 0, i%300)
		out[i] = &domain.TourStop{ID: ident.NewAt(d), Vehicule: fmt.Sprintf("Numéribus %d", 1+i%3), Date: d.Format(domain.DateLayout),
			HeureDebut: "09:00", HeureFin: "12:00", Lieu: fmt.Sprintf("Place de la mairie n°%d", i), Commune: communes[i%len(communes)], Equipe: "cd88"}
	}
	return out
}

// hubCount returns, from the hub's file, how many changes it logged for a
// device, how many distinct device seqs, and the device's high-water mark.
func hubCount(t testing.TB, h *testHub, device string) (changes, distinct, hwm int) {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(h.dir, hubcli.DBFile), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT count(*), count(DISTINCT c.dseq), d.hwm FROM devices d LEFT JOIN changes c ON c.device = d.num WHERE d.id = ?`, device).Scan(&changes, &distinct, &hwm)
	if err != nil {
		t.Fatal(err)
	}
	return
}

// hubRefused counts by code the changes of device the hub refused.
func hubRefused(t testing.TB, h *testHub, device string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(h.dir, hubcli.DBFile), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT r.code, count(*) FROM rejected r JOIN devices d ON d.num = r.device WHERE d.id = ? GROUP BY r.code`, device)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			code string
			n    int
		)
		if err := rows.Scan(&code, &n); err != nil {
			t.Fatal(err)
		}
		out[code] = n
	}
	return out
}

// A proxy cuts the connection at random byte offsets, more than a hundred
// times during a 10,000-change push; the hub ends with exactly the 10,000
// changes, each once.
func TestPushSurvivesRandomCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("long: run without -short")
	}
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	const n = 10000
	a.save(t, stops(n)...)

	proxy := startCutProxy(t, h.srv.Addr, 2_000, 24_000, 7)
	a.cl.URL = "wss://" + proxy.addr() + "/sync"
	a.cl.BatchBytes = 6 << 10 // small batches: progress between cuts
	a.cl.Window = 3
	a.cl.AnswerTimeout = 5 * time.Second
	failures := syncThroughCuts(t, a, 5000)
	t.Logf("%d cuts by the proxy, %d failed rounds before success", proxy.cuts.Load(), failures)
	if proxy.cuts.Load() < 100 {
		t.Fatalf("only %d cuts: the test did not cut enough", proxy.cuts.Load())
	}
	changes, distinct, hwm := hubCount(t, h, a.st.Device())
	if changes != n || distinct != n || hwm != n {
		t.Fatalf("hub holds %d changes (%d distinct), hwm %d; want exactly %d", changes, distinct, hwm, n)
	}
	if last, acked, _ := a.st.Seqs(context.Background()); last != n || acked != n {
		t.Fatalf("agent outbox: last %d acked %d", last, acked)
	}
	sameLines(t, "hub and agent", hubLines(t, h, "cd88"), a.lines(t))
}

// syncThroughCuts syncs a until a round goes through (a cutting proxy in
// front of the hub), at most max attempts; it returns the rounds that
// failed.
func syncThroughCuts(t *testing.T, a *testAgent, max int) int {
	t.Helper()
	for attempt := 0; ; attempt++ {
		if attempt > max {
			t.Fatalf("no complete sync after %d attempts", attempt)
		}
		_, err := a.cl.Sync(context.Background())
		if err == nil {
			return attempt
		}
		if syncclient.Fatal(err) {
			t.Fatalf("fatal error through the proxy: %v", err)
		}
	}
}

// A locked agent pushes its pending changes, sealed to the hub at write
// time, without its data key; pulling waits for the next unlock.
func TestLockedAgentPushes(t *testing.T) {
	ctx := context.Background()
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	b.save(t, stops(5)...)
	b.sync(t)
	a.save(t, records(40, 5)...)
	a.st.Lock()
	rep, err := a.cl.Sync(ctx)
	if err != nil {
		t.Fatalf("locked sync: %v\n%s", err, a.hubLog())
	}
	if !rep.PullSkipped || rep.Pulled != 0 || rep.PendingAfter != 0 || rep.Mode != 2 {
		t.Fatalf("locked round: %+v", rep)
	}
	if !a.st.Locked() {
		t.Fatal("sync unlocked the store")
	}
	if err := a.st.Unlock(ctx, []byte(pass)); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	b.sync(t)
	sameLines(t, "agents after unlock", a.lines(t), b.lines(t))
	sameLines(t, "hub", hubLines(t, h, "cd88"), a.lines(t))
}
