package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"numeribus/internal/benchreport"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"numeribus/agent/syncclient"
	hubcli "numeribus/hub/cli"
	hubstore "numeribus/hub/store"
	hubsqlite "numeribus/hub/store/sqlite"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/sqlitex"
	"numeribus/internal/wire"
)

// The sync benchmark of `make bench`:
//
//	go test ./internal/e2e -run '^$' -bench '^BenchmarkSync$' -benchtime 1x -timeout 20m
//
// It measures, once whatever b.N:
//
//  1. a backlog of N changes (NUMERIBUS_BENCH_N, default 100,000) of
//     realistic records pushed by one agent (in this process) to a hub in a
//     child process over loopback wss: time, rate, bytes per change on the
//     wire against the same changes as JSON, the hub's peak memory;
//  2. raw SQLite inserts of the rows the hub wrote, same schema, same
//     settings, same transactions; and the hub's ApplyBatch alone on the
//     same batches, in-process;
//  3. a day of work (50 records) synced over a simulated 64 kbit/s link
//     with 600 ms of round trip, against the floor the link allows.
//
// It prints a table (figure, value, unit, target, met) and writes the
// figures as JSON, in the shape of agent/agentbench, to
// NUMERIBUS_BENCH_SYNC_OUT (default <module root>/.bench/sync.json). It
// reports targets; it fails only on functional errors.

// Slow link parameters: 64 kbit/s each way, 600 ms round trip.
const (
	slowRate    = 8000 // bytes per second, each direction
	slowOneWay  = 300 * time.Millisecond
	slowRTT     = 2 * slowOneWay
	slowRecords = 50
	benchSeed   = 1
)

// benchParams records the sizes of the run.
type benchParams struct {
	N           int    `json:"n"`
	Seed        uint64 `json:"seed"`
	BatchBytes  int    `json:"batch_bytes"`
	BatchCount  int    `json:"batch_count"`
	Window      int    `json:"window"`
	SlowRecords int    `json:"slow_records"`
	SlowRate    int    `json:"slow_rate_bytes_per_s"`
	SlowRTTms   int64  `json:"slow_rtt_ms"`
}

func BenchmarkSync(b *testing.B) {
	n := 100000
	if s := os.Getenv("NUMERIBUS_BENCH_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("NUMERIBUS_BENCH_N=%q: a positive number of changes expected", s)
		}
		n = v
	}
	out := os.Getenv("NUMERIBUS_BENCH_SYNC_OUT")
	if out == "" {
		root, err := benchreport.ModuleRoot()
		if err != nil {
			b.Fatal(err)
		}
		out = filepath.Join(root, ".bench", "sync.json")
	}
	res := benchreport.New(benchParams{N: n, Seed: benchSeed, BatchBytes: syncclient.DefaultBatchBytes, BatchCount: syncclient.DefaultBatchCount,
		Window: syncclient.DefaultWindow, SlowRecords: slowRecords, SlowRate: slowRate, SlowRTTms: slowRTT.Milliseconds()})
	head := fmt.Sprintf("sync bench: %d CPU, %s/%s, %s, load %.2f; n=%d", res.Machine.NumCPU, res.Machine.GOOS,
		res.Machine.GOARCH, res.Machine.GoVersion, res.Machine.LoadAvgStart, n)
	b.Log(head)
	fmt.Println(head)

	// The whole measurement runs once, whatever b.N: each part reports its
	// own timings.
	benchBacklog(b, n, res)
	benchPhase("slowlink", func() { benchSlowLink(b, res) })

	res.Finish()
	if l := max(res.Machine.LoadAvgStart, res.Machine.LoadAvgEnd); l > 0.5*float64(runtime.NumCPU()) {
		res.Note("the machine was busy (load average %.2f on %d CPUs): timings are inflated", l, runtime.NumCPU())
	}
	var tbl bytes.Buffer
	res.PrintTable(&tbl)
	b.Log("\n" + tbl.String())
	os.Stdout.Write(tbl.Bytes())
	if err := res.WriteJSON(out); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("written %s\n", out)
}

// benchPhase runs f with the pprof label phase=name, so that a CPU
// profile of the benchmark (-cpuprofile) can be cut by phase:
// go tool pprof -tagfocus phase=push. Goroutines started inside (the
// sync client's reader) inherit the label.
func benchPhase(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("phase", name), func(context.Context) { f() })
}

// benchBacklog measures figures 1 and 2: the N-change push to a child
// hub, then raw inserts and ApplyBatch of the same rows.
func benchBacklog(b *testing.B, n int, res *benchreport.Results) {
	ctx := context.Background()
	recs := backlogRecords(b, n, benchSeed)
	kinds := map[domain.Kind]int{}
	for _, r := range recs {
		kinds[r.Kind()]++
	}

	dir := b.TempDir()
	hp := startHubChild(b, dir)
	h := &testHub{t: b, dir: dir}
	a := newAgentFull(b, h, "bus-1", h.enrollCode(b, "bus-1", "cd88"), nil)
	t0 := time.Now()
	benchPhase("save", func() { a.save(b, recs...) }) // not timed
	saved := time.Since(t0)
	recs = nil
	device := a.st.Device()

	// A counting relay (no delay) gives the TCP bytes.
	relay := startSlowLink(b, hp.addr, 0, 0)
	a.cl.URL = "wss://" + relay.addr() + "/sync"
	runtime.GC()
	var (
		rep  syncclient.Report
		err  error
		push time.Duration
	)
	benchPhase("push", func() {
		t0 := time.Now()
		rep, err = a.cl.Sync(ctx)
		push = time.Since(t0)
	})
	if err != nil {
		b.Fatalf("sync of the backlog: %v\nhub log:\n%s", err, hp.logs.String())
	}
	if rep.Pushed != uint64(n) || rep.Pulled != 0 || rep.PendingAfter != 0 {
		b.Fatalf("sync of the backlog: %+v, want %d pushed, 0 pulled, 0 pending", rep, n)
	}
	changes, distinct, hwm := hubCount(b, h, device)
	if changes != n || distinct != n || hwm != n {
		b.Fatalf("hub holds %d changes (%d distinct), hwm %d; want exactly %d", changes, distinct, hwm, n)
	}
	peak, err := vmHWM(hp.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	hp.kill()
	tcpUp, tcpDown := relay.bytesUp(), relay.bytesDown()

	// What the hub wrote, read back after the push.
	hr := loadHubRows(b, filepath.Join(dir, hubcli.DBFile), device)
	if len(hr.changes) != n {
		b.Fatalf("read %d changes back from the hub, want %d", len(hr.changes), n)
	}
	sizes := make([]int, n)
	var jsonBytes, deviceJSON int64
	benchPhase("json", func() {
		for i := range hr.changes {
			c := &hr.changes[i]
			wc, err := wire.FromChange(c)
			if err != nil {
				b.Fatal(err)
			}
			sizes[i] = wire.EncodedSize(&wc)
			j, err := changeJSON(c)
			if err != nil {
				b.Fatal(err)
			}
			jsonBytes += int64(len(j))
			deviceJSON += int64(len(`,"device":""`) + len(c.Device))
		}
	})
	batches := pushBatches(sizes, syncclient.DefaultBatchBytes, syncclient.DefaultBatchCount, syncclient.DefaultWindow)

	var apply, raw time.Duration
	benchPhase("apply", func() { apply = benchApplyBatch(b, hr, batches, sizes) })
	benchPhase("raw", func() { raw = benchRawInserts(b, hr, batches) })

	rate := float64(n) / push.Seconds()
	wireB := float64(rep.BytesSent) / float64(n)
	jsonB := float64(jsonBytes) / float64(n)
	rawRate := float64(n) / raw.Seconds()
	applyRate := float64(n) / apply.Seconds()
	res.Add("backlog_push_s", fmt.Sprintf("push of a %d-change backlog, loopback wss, hub in a child process", n), push.Seconds(), "s")
	res.AddTarget("hub_ingest_changes_per_s", "hub ingest end to end (agent outbox read + wss + hub commit)", rate, "changes/s", ">=", 50000)
	res.Add("wire_bytes_per_change", "wire bytes per change (websocket payload, agent → hub)", wireB, "B")
	res.Add("tcp_bytes_per_change", "TCP bytes per change (TLS + websocket framing, agent → hub)", float64(tcpUp)/float64(n), "B")
	res.Add("json_bytes_per_change", "same changes as JSON objects", jsonB, "B")
	res.AddTarget("wire_json_ratio", "wire / JSON bytes", wireB/jsonB, "x", "<=", 0.5)
	res.Add("hub_peak_mib", "hub peak memory (VmHWM of the child process)", float64(peak)/(1<<20), "MiB")
	res.Add("raw_insert_changes_per_s", "raw SQLite inserts of the same rows (changes + records row per change, same settings and transactions)", rawRate, "changes/s")
	res.AddTarget("hub_ingest_vs_raw", "hub ingest end to end / raw inserts", rate/rawRate, "x", ">=", 0.5)
	res.Add("hub_apply_changes_per_s", "hub ApplyBatch alone, in-process, same batches", applyRate, "changes/s")
	res.Add("hub_apply_vs_raw", "hub ApplyBatch alone / raw inserts", applyRate/rawRate, "x")
	b.ReportMetric(rate, "changes/s")
	b.ReportMetric(wireB, "wireB/change")

	var ks []string
	for _, k := range domain.Kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	res.Note("backlog: %d records of fixture seed %d (%s), one change each; saved in the agent in %.1f s (not timed)",
		n, benchSeed, strings.Join(ks, ", "), saved.Seconds())
	res.Note("push: %d batches (at most %d changes or %d KiB each, %d in flight), %.1f changes per batch on average; TCP bytes hub → agent %d (%.1f per change)",
		len(batches), syncclient.DefaultBatchCount, syncclient.DefaultBatchBytes>>10, syncclient.DefaultWindow,
		float64(n)/float64(len(batches)), tcpDown, float64(tcpDown)/float64(n))
	res.Note("JSON: {kind, id, op, hlc, seq, device, fields: {name: value}} per change, values decoded from CBOR (16-byte ids as UUID text, "+
		"nested structs keep their CBOR integer keys); without the device id, which the push does not carry, %.1f B per change (ratio %.3f)",
		float64(jsonBytes-deviceJSON)/float64(n), float64(rep.BytesSent)/float64(jsonBytes-deviceJSON))
	res.Note("raw inserts: one prepared single-row INSERT per row (the hub uses multi-row INSERTs and reads the records first); "+
		"ApplyBatch: a fresh hub file, the changes decoded from the hub's log, %d batches as pushed", len(batches))
}

// backlogRecords returns exactly n valid records of a fixture: the
// smallest fixture with at least n records, cut at n. Activities come
// last and nothing refers to them, so the cut leaves every reference
// resolved.
//
// The consents come before the persons they are about: the hub refuses
// a person's identifying fields pushed before a consent it holds or that
// comes in the same batch (docs/PROTOCOL.md, "A change the hub refuses"),
// and with the fixture's own order (every person, then every consent) a
// tenth of the backlog would be refused and sent again. The benchmark
// measures the ingest of a backlog the hub takes whole; refusals and
// resends have their tests (internal/e2e/consent_test.go).
func backlogRecords(tb testing.TB, n int, seed uint64) []domain.Record {
	tb.Helper()
	acts := max(1, n/2)
	for range 64 {
		set := fixture.Generate(fixture.Options{N: acts, Seed: seed})
		recs := consentsFirst(set)
		if len(recs) >= n {
			if len(recs)-n > len(set.Activities) {
				tb.Fatalf("a fixture of %d activities has %d records: cannot cut to %d by dropping activities", acts, len(recs), n)
			}
			return recs[:n]
		}
		acts += max(1, (n-len(recs))/2)
	}
	tb.Fatalf("no fixture gives %d records", n)
	return nil
}

// consentsFirst returns the records of set in the order tour stops,
// consents, persons, assessments, activities: still every record after
// those it refers to but the consents, which the agent validates with
// their whole batch.
func consentsFirst(set *fixture.Set) []domain.Record {
	var out []domain.Record
	for _, r := range set.TourStops {
		out = append(out, r)
	}
	for _, r := range set.Consents {
		out = append(out, r)
	}
	for _, r := range set.Beneficiaries {
		out = append(out, r)
	}
	for _, r := range set.Assessments {
		out = append(out, r)
	}
	for _, r := range set.Activities {
		out = append(out, r)
	}
	return out
}

// pushBatches returns the number of changes of each Push the client sends
// for changes of the given wire sizes, following agent/syncclient/push.go:
// the outbox is read BatchCount×Window changes at a time, and a batch ends
// at BatchCount changes, before BatchBytes would be exceeded, or at the
// end of what was read.
func pushBatches(sizes []int, batchBytes, batchCount, window int) []int {
	var out []int
	chunk := batchCount * window
	for start := 0; start < len(sizes); start += chunk {
		buf := sizes[start:min(start+chunk, len(sizes))]
		for len(buf) > 0 {
			k, size := 0, 0
			for k < len(buf) && k < batchCount {
				if k > 0 && size+buf[k] > batchBytes {
					break
				}
				size += buf[k]
				k++
			}
			out = append(out, k)
			buf = buf[k:]
		}
	}
	return out
}

// hubRows is what the hub wrote for one device.
type hubRows struct {
	deviceNum int64
	deviceRow []any          // num, id, name, team, device_key, push_key, enrolled_at
	rows      []hubChangeRow // in hub order
	changes   []change.Change
	records   map[string][]any // by id: id, kind, team, origin, hlc, deleted, erased, state
}

type hubChangeRow struct {
	team                string
	device, dseq, op, h int64
	kind                string
	recordID, fields    []byte
}

func loadHubRows(tb testing.TB, path, device string) *hubRows {
	tb.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(path, true))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	hr := &hubRows{records: map[string][]any{}}
	var (
		num            int64
		id, name, team string
		dkey, pkey     []byte
		enrolled       int64
	)
	if err := db.QueryRow(`SELECT num, id, name, team, device_key, push_key, enrolled_at FROM devices WHERE id = ?`, device).
		Scan(&num, &id, &name, &team, &dkey, &pkey, &enrolled); err != nil {
		tb.Fatal(err)
	}
	hr.deviceNum, hr.deviceRow = num, []any{num, id, name, team, dkey, pkey, enrolled}
	rows, err := db.Query(`SELECT team, device, dseq, kind, record_id, op, hlc, fields FROM changes WHERE device = ? ORDER BY hseq`, num)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var r hubChangeRow
		if err := rows.Scan(&r.team, &r.device, &r.dseq, &r.kind, &r.recordID, &r.op, &r.h, &r.fields); err != nil {
			tb.Fatal(err)
		}
		f, err := wire.DecodeFields(r.fields)
		if err != nil {
			tb.Fatal(err)
		}
		c := change.Change{Kind: domain.Kind(r.kind), Op: change.Op(r.op), Fields: f, HLC: hlc.Timestamp(r.h), Device: device, Seq: uint64(r.dseq)}
		copy(c.ID[:], r.recordID)
		hr.rows = append(hr.rows, r)
		hr.changes = append(hr.changes, c)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	rows.Close()
	rows, err = db.Query(`SELECT id, kind, team, origin, hlc, deleted, erased, state FROM records WHERE origin = ?`, num)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rid, state             []byte
			kind, rteam            string
			origin, h, del, erased int64
		)
		if err := rows.Scan(&rid, &kind, &rteam, &origin, &h, &del, &erased, &state); err != nil {
			tb.Fatal(err)
		}
		hr.records[string(rid)] = []any{rid, kind, rteam, origin, h, del, erased, state}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return hr
}

// benchApplyBatch times the hub store's ApplyBatch alone on a fresh hub
// file, with the batches the client pushed.
func benchApplyBatch(b *testing.B, hr *hubRows, batches, sizes []int) time.Duration {
	ctx := context.Background()
	st, err := hubsqlite.Open(ctx, filepath.Join(b.TempDir(), hubcli.DBFile), hubsqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	token := make([]byte, 24)
	rand.Read(token)
	hash := sha256.Sum256(token)
	now := time.Now()
	if err := st.CreateEnrollment(ctx, hubstore.Enrollment{TokenHash: hash, Name: "bus-1", Team: "cd88", ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	device := hr.changes[0].Device
	if _, err := st.Enroll(ctx, hash, hubstore.Device{ID: device, DeviceKey: make([]byte, 32), PushKey: make([]byte, 32)}, now); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	t0 := time.Now()
	i := 0
	for _, k := range batches {
		size := 0
		for _, s := range sizes[i : i+k] {
			size += s
		}
		hwm, applied, err := st.ApplyBatch(ctx, device, hr.changes[i:i+k], size)
		if err != nil {
			b.Fatal(err)
		}
		i += k
		if applied != k || hwm != uint64(i) {
			b.Fatalf("ApplyBatch: applied %d of %d, hwm %d, want %d", applied, k, hwm, i)
		}
	}
	return time.Since(t0)
}

// benchRawInserts times inserting the hub's rows into a fresh file with
// the hub's schema and settings, one transaction per pushed batch, each
// change as its changes row and its record's row.
func benchRawInserts(b *testing.B, hr *hubRows, batches []int) time.Duration {
	ctx := context.Background()
	w, err := sqlitex.OpenWriter(filepath.Join(b.TempDir(), "raw.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	mig, err := hubsqlite.Migrations()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sqlitex.Migrate(ctx, w, mig); err != nil {
		b.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO devices(num, id, name, team, device_key, push_key, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		hr.deviceRow...); err != nil {
		b.Fatal(err)
	}
	insC, err := w.PrepareContext(ctx, `INSERT INTO changes(team, device, dseq, kind, record_id, op, hlc, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	defer insC.Close()
	insR, err := w.PrepareContext(ctx, `INSERT INTO records(id, kind, team, origin, hlc, deleted, erased, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	defer insR.Close()
	done := make(map[string]bool, len(hr.records))
	runtime.GC()
	t0 := time.Now()
	i := 0
	for _, k := range batches {
		err := func() error {
			tx, err := w.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			sc, sr := tx.StmtContext(ctx, insC), tx.StmtContext(ctx, insR)
			for _, r := range hr.rows[i : i+k] {
				if _, err := sc.ExecContext(ctx, r.team, r.device, r.dseq, r.kind, r.recordID, r.op, r.h, r.fields); err != nil {
					return err
				}
				if rec := hr.records[string(r.recordID)]; rec != nil && !done[string(r.recordID)] {
					done[string(r.recordID)] = true
					if _, err := sr.ExecContext(ctx, rec...); err != nil {
						return err
					}
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			b.Fatalf("raw insert: %v", err)
		}
		i += k
	}
	d := time.Since(t0)
	var nc, nr int
	if err := w.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM records)`).Scan(&nc, &nr); err != nil {
		b.Fatal(err)
	}
	if nc != len(hr.rows) || nr != len(hr.records) {
		b.Fatalf("raw inserts: %d changes and %d records, want %d and %d", nc, nr, len(hr.rows), len(hr.records))
	}
	return d
}

// jsonChange is a change as a JSON API would carry it.
type jsonChange struct {
	Kind   string         `json:"kind"`
	ID     string         `json:"id"`
	Op     string         `json:"op"`
	HLC    uint64         `json:"hlc"`
	Seq    uint64         `json:"seq"`
	Device string         `json:"device"`
	Fields map[string]any `json:"fields"`
}

// changeJSON encodes c as a JSON object with field names and decoded
// values.
func changeJSON(c *change.Change) ([]byte, error) {
	j := jsonChange{Kind: string(c.Kind), ID: c.ID.String(), Op: c.Op.String(), HLC: uint64(c.HLC), Seq: c.Seq,
		Device: c.Device, Fields: make(map[string]any, len(c.Fields))}
	for num, raw := range c.Fields {
		f, ok := domain.FieldByNum(c.Kind, num)
		if !ok {
			return nil, fmt.Errorf("%s has no field %d", c.Kind, num)
		}
		var v any
		if err := change.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s field %s: %w", c.Kind, f.Name, err)
		}
		j.Fields[f.Name] = jsonValue(v)
	}
	return json.Marshal(&j)
}

// jsonValue makes a decoded CBOR value encodable as JSON: maps get text
// keys, 16-byte strings (record ids) become UUID text.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonValue(e)
		}
		return m
	case []any:
		for i := range x {
			x[i] = jsonValue(x[i])
		}
		return x
	case []byte:
		if len(x) == len(ident.ID{}) {
			return ident.ID(x).String()
		}
	}
	return v
}

// benchSlowLink measures figure 3: a day of work synced over a slow link.
func benchSlowLink(b *testing.B, res *benchreport.Results) {
	ctx := context.Background()
	h := startHub(b)
	a := newAgent(b, h, "bus-2", "cd88", nil) // enrolled directly, not through the link
	recs := backlogRecords(b, slowRecords, benchSeed+1)
	a.save(b, recs...)
	kinds := map[domain.Kind]int{}
	for _, r := range recs {
		kinds[r.Kind()]++
	}
	var ks []string
	for _, k := range domain.Kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	link := startSlowLink(b, h.srv.Addr, slowRate, slowOneWay)
	a.cl.URL = "wss://" + link.addr() + "/sync"
	a.cl.AnswerTimeout = time.Minute
	a.cl.HandshakeTimeout = time.Minute
	t0 := time.Now()
	rep, err := a.cl.Sync(ctx)
	d := time.Since(t0)
	up, down := link.bytesUp(), link.bytesDown()
	if err != nil {
		b.Fatalf("sync over the slow link: %v\nhub log:\n%s", err, a.hubLog())
	}
	if rep.Pushed != slowRecords || rep.Pulled != 0 || rep.PendingAfter != 0 {
		b.Fatalf("sync over the slow link: %+v", rep)
	}
	if c, dd, hwm := hubCount(b, h, a.st.Device()); c != slowRecords || dd != slowRecords || hwm != slowRecords {
		b.Fatalf("hub holds %d changes (%d distinct), hwm %d; want %d", c, dd, hwm, slowRecords)
	}
	if link.conns.Load() != 1 {
		b.Fatalf("the sync opened %d connections through the link, want 1", link.conns.Load())
	}
	hr := loadHubRows(b, filepath.Join(h.dir, hubcli.DBFile), a.st.Device())
	sizes := make([]int, len(hr.changes))
	for i := range hr.changes {
		wc, err := wire.FromChange(&hr.changes[i])
		if err != nil {
			b.Fatal(err)
		}
		sizes[i] = wire.EncodedSize(&wc)
	}
	batches := pushBatches(sizes, syncclient.DefaultBatchBytes, syncclient.DefaultBatchCount, syncclient.DefaultWindow)
	// Round trips the protocol needs, each waiting for the other side:
	// TCP connect 1, TLS 1.3 handshake 1, websocket upgrade 1,
	// Hello→Challenge 1, Auth→Welcome 1, Push→Ack 1 per window of batches
	// in flight, Pull→Changes 1 (nothing to pull: one page).
	pushWindows := (len(batches) + syncclient.DefaultWindow - 1) / syncclient.DefaultWindow
	rts := 5 + pushWindows + 1
	// The floor: the busier direction's bytes at the link's rate (the
	// other direction overlapping entirely), plus every round trip's
	// propagation delay: floor = max(up, down)/rate + round trips × RTT.
	floor := float64(max(up, down))/slowRate + float64(rts)*slowRTT.Seconds()
	res.Add("slowlink_sync_s", fmt.Sprintf("a day of work (%d records) synced over 64 kbit/s each way, 600 ms RTT", slowRecords), d.Seconds(), "s")
	res.Add("slowlink_bytes_up", "bytes carried agent → hub (TCP payload)", float64(up), "B")
	res.Add("slowlink_bytes_down", "bytes carried hub → agent (TCP payload)", float64(down), "B")
	res.Add("slowlink_round_trips", "round trips the protocol needs (TCP, TLS, upgrade, hello, auth, push windows, pull)", float64(rts), "")
	res.Add("slowlink_floor_s", "floor = max(up, down) / 8000 B/s + round trips × 0.6 s", floor, "s")
	res.AddTarget("slowlink_vs_floor", "slow-link sync / floor", d.Seconds()/floor, "x", "<=", 1.5)
	res.Note("slow link: %s; %d batch(es); the measured time less (up+down)/rate is %.2f round trips of %v",
		strings.Join(ks, ", "), len(batches), (d.Seconds()-float64(up+down)/slowRate)/slowRTT.Seconds(), slowRTT)
}

// benchHub is a hub in a child process, so that its memory is its own.
type benchHub struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
}

func startHubChild(tb testing.TB, dir string) *benchHub {
	tb.Helper()
	p := &benchHub{cmd: child("hub", "serve", "--data", dir, "--listen", "127.0.0.1:0"), logs: &syncBuffer{}}
	p.cmd.Stderr = p.logs
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.kill)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			// "hub listening on ADDR — agents dial URL"
			if f := strings.Fields(sc.Text()); len(f) > 3 && strings.HasPrefix(sc.Text(), "hub listening on ") {
				addr <- f[3]
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			tb.Fatalf("hub child exited before listening:\n%s", p.logs.String())
		}
		p.addr = a
	case <-time.After(30 * time.Second):
		tb.Fatalf("hub child did not start:\n%s", p.logs.String())
	}
	return p
}

func (p *benchHub) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

// vmHWM returns the peak resident set size of a process, in bytes.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// The slow-link proxy delays every byte by its one-way delay and carries
// no more than its rate; the counting relay counts exactly.
func TestSlowLinkProxyThrottles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	echo := func(c net.Conn, msg []byte) time.Duration {
		t.Helper()
		got := make([]byte, len(msg))
		t0 := time.Now()
		errc := make(chan error, 1)
		go func() { _, err := c.Write(msg); errc <- err }()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		d := time.Since(t0)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("the echo came back altered or out of order")
		}
		return d
	}

	// Counting relay: no delay, exact counts.
	relay := startSlowLink(t, ln.Addr().String(), 0, 0)
	c, err := net.Dial("tcp", relay.addr())
	if err != nil {
		t.Fatal(err)
	}
	echo(c, bytes.Repeat([]byte("x"), 5000))
	c.Close()
	if relay.bytesUp() != 5000 || relay.bytesDown() != 5000 {
		t.Fatalf("relay counted %d up, %d down; want 5000 each", relay.bytesUp(), relay.bytesDown())
	}

	link := startSlowLink(t, ln.Addr().String(), slowRate, slowOneWay)
	c, err = net.Dial("tcp", link.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first message also waits for the simulated TCP handshake.
	if d := echo(c, []byte("bonjour")); d < slowRTT {
		t.Fatalf("a one-message echo took %v through a link of %v round trip", d, slowRTT)
	}
	// 16,000 bytes take 2 s each way at 8,000 B/s; the echo overlaps the
	// two directions, so it takes 2 s plus a round trip.
	big := make([]byte, 16000)
	rand.Read(big)
	if d := echo(c, big); d < 1900*time.Millisecond+slowRTT {
		t.Fatalf("16,000 bytes echoed in %v through a %d B/s link with %v round trip", d, slowRate, slowRTT)
	}
	if want := int64(16000 + len("bonjour")); link.bytesUp() != want || link.bytesDown() != want {
		t.Fatalf("link counted %d up, %d down; want %d each", link.bytesUp(), link.bytesDown(), want)
	}
}
