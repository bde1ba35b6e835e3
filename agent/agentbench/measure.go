package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"numeribus/internal/benchreport"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"numeribus/agent/importer"
	"numeribus/agent/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/jsonl"
	"numeribus/internal/merge"
	"numeribus/internal/sqlitex"
	"numeribus/schema"
)

// passphrase of the benchmark stores.
const passphrase = "banc-d-essai-numeribus"

// fixtureFor generates the smallest fixture set (found by growing the
// number of activities) for which count reaches want, so that cutting the
// extra records off the end drops only activities, which nothing refers
// to; the kinds keep the fixture's proportions.
func fixtureFor(want int, seed uint64, count func(*fixture.Set) int) (*fixture.Set, error) {
	acts := max(1, want/2)
	for range 64 {
		set := fixture.Generate(fixture.Options{N: acts, Seed: seed})
		got := count(set)
		if got >= want {
			if got-want > len(set.Activities) {
				return nil, fmt.Errorf("fixture of %d activities gives %d records: cannot cut to %d by dropping activities", acts, got, want)
			}
			return set, nil
		}
		acts += max(1, (want-got)/2)
	}
	return nil, fmt.Errorf("no fixture gives %d records", want)
}

// saveUnits orders a fixture set into what the UI saves one transaction at
// a time: every record alone, except an identified beneficiary, saved with
// the consents that allow its identity (it cannot be valid without them).
// Records come after what they refer to. At most max units are returned;
// the cut drops activities, which nothing refers to.
func saveUnits(set *fixture.Set, max int) [][]domain.Record {
	consents := map[ident.ID][]*domain.Consent{}
	for _, c := range set.Consents {
		consents[c.Beneficiaire] = append(consents[c.Beneficiaire], c)
	}
	used := map[ident.ID]bool{}
	var units [][]domain.Record
	for _, r := range set.TourStops {
		units = append(units, []domain.Record{r})
	}
	for _, b := range set.Beneficiaries {
		u := []domain.Record{b}
		if b.Identified() {
			for _, c := range consents[b.ID] {
				u = append(u, c)
				used[c.ID] = true
			}
		}
		units = append(units, u)
	}
	for _, c := range set.Consents {
		if !used[c.ID] {
			units = append(units, []domain.Record{c})
		}
	}
	for _, r := range set.Assessments {
		units = append(units, []domain.Record{r})
	}
	for _, r := range set.Activities {
		units = append(units, []domain.Record{r})
	}
	if len(units) > max {
		units = units[:max]
	}
	return units
}

// plainRow is what the store writes for a new record, before sealing: the
// CBOR merge state (records.body) and the CBOR fields of its first change
// (changes.body).
type plainRow struct {
	id           ident.ID
	kind         domain.Kind
	state, delta []byte
}

func plainRowOf(r domain.Record, device string, ts hlc.Timestamp) (plainRow, error) {
	r.Normalize()
	f, err := change.Encode(r)
	if err != nil {
		return plainRow{}, err
	}
	delta, err := change.Marshal(f)
	if err != nil {
		return plainRow{}, err
	}
	st := merge.NewState()
	merge.Apply(st, r.Kind(), &change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f, HLC: ts, Device: device})
	state, err := st.Marshal()
	if err != nil {
		return plainRow{}, err
	}
	return plainRow{id: r.RecordID(), kind: r.Kind(), state: state, delta: delta}, nil
}

// benchSaves times single-transaction saves through the store (sealed)
// and the same rows inserted into the same schema without the store.
func benchSaves(ctx context.Context, c config, dir string, res *benchreport.Results) error {
	set, err := fixtureFor(c.saves, c.seed, func(s *fixture.Set) int { return len(saveUnits(s, math.MaxInt)) })
	if err != nil {
		return err
	}
	units := saveUnits(set, c.saves)
	multi := 0
	device := ident.New().String()
	ts := hlc.FromTime(time.Now())
	plain := make([][]plainRow, len(units))
	for i, u := range units {
		if len(u) > 1 {
			multi++
		}
		for _, r := range u {
			ts++
			row, err := plainRowOf(r, device, ts)
			if err != nil {
				return err
			}
			plain[i] = append(plain[i], row)
		}
	}

	// Through the store: one Save per unit, as the UI does.
	s, _, err := store.Create(ctx, filepath.Join(dir, "sealed"), []byte(passphrase), store.Options{})
	if err != nil {
		return err
	}
	sealed := make([]time.Duration, len(units))
	runtime.GC()
	for i, u := range units {
		t0 := time.Now()
		_, err := s.Save(ctx, u...)
		sealed[i] = time.Since(t0)
		if err != nil {
			s.Close()
			return fmt.Errorf("save %d (%s): %w", i, u[0].Kind(), err)
		}
	}
	if err := s.Close(); err != nil {
		return err
	}

	// Without the store: same schema, same settings, same plaintext rows,
	// a records row and a changes row per record, one transaction per unit.
	p := filepath.Join(dir, "plain", store.FileName)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	w, err := sqlitex.OpenWriter(p)
	if err != nil {
		return err
	}
	defer w.Close()
	mig, err := sqlitex.Load(schema.Agent, "agent")
	if err != nil {
		return err
	}
	if _, err := sqlitex.Migrate(ctx, w, mig); err != nil {
		return err
	}
	raw := make([]time.Duration, len(units))
	var seq int64
	runtime.GC()
	for i, rows := range plain {
		t0 := time.Now()
		err := func() error {
			tx, err := w.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			for _, r := range rows {
				seq++
				h := int64(ts) + seq
				if _, err := tx.ExecContext(ctx, `INSERT INTO records(id, kind, hlc, deleted, erased, body) VALUES (?, ?, ?, 0, 0, ?)`,
					r.id[:], string(r.kind), h, r.state); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO changes(seq, hlc, kind, record_id, op, body) VALUES (?, ?, ?, ?, ?, ?)`,
					seq, h, string(r.kind), r.id[:], int(change.OpUpsert), r.delta); err != nil {
					return err
				}
			}
			return tx.Commit()
		}()
		raw[i] = time.Since(t0)
		if err != nil {
			return fmt.Errorf("plain insert %d: %w", i, err)
		}
	}

	sp50, sp99 := percentile(sealed, 50), percentile(sealed, 99)
	rp50, rp99 := percentile(raw, 50), percentile(raw, 99)
	res.Add("save_p50_encrypted_ms", "save p50 (encrypted)", ms(sp50), "ms")
	res.AddTarget("save_p99_encrypted_ms", "save p99 (encrypted)", ms(sp99), "ms", "<", 10)
	res.Add("save_max_encrypted_ms", "save max (encrypted)", ms(slices.Max(sealed)), "ms")
	res.Add("save_p50_plain_ms", "save p50 (plain SQL, no sealing)", ms(rp50), "ms")
	res.Add("save_p99_plain_ms", "save p99 (plain SQL, no sealing)", ms(rp99), "ms")
	res.Add("save_overhead_p50_ratio", "save overhead p50 (enc/plain)", ratio(sp50, rp50), "x")
	res.Add("save_overhead_p99_ratio", "save overhead p99 (enc/plain)", ratio(sp99, rp99), "x")
	res.Note("saves: %d transactions (%d records; %d are an identified beneficiary saved with its consents); "+
		"the plain baseline inserts the same CBOR rows (records + changes) without the store's reads, validation, meta updates or sealing",
		len(units), countRecords(units), multi)
	return nil
}

func countRecords(units [][]domain.Record) int {
	n := 0
	for _, u := range units {
		n += len(u)
	}
	return n
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// importRounds is how many times the import and its raw baselines are
// timed, side by side: on a shared VM one run of each swings by ±30 %,
// pairs measured together much less.
const importRounds = 5

// benchImport does what `agent import` does (the JSONL file streamed into
// one store transaction) and compares it to the fastest raw insert of the
// rows it writes (rawVariants) — one records row and one changes row per
// record, of the sealed sizes, in the same tables with the same settings
// — and, for reference, of the records rows alone.
func benchImport(ctx context.Context, c config, dir, rawDir string, res *benchreport.Results) error {
	set, err := fixtureFor(c.n, c.seed, func(s *fixture.Set) int { return len(s.Records()) })
	if err != nil {
		return err
	}
	recs := set.Records()[:c.n] // the cut drops activities only
	n := len(recs)
	var buf bytes.Buffer
	jsonBytes := 0
	for _, r := range recs {
		line, err := jsonl.EncodeLine(r)
		if err != nil {
			return err
		}
		jsonBytes += len(line)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	input := buf.Bytes()
	// A second file, other records, imported into a store already holding
	// the first: every record is looked up.
	set2, err := fixtureFor(c.n, c.seed+1, func(s *fixture.Set) int { return len(s.Records()) })
	if err != nil {
		return err
	}
	var buf2 bytes.Buffer
	for _, r := range set2.Records()[:c.n] {
		line, err := jsonl.EncodeLine(r)
		if err != nil {
			return err
		}
		buf2.Write(line)
		buf2.WriteByte('\n')
	}

	// Decoding alone, for the table (the import decodes again, streaming
	// into the store).
	runtime.GC()
	t0 := time.Now()
	if _, err := jsonl.ReadAll(bytes.NewReader(input)); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	decode := time.Since(t0)

	var imports []time.Duration
	both := make([][]time.Duration, len(rawVariants)) // per variant, per round
	one := make([][]time.Duration, len(rawVariants))
	var nonEmpty time.Duration
	var dbBytes int64
	var recBody, chgBody float64
	for round := range importRounds {
		// The first round's store is kept for the unlock and cold start
		// measures; the others go.
		d := dir
		if round > 0 {
			d = filepath.Join(rawDir, fmt.Sprintf("import-%d", round))
		}
		total, err := timeImport(ctx, c, d, input, n, round == 0)
		if err != nil {
			return err
		}
		if round == 1 {
			if nonEmpty, err = timeImportInto(ctx, d, buf2.Bytes(), n); err != nil {
				return fmt.Errorf("second import: %w", err)
			}
		}
		if round == 0 {
			if dbBytes, recBody, chgBody, err = storeSizes(ctx, dir); err != nil {
				return err
			}
		}
		for i, v := range rawVariants {
			bothDir := filepath.Join(rawDir, fmt.Sprintf("both-%s-%d", v.name, round))
			t, err := rawInsert(ctx, bothDir, recs, int(recBody+0.5), int(chgBody+0.5), v)
			if err != nil {
				return fmt.Errorf("raw insert with changes: %w", err)
			}
			both[i] = append(both[i], t)
			oneDir := filepath.Join(rawDir, fmt.Sprintf("records-%s-%d", v.name, round))
			if t, err = rawInsert(ctx, oneDir, recs, int(recBody+0.5), 0, v); err != nil {
				return fmt.Errorf("raw insert: %w", err)
			}
			one[i] = append(one[i], t)
			os.RemoveAll(bothDir)
			os.RemoveAll(oneDir)
		}
		imports = append(imports, total)
		if round > 0 {
			os.RemoveAll(d)
		}
	}

	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	fb, fo := fastest(both), fastest(one)
	ratios := make([]float64, importRounds) // each round's import against its fastest raw insert
	oneRowRatios := make([]float64, importRounds)
	for r := range importRounds {
		ratios[r] = ratio(both[fb][r], imports[r])
		oneRowRatios[r] = ratio(one[fo][r], imports[r])
	}
	res.Add("import_records_per_s", "import (streamed decode + save, median)", rate(median(imports)), "rec/s")
	for i, v := range rawVariants {
		res.Add("raw_insert_"+v.name+"_records_per_s", "raw insert, records + changes rows: "+v.label+" (median)", rate(median(both[i])), "rec/s")
	}
	res.Add("raw_insert_with_changes_records_per_s", "raw insert, records + changes rows, the fastest above ("+rawVariants[fb].name+"): the limit", rate(median(both[fb])), "rec/s")
	res.AddTarget("import_vs_raw_ratio", "import / the fastest raw insert of the same rows (median of rounds)", median(ratios), "x", ">=", 0.5)
	res.Add("raw_insert_rows_per_s", "raw insert, records rows only, the fastest variant ("+rawVariants[fo].name+", median)", rate(median(one[fo])), "rows/s")
	res.Add("import_vs_raw_one_row_ratio", "import / the fastest raw insert of records rows only", median(oneRowRatios), "x")
	res.Add("import_ms", "import: whole file (median)", ms(median(imports)), "ms")
	res.Add("import_nonempty_records_per_s", "import into a store holding as many other records", rate(nonEmpty), "rec/s")
	res.Add("import_nonempty_vs_raw_ratio", "the same / the fastest raw insert of the same rows (its round)", ratio(both[fb][1], nonEmpty), "x")
	res.Add("import_decode_alone_ms", "JSONL decode alone (not streamed)", ms(decode), "ms")
	res.Add("import_decode_us_per_record", "JSONL decode alone per record", float64(decode.Microseconds())/float64(n), "µs")
	res.Add("db_bytes_per_record", "database bytes per record", float64(dbBytes)/float64(n), "B")
	res.Add("json_bytes_per_record", "JSON bytes per record (plain)", float64(jsonBytes)/float64(n), "B")
	res.Add("record_body_avg_bytes", "sealed record body (avg)", recBody, "B")
	res.Add("change_body_avg_bytes", "sealed change body (avg)", chgBody, "B")
	res.Note("import: %d records, %d JSONL bytes, %d rounds; store creation and unlock are outside the import timing", n, len(input), importRounds)
	res.Note("import: it writes 2 rows per record (the record, its change in the log, in one transaction); the target compares it with the fastest raw insert of those rows, same pragmas, statements prepared beforehand: single-row or multi-row INSERTs, one transaction per %d records or one for all", jsonl.DefaultChunk)
	return nil
}

// timeImport creates a store in dir and times the import of input into it.
func timeImport(ctx context.Context, c config, dir string, input []byte, n int, profile bool) (time.Duration, error) {
	// Created (and unlocked) outside the timing: unlock is measured apart.
	s, _, err := store.Create(ctx, dir, []byte(passphrase), store.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	stop := func() {}
	if profile {
		if stop, err = startProfile(c.cpuProfile); err != nil {
			return 0, err
		}
	}
	runtime.GC()
	t0 := time.Now()
	rep, err := importer.Import(ctx, s, bufio.NewReaderSize(bytes.NewReader(input), 1<<16))
	total := time.Since(t0)
	stop()
	if err != nil {
		return 0, fmt.Errorf("importing: %w", err)
	}
	if rep.Created != n {
		return 0, fmt.Errorf("import created %d records of %d", rep.Created, n)
	}
	return total, s.Close()
}

// timeImportInto times the import of input into the existing store of dir.
func timeImportInto(ctx context.Context, dir string, input []byte, n int) (time.Duration, error) {
	s, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if err := s.Unlock(ctx, []byte(passphrase)); err != nil {
		return 0, err
	}
	runtime.GC()
	t0 := time.Now()
	rep, err := importer.Import(ctx, s, bufio.NewReaderSize(bytes.NewReader(input), 1<<16))
	total := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if rep.Created != n {
		return 0, fmt.Errorf("import created %d records of %d", rep.Created, n)
	}
	return total, s.Close()
}

// storeSizes returns the database's bytes on disk and the average sealed
// record and change body sizes.
func storeSizes(ctx context.Context, dir string) (dbBytes int64, recBody, chgBody float64, err error) {
	p := filepath.Join(dir, store.FileName)
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(p + suffix); err == nil {
			dbBytes += fi.Size()
		}
	}
	r, err := sqlitex.OpenReader(p, 1)
	if err != nil {
		return 0, 0, 0, err
	}
	defer r.Close()
	err = r.QueryRowContext(ctx, `SELECT avg(length(body)) FROM records`).Scan(&recBody)
	if err == nil {
		err = r.QueryRowContext(ctx, `SELECT avg(length(body)) FROM changes`).Scan(&chgBody)
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("measuring bodies: %w", err)
	}
	return dbBytes, recBody, chgBody, nil
}

func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// benchUnlock times store.Open + Unlock with the production KDF costs.
// Argon2id fills 64 MiB: in a fresh process (the CLI, or the agent's
// first unlock) those pages are touched for the first time, which costs
// more than the derivation in a warm heap. unlock_ms returns the heap to
// the OS before each run to measure the first case; unlock_warm_ms is the
// second.
func benchUnlock(ctx context.Context, c config, dir string, res *benchreport.Results) error {
	once := func() (time.Duration, error) {
		t0 := time.Now()
		s, err := store.Open(ctx, dir, store.Options{})
		if err != nil {
			return 0, err
		}
		err = s.Unlock(ctx, []byte(passphrase))
		d := time.Since(t0)
		s.Close()
		return d, err
	}
	fresh := make([]time.Duration, c.unlocks)
	for i := range fresh {
		debug.FreeOSMemory()
		d, err := once()
		if err != nil {
			return err
		}
		fresh[i] = d
	}
	warm := make([]time.Duration, c.unlocks)
	for i := -1; i < len(warm); i++ {
		runtime.GC()
		d, err := once()
		if err != nil {
			return err
		}
		if i >= 0 {
			warm[i] = d
		}
	}
	res.AddTarget("unlock_ms", "unlock (open + Argon2id, fresh heap, median)", ms(median(fresh)), "ms", "<", 300)
	res.Add("unlock_warm_ms", "unlock (warm heap, median)", ms(median(warm)), "ms")
	return nil
}

// buildAgent builds the agent binary from the module root, with the go
// command found on PATH (go run and go test put their own first).
func buildAgent(ctx context.Context, root, bin string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building ./agent: %w (or time a built one with -agent)", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./agent")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./agent: %w\n%s", err, out.Bytes())
	}
	return nil
}

// benchColdStart times the agent binary as a fresh process, end to end.
func benchColdStart(ctx context.Context, c config, bin, dir string, res *benchreport.Results) error {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NUMERIBUS_PASSPHRASE=") {
			env = append(env, kv)
		}
	}
	timeRuns := func(runs int, env []string, args ...string) (time.Duration, int, error) {
		ds := make([]time.Duration, runs)
		lines := 0
		for i := range ds {
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = env
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			t0 := time.Now()
			err := cmd.Run()
			ds[i] = time.Since(t0)
			if err != nil {
				return 0, 0, fmt.Errorf("agent %s: %w\n%s", strings.Join(args, " "), err, errb.Bytes())
			}
			lines = bytes.Count(out.Bytes(), []byte("\n"))
		}
		return median(ds), lines, nil
	}
	status, _, err := timeRuns(c.statusRuns, env, "status", "--data", dir)
	if err != nil {
		return err
	}
	list, lines, err := timeRuns(c.listRuns, append(slices.Clone(env), "NUMERIBUS_PASSPHRASE="+passphrase),
		"list", "--data", dir, "--kind", string(domain.KindTourStop))
	if err != nil {
		return err
	}
	res.Add("cold_start_status_ms", "cold start: agent status (median)", ms(status), "ms")
	res.Add("cold_start_list_ms", "cold start: agent list tourstop (median)", ms(list), "ms")
	res.Note("agent list --kind tourstop printed %d lines (unlock with Argon2id included)", lines)
	return nil
}

// fastest returns the index of the variant whose median time is least.
func fastest(times [][]time.Duration) int {
	best := 0
	for i := range times {
		if median(times[i]) < median(times[best]) {
			best = i
		}
	}
	return best
}
