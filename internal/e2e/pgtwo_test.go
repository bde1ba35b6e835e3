package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/certs"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/jsonl"
	"numeribus/internal/merge"
	"numeribus/internal/pgtest"
)

// Two `hub serve` instances over one PostgreSQL database, as behind a
// load balancer: the agents of a team sync with either at random, round
// after round, one instance is stopped in the middle and the agents carry
// on with the other; at the end every agent and the database hold the
// same records, each change of each device logged once.
func TestTwoHubsOverOnePostgres(t *testing.T) {
	db := pgtest.NewDB(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startHubIn(t, dirA, "--db", db)
	// The instances serve one certificate and one envelope key: an agent
	// pins the certificate, and seals to the key, whichever it reaches.
	for _, f := range []string{certs.CertFile, certs.KeyFile, certs.EnvelopeFile} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := startHubIn(t, dirB, "--db", db)
	hubs := []*testHub{a, b}

	agents := make([]*testAgent, 3)
	for i := range agents {
		name := []string{"bus-1", "bus-2", "bus-3"}[i]
		code, out := a.cli(t, "enroll", "--db", db, "--device", name, "--team", "cd88", "--json")
		if code != 0 {
			t.Fatalf("enroll on PostgreSQL: %d %s", code, out)
		}
		agents[i] = newAgentWithCode(t, a, name, jsonCode(t, out))
	}
	r := rand.New(rand.NewPCG(1, 2))
	syncWith := func(ag *testAgent, h *testHub) {
		t.Helper()
		ag.hub, ag.cl.URL = h, h.srv.URL
		ag.sync(t)
	}
	for round := range 6 {
		for i, ag := range agents {
			ag.save(t, records(8, uint64(100*round+i))...)
			up := hubs
			if round >= 3 {
				up = hubs[1:] // instance A stopped: B alone
			}
			syncWith(ag, up[r.IntN(len(up))])
		}
		if round == 2 {
			a.stop()
		}
	}
	for range 2 { // heal: everyone pulls what the others sent last
		for _, ag := range agents {
			syncWith(ag, b)
		}
	}
	want := agents[0].lines(t)
	for _, ag := range agents[1:] {
		sameLines(t, ag.name+" and "+agents[0].name, ag.lines(t), want)
	}
	sameLines(t, "PostgreSQL and "+agents[0].name, pgLines(t, db, "cd88"), want)
	for _, ag := range agents {
		last, _, err := ag.st.Seqs(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var n, distinct, hwm int64
		if err := pgQueryRow(t, db, `SELECT count(c.hseq), count(DISTINCT c.dseq), d.hwm FROM devices d LEFT JOIN changes c ON c.device = d.num
			WHERE d.id = $1 GROUP BY d.hwm`, ag.st.Device()).Scan(&n, &distinct, &hwm); err != nil {
			t.Fatal(err)
		}
		if n != distinct || uint64(hwm) != last || uint64(n) != last {
			t.Fatalf("%s: %d changes logged (%d distinct), mark %d, agent's last %d: want each once", ag.name, n, distinct, hwm, last)
		}
	}
}

func jsonCode(t *testing.T, out string) string {
	t.Helper()
	var v struct{ Code string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Code == "" {
		t.Fatalf("enroll output %q: %v", out, err)
	}
	return v.Code
}

func pgQueryRow(t *testing.T, url, q string, args ...any) pgx.Row {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c.QueryRow(context.Background(), q, args...)
}

// pgLines returns a team's live records in the PostgreSQL hub as sorted
// JSON lines.
func pgLines(t *testing.T, url, team string) []string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT id, kind, state FROM records WHERE team = $1 AND NOT deleted`, team)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			idb, state []byte
			k          string
		)
		if err := rows.Scan(&idb, &k, &state); err != nil {
			t.Fatal(err)
		}
		st, err := merge.Unmarshal(state)
		if err != nil {
			t.Fatal(err)
		}
		var id ident.ID
		copy(id[:], idb)
		rec, err := change.Decode(domain.Kind(k), id, st.Live())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := jsonl.EncodeLine(rec)
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}
