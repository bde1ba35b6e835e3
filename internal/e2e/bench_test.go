package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	agentcli "numeribus/agent/cli"
	"numeribus/agent/store"
	"numeribus/agent/syncclient"
	hubcli "numeribus/hub/cli"
	hubstore "numeribus/hub/store"
	hubsqlite "numeribus/hub/store/sqlite"
	"numeribus/internal/benchreport"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture/backlog"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/sqlitex"
	"numeribus/internal/wire"
)

// The sync benchmark of `make bench`:
//
//	go test ./internal/e2e -run '^$' -bench '^BenchmarkSync$' -benchtime 1x -timeout 20m
//
// It measures, once whatever b.N, each figure against the true limit of
// what it does, never against another figure of ours:
//
//  1. a backlog of N changes (NUMERIBUS_BENCH_N, default 100,000) of
//     realistic records pushed by a real agent process (`agent sync`, the
//     agent's CLI in a child process, its store made with the production
//     key derivation) to a hub in another child process over loopback wss:
//     time, rate, the agent's and the hub's peak memory (VmHWM, the
//     kernel's resident high-water mark of each process) and CPU time,
//     bytes per change on the wire against the same changes as JSON;
//  2. the limit of the hub's part: the fastest insert SQLite allows of
//     the rows the hub wrote (its changes, records and consent rows), same
//     schema, same pragmas — single-row and multi-row statements, one
//     transaction per pushed batch and one for everything; and the hub's
//     ApplyBatch alone on the same batches, in-process;
//  3. a day of work (50 records), a no-op sync and a week away (1,000
//     records) synced over a simulated 64 kbit/s link with 600 ms of
//     round trip, against the physical floor: the changes' bytes
//     (deflated, when that is fewer) at the link's rate plus one round
//     trip, and plus three (TCP, TLS and one exchange)
//     (bench_slowlink_test.go).
//
// NUMERIBUS_BENCH_ONLY=backlog or =slowlink runs one phase alone (1 and 2,
// or 3).
//
// It prints a table (figure, value, unit, target, met) and writes the
// figures as JSON, in the shape of agent/agentbench, to
// NUMERIBUS_BENCH_SYNC_OUT (default <module root>/.bench/sync.json). It
// reports targets; it fails only on functional errors.

const (
	benchSeed = 1
	// benchRuns is how many times the in-process figures (the hub's
	// ApplyBatch, each raw insert) are timed; the best is kept.
	benchRuns = 3
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
	if benchOnly("backlog") {
		benchBacklog(b, n, res)
	}
	if benchOnly("slowlink") {
		benchPhase("slowlink", func() { benchSlowLink(b, res) })
	}

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
// go tool pprof -tagfocus phase=apply. Goroutines started inside inherit
// the label. The push runs in child processes, outside the profile.
func benchPhase(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("phase", name), func(context.Context) { f() })
}

// agentPush is what a run of `agent sync` in a child process measured.
type agentPush struct {
	sync    time.Duration // the round as the agent reports it: connect, push, pull, retention
	sent    time.Duration // its push: from the round's start to the hub's ack of the last change
	wall    time.Duration // the process, from start to exit (open, unlock, round, close)
	cpu     time.Duration // the process's user + system time
	peak    int64         // its resident high-water mark (VmHWM), bytes
	pushed  int
	pending int
}

// measuredAgent is the child role of runAgentSync: the agent's CLI, then
// its own resident high-water mark on stdout. The child reads it itself:
// the kernel's maxrss of a child (wait4) starts from its parent's
// high-water mark — the test process, which held the whole backlog — as
// Go starts children sharing its memory until they exec; VmHWM counts
// the agent's own memory only, from its exec.
const measuredAgent = "agent-measured"

func init() {
	if os.Getenv("E2E_CHILD") != measuredAgent {
		return
	}
	args := strings.Split(os.Getenv("E2E_ARGS"), "\x1f")
	stopProfile := startAgentProfile()
	code := agentcli.Main(context.Background(), args, agentcli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stopProfile()
	hwm, err := vmHWM(os.Getpid())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("VmHWM %d\n", hwm)
	os.Exit(code)
}

// runAgentSync runs `agent sync --data dir` in a child process and reads
// what it did from its output and from the kernel's accounting of it.
func runAgentSync(tb testing.TB, dir string) agentPush {
	tb.Helper()
	cmd := child(measuredAgent, "sync", "--data", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	p := agentPush{wall: time.Since(t0)}
	if err != nil {
		tb.Fatalf("agent sync: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		tb.Fatal("no resource usage for the agent process")
	}
	p.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	hwm := regexp.MustCompile(`(?m)^VmHWM (\d+)$`).FindStringSubmatch(stdout.String())
	if hwm == nil {
		tb.Fatalf("agent sync: no VmHWM in its output:\n%s", stdout.String())
	}
	p.peak, _ = strconv.ParseInt(hwm[1], 10, 64)
	// « Synchronisé en 7.282s : 100000 modification(s) envoyée(s), 0 reçue(s), 0 en attente. »
	m := regexp.MustCompile(`Synchronisé en (\S+) : (\d+) modification\(s\) envoyée\(s\), (\d+) reçue\(s\), (\d+) en attente`).
		FindStringSubmatch(stdout.String())
	if m == nil {
		tb.Fatalf("agent sync: unexpected output:\n%s", stdout.String())
	}
	if p.sync, err = time.ParseDuration(m[1]); err != nil {
		tb.Fatalf("agent sync: duration %q: %v", m[1], err)
	}
	p.pushed, _ = strconv.Atoi(m[2])
	p.pending, _ = strconv.Atoi(m[4])
	// « … Envoi au hub terminé en 1.62s. »
	if m := regexp.MustCompile(`Envoi au hub terminé en (\S+)\.`).FindStringSubmatch(stdout.String()); m == nil {
		tb.Fatalf("agent sync: no push time in its output:\n%s", stdout.String())
	} else if p.sent, err = time.ParseDuration(m[1]); err != nil {
		tb.Fatalf("agent sync: push time %q: %v", m[1], err)
	}
	return p
}

// procCPU returns the user + system time a running process has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses:
	// state is field 3, utime 14 and stime 15 (proc(5)).
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}

// benchBacklog measures figures 1 and 2: the N-change push of a real
// agent process to a child hub, then raw inserts and ApplyBatch of the
// same rows.
func benchBacklog(b *testing.B, n int, res *benchreport.Results) {
	ctx := context.Background()
	recs := backlogRecords(b, n, benchSeed)
	kinds := map[domain.Kind]int{}
	for _, r := range recs {
		kinds[r.Kind()]++
	}

	dir := b.TempDir()
	hp := startHubChild(b, dir, "agent")
	h := &testHub{t: b, dir: dir}
	// A counting relay (no delay) in front of the hub gives the TCP bytes;
	// the agent is enrolled with its address.
	relay := startSlowLink(b, hp.addr, 0, 0)
	code, out := h.cli(b, "enroll", "--device", "bus-1", "--team", "cd88", "--url", "wss://"+relay.addr()+"/sync", "--json")
	if code != 0 {
		b.Fatalf("hub enroll: %d %s", code, out)
	}
	var ec struct{ Code string }
	if err := json.Unmarshal([]byte(out), &ec); err != nil || ec.Code == "" {
		b.Fatalf("enroll output %q: %v", out, err)
	}
	// The agent's store, made as `agent init` makes it (the production
	// Argon2id costs: its unlock is part of the process measured), filled
	// in this process, then closed.
	adir := filepath.Join(b.TempDir(), "bus-1")
	st, _, err := store.Create(ctx, adir, []byte(pass), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cl := &syncclient.Client{Store: st, Version: "bench"}
	if _, err := cl.Enroll(ctx, ec.Code); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	benchPhase("save", func() {
		if _, err = st.Save(ctx, recs...); err != nil {
			b.Fatal(err)
		}
	}) // not timed
	saved := time.Since(t0)
	recs = nil
	device := st.Device()
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	runtime.GC()

	up0, down0 := relay.bytesUp(), relay.bytesDown()
	hubCPU0, err := procCPU(hp.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	ap := runAgentSync(b, adir)
	hubCPU, err := procCPU(hp.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	hubCPU -= hubCPU0
	if ap.pushed != n || ap.pending != 0 {
		b.Fatalf("sync of the backlog: %d pushed, %d pending; want %d pushed, 0 pending\nhub log:\n%s", ap.pushed, ap.pending, n, hp.logs.String())
	}
	changes, distinct, hwm := hubCount(b, h, device)
	if changes != n || distinct != n || hwm != n {
		b.Fatalf("hub holds %d changes (%d distinct), hwm %d; want exactly %d", changes, distinct, hwm, n)
	}
	hubPeak, err := vmHWM(hp.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	hp.stop(b)
	tcpUp, tcpDown := relay.bytesUp()-up0, relay.bytesDown()-down0

	// What the hub wrote, read back after the push.
	hr := loadHubRows(b, filepath.Join(dir, hubcli.DBFile), device)
	if len(hr.changes) != n {
		b.Fatalf("read %d changes back from the hub, want %d", len(hr.changes), n)
	}
	sizes := make([]int, n)
	var jsonBytes, changeBytes int64
	benchPhase("json", func() {
		for i := range hr.changes {
			c := &hr.changes[i]
			wc, err := wire.FromChange(c)
			if err != nil {
				b.Fatal(err)
			}
			sizes[i] = wire.EncodedSize(&wc)
			changeBytes += int64(sizes[i])
			j, err := changeJSON(c)
			if err != nil {
				b.Fatal(err)
			}
			jsonBytes += int64(len(j))
		}
	})
	batches := pushBatches(sizes, syncclient.DefaultBatchBytes, syncclient.DefaultBatchCount)

	// The hub's store alone and the raw inserts are timed benchRuns times
	// each, in turns (a busy spell of a shared machine then weighs on
	// both sides), the best run kept: a limit is what the machine can do,
	// and noise only ever slows a run down.
	apply, turn, turnRead, alone := worst, worst, worst, worst
	raws := rawVariants(hr, batches)
	frames := pushFrames(b, hr, batches)
	for range benchRuns {
		benchPhase("alone", func() {
			a := benchHubAlone(b, hr, batches, device, "cd88", syncclient.DefaultWindow)
			alone = alone.best(timing{a.wall, a.cpu})
		})
		benchPhase("apply", func() { apply = apply.best(benchApplyBatch(b, hr, batches, sizes, false, nil)) })
		benchPhase("turn", func() { turn = turn.best(benchApplyBatch(b, hr, batches, sizes, true, nil)) })
		benchPhase("turn+read", func() { turnRead = turnRead.best(benchApplyBatch(b, hr, batches, sizes, true, frames)) })
		benchPhase("raw", func() {
			for i := range raws {
				raws[i].t = raws[i].t.best(rawInsert(b, hr, raws[i].txs, raws[i].rows))
			}
		})
	}
	fastest := raws[0]
	for _, r := range raws[1:] {
		if r.t.wall < fastest.t.wall {
			fastest = r
		}
	}

	rate := float64(n) / ap.sent.Seconds()
	wireB := float64(hr.bytesReceived) / float64(n)
	jsonB := float64(jsonBytes) / float64(n)
	rawRate := float64(n) / fastest.t.wall.Seconds()
	applyRate := float64(n) / apply.wall.Seconds()
	perChange := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	res.Add("backlog_push_s", fmt.Sprintf("push of a %d-change backlog by `agent sync` (its round: connect, push, pull, and the store's first daily retention purge, due on a store never purged), loopback wss, hub in a child process", n), ap.sync.Seconds(), "s")
	res.Add("agent_process_s", "the agent process, start to exit (open, unlock with Argon2id, round, close)", ap.wall.Seconds(), "s")
	res.Add("backlog_sent_s", "the push's part of that round, as the agent reports it: from the round's start (connection included) to the hub's ack of the last change", ap.sent.Seconds(), "s")
	res.AddTarget("hub_ingest_changes_per_s", "hub ingest end to end: the changes / the push's part of the round (agent process's outbox read + wss + hub commit; the pull and the purge after it left out)", rate, "changes/s", ">=", 50000)
	res.AddTarget("agent_peak_mib", "agent peak memory (VmHWM of the `agent sync` process: open, unlock, push, pull)", float64(ap.peak)/(1<<20), "MiB", "<=", 100)
	res.Add("hub_peak_mib", "hub peak memory (VmHWM of the child process)", float64(hubPeak)/(1<<20), "MiB")
	res.Add("agent_cpu_us_per_change", "agent process CPU time (user + system) per change, unlock included", float64(ap.cpu.Microseconds())/float64(n), "µs")
	res.Add("hub_cpu_us_per_change", "hub process CPU time (user + system) per change during the push", float64(hubCPU.Microseconds())/float64(n), "µs")
	res.Add("wire_bytes_per_change", "wire bytes per change (websocket payload of the Push frames, as the hub counted them)", wireB, "B")
	res.Add("tcp_bytes_per_change", "TCP bytes per change (TLS + websocket framing + handshake, agent → hub)", float64(tcpUp)/float64(n), "B")
	res.Add("json_bytes_per_change", "the same changes as JSON objects (what the push carries, nothing more)", jsonB, "B")
	res.AddTarget("wire_json_ratio", "wire / JSON bytes, compression included (issue #13: ≤ 0.45)", wireB/jsonB, "x", "<=", 0.45)
	for _, r := range raws {
		res.Add("raw_insert_"+r.name+"_changes_per_s", fmt.Sprintf("raw SQLite insert of the same rows: %s (best of %d)", r.label, benchRuns), float64(n)/r.t.wall.Seconds(), "changes/s")
	}
	res.Add("raw_insert_changes_per_s", "raw SQLite insert of the same rows, the fastest above ("+fastest.name+"): the limit", rawRate, "changes/s")
	res.AddTarget("hub_ingest_vs_raw", "hub ingest end to end / the fastest raw insert", rate/rawRate, "x", ">=", 0.8)
	aloneRate := float64(n) / alone.wall.Seconds()
	res.AddTarget("hub_alone_changes_per_s", fmt.Sprintf("hub alone: `hub serve` child fed the same Push frames, encoded and deflated (BestSpeed, as the agent on a fast link) beforehand, by a light sender over loopback wss (%d in flight), first frame to last ack (best of %d)",
		syncclient.DefaultWindow, benchRuns), aloneRate, "changes/s", ">=", 50000)
	res.AddTarget("hub_alone_vs_raw", "hub alone / the fastest raw insert", aloneRate/rawRate, "x", ">=", 0.8)
	res.Add("hub_alone_cpu_us_per_change", "hub process CPU time (user + system) per change, fed alone (least of its runs)", perChange(alone.cpu), "µs")
	res.Add("hub_apply_changes_per_s", fmt.Sprintf("hub ApplyBatch alone, in-process, same batches (best of %d)", benchRuns), applyRate, "changes/s")
	res.AddTarget("hub_apply_vs_raw", "hub ApplyBatch alone / the fastest raw insert", applyRate/rawRate, "x", ">=", 0.8)
	turnRate := float64(n) / turn.wall.Seconds()
	res.Add("hub_turn_changes_per_s", fmt.Sprintf("the writer's turn alone: ApplyPrepared in-process, each batch prepared before the clock as the reader prepares it (best of %d)", benchRuns), turnRate, "changes/s")
	res.Add("hub_turn_vs_raw", "the writer's turn alone / the fastest raw insert: what the hub's serial part costs beside the limit (hub alone is below it by what the reader's work beside it takes from the writer)", turnRate/rawRate, "x")
	res.Add("hub_turn_read_vs_raw", "the writer's turn with the reader's work beside it: the same, in-process, each batch's frame inflated, decoded, checked and prepared on the other core while the writer applies the batch before (no TLS, no consent look-up), / the fastest raw insert", float64(n)/turnRead.wall.Seconds()/rawRate, "x")
	res.Add("raw_insert_cpu_us_per_change", "CPU time per change of the fastest raw insert (least of its runs)", perChange(fastest.t.cpu), "µs")
	res.Add("hub_apply_cpu_us_per_change", "CPU time per change of ApplyBatch alone, its checkpoints included (least of its runs)", perChange(apply.cpu), "µs")
	res.Add("hub_apply_cpu_vs_raw", "raw insert CPU / ApplyBatch CPU: the same ratio in CPU time, which a busy machine inflates less", float64(fastest.t.cpu)/float64(apply.cpu), "x")
	b.ReportMetric(rate, "changes/s")
	b.ReportMetric(wireB, "wireB/change")

	var ks []string
	for _, k := range domain.Kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	res.Note("backlog: %d records of fixture seed %d (%s), one change each, consents before their persons; saved in the agent in %.1f s (not timed)",
		n, benchSeed, strings.Join(ks, ", "), saved.Seconds())
	res.Note("push: %d batches (at most %d changes or %d KiB each, %d in flight), %.1f changes per batch on average; the changes alone %.1f B each; TCP bytes hub → agent %d (%.1f per change)",
		len(batches), syncclient.DefaultBatchCount, syncclient.DefaultBatchBytes>>10, syncclient.DefaultWindow,
		float64(n)/float64(len(batches)), float64(changeBytes)/float64(n), tcpDown, float64(tcpDown)/float64(n))
	res.Note("JSON: {kind, id, op, hlc, seq, fields: {name: value}} per change — what a Push carries of it —, values decoded from CBOR (16-byte ids as UUID text, " +
		"nested structs keep their CBOR integer keys)")
	res.Note("raw inserts: the hub's rows (%d changes, %d records, %d consent persons) into a fresh file with the hub's schema (less its triggers) and pragmas, "+
		"prepared statements, the WAL never checkpointed while timed; the device row and its mark left out. "+
		"ApplyBatch: a fresh hub file, the changes decoded from the hub's log, %d batches as pushed",
		len(hr.rows), len(hr.records), len(hr.consents), len(batches))
}

// backlogRecords returns exactly n valid records of a fixture of seed,
// consents before the persons they are about (backlog.Records).
func backlogRecords(tb testing.TB, n int, seed uint64) []domain.Record {
	tb.Helper()
	recs, err := backlog.Records(n, seed)
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

// pushBatches returns the number of changes of each Push the client sends
// for changes of the given wire sizes, following agent/syncclient/push.go:
// a batch ends at batchCount changes or before batchBytes would be
// exceeded (a first change larger than that goes alone).
func pushBatches(sizes []int, batchBytes, batchCount int) []int {
	var out []int
	for len(sizes) > 0 {
		k, size := 0, 0
		for k < len(sizes) && k < batchCount {
			if k > 0 && size+sizes[k] > batchBytes {
				break
			}
			size += sizes[k]
			k++
		}
		out = append(out, k)
		sizes = sizes[k:]
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
	consents  map[string][]any // consent_subjects by consent id: id, team, beneficiary
	// bytesReceived is the hub's count of the device's Push frame bytes.
	bytesReceived int64
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
	hr := &hubRows{records: map[string][]any{}, consents: map[string][]any{}}
	var (
		num            int64
		id, name, team string
		dkey, pkey     []byte
		enrolled       int64
	)
	if err := db.QueryRow(`SELECT num, id, name, team, device_key, push_key, enrolled_at, bytes_received FROM devices WHERE id = ?`, device).
		Scan(&num, &id, &name, &team, &dkey, &pkey, &enrolled, &hr.bytesReceived); err != nil {
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
	rows.Close()
	rows, err = db.Query(`SELECT cs.id, cs.team, cs.beneficiary FROM consent_subjects cs JOIN records r ON r.id = cs.id WHERE r.origin = ?`, num)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			cid, ben []byte
			cteam    string
		)
		if err := rows.Scan(&cid, &cteam, &ben); err != nil {
			tb.Fatal(err)
		}
		hr.consents[string(cid)] = []any{cid, cteam, ben}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return hr
}

// benchApplyBatch times the hub store's ApplyBatch alone on a fresh hub
// file, with the batches the client pushed. prepared, it times the
// writer's turn alone: each batch prepared before the clock starts
// (store.Preparer, as the connection's reader prepares it beside the
// writer), then ApplyPrepared.
func benchApplyBatch(b *testing.B, hr *hubRows, batches, sizes []int, prepared bool, beside [][]byte) timing {
	ctx := context.Background()
	dir := b.TempDir()
	defer os.RemoveAll(dir) // each run's file goes at once: the runs add up to gigabytes
	st, err := hubsqlite.Open(ctx, filepath.Join(dir, hubcli.DBFile), hubsqlite.Options{})
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
	preps := make([]hubstore.Prepared, len(batches))
	if prepared {
		i := 0
		for j, k := range batches {
			if preps[j] = st.PrepareBatch(device, "cd88", hr.changes[i:i+k]); preps[j] == nil {
				b.Fatalf("batch %d not prepared", j+1)
			}
			i += k
		}
	}
	// beside: the reader's work on the next batch's frame while the
	// writer applies this one, as a hub's connection pipelines them
	// (the writer waits for it when it is slower).
	var next chan int
	read := make(chan error, 1)
	if beside != nil {
		next = make(chan int, 1)
		defer close(next)
		go func() {
			for j := range next {
				read <- readLike(st, device, "cd88", beside[j])
			}
		}()
	}
	runtime.GC()
	t0 := start()
	i := 0
	for j, k := range batches {
		if next != nil {
			if j > 0 {
				if err := <-read; err != nil {
					b.Fatal(err)
				}
			}
			if j+1 < len(batches) {
				next <- j + 1
			}
		}
		size := 0
		for _, s := range sizes[i : i+k] {
			size += s
		}
		var (
			hwm     uint64
			applied int
			err     error
		)
		if prepared {
			hwm, applied, err = st.ApplyPrepared(ctx, device, hr.changes[i:i+k], preps[j], size)
		} else {
			hwm, applied, err = st.ApplyBatch(ctx, device, hr.changes[i:i+k], size)
		}
		if err != nil {
			b.Fatal(err)
		}
		i += k
		if applied != k || hwm != uint64(i) {
			b.Fatalf("ApplyBatch: applied %d of %d, hwm %d, want %d", applied, k, hwm, i)
		}
	}
	return t0.since()
}

// timing is what a timed run took: wall-clock time, and the CPU time of
// this process (every thread: SQLite's checkpoints on their connection
// too).
type timing struct{ wall, cpu time.Duration }

// worst is the timing any run betters.
var worst = timing{math.MaxInt64, math.MaxInt64}

// best keeps the least of each of t's and u's times.
func (t timing) best(u timing) timing { return timing{min(t.wall, u.wall), min(t.cpu, u.cpu)} }

// clock is the start of a timed run.
type clock struct {
	wall time.Time
	cpu  time.Duration
}

func start() clock { return clock{time.Now(), selfCPU()} }

func (c clock) since() timing { return timing{time.Since(c.wall), selfCPU() - c.cpu} }

// selfCPU returns the user + system time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawRun is one way of inserting the hub's rows, and its best timing.
type rawRun struct {
	name, label string
	txs         []int // changes per transaction
	rows        int   // rows per statement
	t           timing
}

// rawVariants are the ways SQLite offers of inserting the rows the hub
// wrote — each change's changes row, its record's row where the record is
// new, the consent_subjects row of a new consent — into a fresh file with
// the hub's schema and pragmas: single-row prepared statements or
// multi-row ones, one transaction per pushed batch or one for all. The
// fastest is the limit the hub's ingest is measured against.
func rawVariants(hr *hubRows, batches []int) []rawRun {
	all := []int{len(hr.rows)}
	return []rawRun{
		{"single_batch_tx", "single-row INSERTs, one transaction per pushed batch", batches, 1, worst},
		{"multi64_batch_tx", "64-row INSERTs, one transaction per pushed batch", batches, 64, worst},
		{"multi512_batch_tx", "512-row INSERTs, one transaction per pushed batch", batches, 512, worst},
		{"multi64_one_tx", "64-row INSERTs, one transaction for all", all, 64, worst},
		{"multi512_one_tx", "512-row INSERTs, one transaction for all", all, 512, worst},
	}
}

// rawInsert inserts hr's rows into a fresh hub file, one transaction per
// entry of txs (that many changes each), with statements of up to
// perStmt rows, and returns the time from the first BEGIN to the last
// COMMIT.
func rawInsert(b *testing.B, hr *hubRows, txs []int, perStmt int) timing {
	ctx := context.Background()
	dir := b.TempDir()
	defer os.RemoveAll(dir)
	w, err := sqlitex.OpenWriter(filepath.Join(dir, "raw.db"))
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
	// The rows alone: the schema's triggers (the consent counter's) are
	// the hub's own work, which the limit does not pay.
	if err := dropTriggers(ctx, w); err != nil {
		b.Fatal(err)
	}
	// No checkpoint while timed: the hub runs its own on another
	// connection, and the limit should not pay for one either.
	if _, err := w.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		b.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO devices(num, id, name, team, device_key, push_key, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		hr.deviceRow...); err != nil {
		b.Fatal(err)
	}
	insC := newRawStmts(b, w, `INSERT INTO changes(team, device, dseq, kind, record_id, op, hlc, fields) VALUES `, 8, perStmt)
	defer insC.close()
	insR := newRawStmts(b, w, `INSERT INTO records(id, kind, team, origin, hlc, deleted, erased, state) VALUES `, 8, perStmt)
	defer insR.close()
	insS := newRawStmts(b, w, `INSERT INTO consent_subjects(id, team, beneficiary) VALUES `, 3, perStmt)
	defer insS.close()
	// The arguments of every transaction, built before the clock starts.
	type txArgs struct{ changes, records, consents []any }
	all := make([]txArgs, 0, len(txs))
	done := make(map[string]bool, len(hr.records))
	i := 0
	for _, k := range txs {
		var a txArgs
		for _, r := range hr.rows[i : i+k] {
			a.changes = append(a.changes, r.team, r.device, r.dseq, r.kind, r.recordID, r.op, r.h, r.fields)
			id := string(r.recordID)
			if rec := hr.records[id]; rec != nil && !done[id] {
				done[id] = true
				a.records = append(a.records, rec...)
				if cs := hr.consents[id]; cs != nil {
					a.consents = append(a.consents, cs...)
				}
			}
		}
		all = append(all, a)
		insC.prepare(a.changes)
		insR.prepare(a.records)
		insS.prepare(a.consents)
		i += k
	}
	runtime.GC()
	t0 := start()
	for _, a := range all {
		err := func() error {
			tx, err := w.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			for _, ins := range []struct {
				st   *rawStmts
				args []any
			}{{insC, a.changes}, {insR, a.records}, {insS, a.consents}} {
				if err := ins.st.exec(ctx, tx, ins.args); err != nil {
					return err
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			b.Fatalf("raw insert: %v", err)
		}
	}
	d := t0.since()
	var nc, nr, ns int
	if err := w.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM records), (SELECT count(*) FROM consent_subjects)`).
		Scan(&nc, &nr, &ns); err != nil {
		b.Fatal(err)
	}
	if nc != len(hr.rows) || nr != len(hr.records) || ns != len(hr.consents) {
		b.Fatalf("raw inserts: %d changes, %d records, %d consents; want %d, %d, %d", nc, nr, ns, len(hr.rows), len(hr.records), len(hr.consents))
	}
	return d
}

// dropTriggers drops every trigger of the database db.
func dropTriggers(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'trigger'`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := db.ExecContext(ctx, `DROP TRIGGER "`+n+`"`); err != nil {
			return err
		}
	}
	return nil
}

// rawStmts is an INSERT of up to perStmt rows, prepared for every row
// count it is run with.
type rawStmts struct {
	tb      testing.TB
	db      *sql.DB
	head    string
	cols    int
	perStmt int
	byRows  map[int]*sql.Stmt
}

func newRawStmts(tb testing.TB, db *sql.DB, head string, cols, perStmt int) *rawStmts {
	return &rawStmts{tb: tb, db: db, head: head, cols: cols, perStmt: perStmt, byRows: map[int]*sql.Stmt{}}
}

// prepare prepares, before the clock starts, the statements exec will
// run for args.
func (r *rawStmts) prepare(args []any) {
	for rows := len(args) / r.cols; rows > 0; rows -= min(r.perStmt, rows) {
		r.stmt(min(r.perStmt, rows))
	}
}

// stmt returns the statement for n rows, prepared on first use.
func (r *rawStmts) stmt(n int) *sql.Stmt {
	if st := r.byRows[n]; st != nil {
		return st
	}
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", r.cols), ", ") + ")"
	st, err := r.db.Prepare(r.head + strings.TrimSuffix(strings.Repeat(group+", ", n), ", "))
	if err != nil {
		r.tb.Fatal(err)
	}
	r.byRows[n] = st
	return st
}

// exec inserts the rows of args (cols values each), perStmt at a time.
func (r *rawStmts) exec(ctx context.Context, tx *sql.Tx, args []any) error {
	for len(args) > 0 {
		n := min(r.perStmt, len(args)/r.cols)
		st := tx.StmtContext(ctx, r.stmt(n))
		_, err := st.ExecContext(ctx, args[:n*r.cols]...)
		st.Close()
		if err != nil {
			return err
		}
		args = args[n*r.cols:]
	}
	return nil
}

func (r *rawStmts) close() {
	for _, st := range r.byRows {
		st.Close()
	}
}

// jsonChange is a change as a JSON API would carry it.
type jsonChange struct {
	Kind   string         `json:"kind"`
	ID     string         `json:"id"`
	Op     string         `json:"op"`
	HLC    uint64         `json:"hlc"`
	Seq    uint64         `json:"seq"`
	Fields map[string]any `json:"fields"`
}

// changeJSON encodes c as a JSON object with field names and decoded
// values: what a Push carries of it (no device: the connection says
// which device pushes).
func changeJSON(c *change.Change) ([]byte, error) {
	j := jsonChange{Kind: string(c.Kind), ID: c.ID.String(), Op: c.Op.String(), HLC: uint64(c.HLC), Seq: c.Seq,
		Fields: make(map[string]any, len(c.Fields))}
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

// benchHub is a hub in a child process, so that its memory is its own.
type benchHub struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
}

// startHubChild starts `hub serve --data dir` in a child process
// (measuredHub); name names its CPU profile, when one is asked for.
func startHubChild(tb testing.TB, dir, name string) *benchHub {
	tb.Helper()
	p := &benchHub{cmd: child(measuredHub, "serve", "--data", dir, "--listen", "127.0.0.1:0"), logs: &syncBuffer{}}
	if prof := hubProfilePath(name); prof != "" {
		p.cmd.Env = append(p.cmd.Env, hubProfileEnv+"="+prof)
	} else {
		p.cmd.Env = append(p.cmd.Env, hubProfileEnv+"=")
	}
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
			// "hub à l'écoute sur ADRESSE — les agents se connectent à URL"
			if f := strings.Fields(sc.Text()); len(f) > 4 && strings.HasPrefix(sc.Text(), "hub à l'écoute sur ") {
				addr <- f[4]
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
