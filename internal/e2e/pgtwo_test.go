package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"numeribus/agent/syncclient"
	"numeribus/hub/certs"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/jsonl"
	"numeribus/internal/merge"
	"numeribus/internal/pgtest"
	"numeribus/internal/wire"
)

// Two `hub serve` instances over one PostgreSQL database, as behind a
// load balancer: the agents of a team sync with either at random, round
// after round, one instance is stopped in the middle and the agents carry
// on with the other; at the end every agent and the database hold the
// same records, each change of each device logged once.
func TestTwoHubsOverOnePostgres(t *testing.T) {
	db := pgtest.NewDB(t)
	a, b := startTwoHubs(t, db)
	hubs := []*testHub{a, b}
	agents := enrollOnPostgres(t, a, db, "bus-1", "bus-2", "bus-3")
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

// A device revoked by `hub revoke` on the shared database loses its live
// connection within a second, whichever instance serves it; the other
// devices' connections stay open.
func TestTwoHubsCutRevokedDevices(t *testing.T) {
	db := pgtest.NewDB(t)
	a, b := startTwoHubs(t, db)
	agents := enrollOnPostgres(t, a, db, "bus-1", "bus-2", "bus-3")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ends := make([]<-chan error, len(agents))
	for i, h := range []*testHub{a, b, b} {
		agents[i].hub, agents[i].cl.URL = h, h.srv.URL
		ends[i] = runLive(ctx, t, agents[i])
	}
	for _, v := range []struct {
		i  int
		on string
	}{{1, "B"}, {0, "A"}} {
		ag := agents[v.i]
		if code, out := a.cli(t, "revoke", "--db", db, "--device", ag.name); code != 0 {
			t.Fatalf("revoke %s: %d %s", ag.name, code, out)
		}
		revoked := time.Now()
		select {
		case err := <-ends[v.i]:
			var re *syncclient.RemoteError
			if !errors.As(err, &re) || re.Code != wire.CodeRevoked {
				t.Fatalf("%s on %s: live connection ended with %v, want revoked", ag.name, v.on, err)
			}
			if took := time.Since(revoked); took > revocationBound {
				t.Errorf("%s on %s cut %v after the revocation, want within %v", ag.name, v.on, took, revocationBound)
			} else {
				t.Logf("%s on %s cut %v after the revocation", ag.name, v.on, took)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s on %s still connected 10 s after its revocation", ag.name, v.on)
		}
	}
	if !agents[2].cl.Liveness().Connected {
		t.Error("bus-3, not revoked, lost its connection")
	}
}

// startTwoHubs starts two `hub serve` instances over the database db.
// They serve one certificate and one envelope key: an agent pins the
// certificate, and seals to the key, whichever it reaches.
func startTwoHubs(t *testing.T, db string) (a, b *testHub) {
	t.Helper()
	dirA, dirB := t.TempDir(), t.TempDir()
	a = startHubIn(t, dirA, "--db", db)
	for _, f := range []string{certs.CertFile, certs.KeyFile, certs.EnvelopeFile} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return a, startHubIn(t, dirB, "--db", db)
}

// enrollOnPostgres enrolls agents named names in team cd88 with codes
// made by `hub enroll --db`, through the hub h.
func enrollOnPostgres(t *testing.T, h *testHub, db string, names ...string) []*testAgent {
	t.Helper()
	agents := make([]*testAgent, len(names))
	for i, name := range names {
		code, out := h.cli(t, "enroll", "--db", db, "--device", name, "--team", "cd88", "--json")
		if code != 0 {
			t.Fatalf("enroll on PostgreSQL: %d %s", code, out)
		}
		agents[i] = newAgentWithCode(t, h, name, jsonCode(t, out))
	}
	return agents
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
