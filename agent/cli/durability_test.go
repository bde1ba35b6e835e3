package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"numeribus/agent/store"
	"numeribus/internal/fixture"
	"numeribus/internal/sqlitex"
)

// TestMain lets the test binary act as the agent in a child process, so
// that tests can kill a real process in the middle of a write.
func TestMain(m *testing.M) {
	if args := os.Getenv("NUMERIBUS_AGENT_CHILD"); args != "" {
		os.Exit(Main(context.Background(), strings.Split(args, "\x1f"),
			Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	os.Exit(m.Run())
}

func childAgent(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NUMERIBUS_AGENT_CHILD="+strings.Join(args, "\x1f"), "NUMERIBUS_PASSPHRASE="+testPass)
	return cmd
}

// checkLog verifies, without the passphrase, what must hold after any
// crash: the file is sound, the log has no gap, every record has its
// change and every change its record.
func checkLog(t *testing.T, dir string) (records, changes int) {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(dir, store.FileName), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q %v", ok, err)
	}
	var n, lo, hi, last int
	db.QueryRow(`SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM changes`).Scan(&n, &lo, &hi)
	db.QueryRow(`SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_seq'`).Scan(&last)
	if n != hi || (n > 0 && lo != 1) || last != hi {
		t.Fatalf("sequence: %d changes, seq %d..%d, meta last_seq %d", n, lo, hi, last)
	}
	var orphans, unlogged int
	db.QueryRow(`SELECT count(*) FROM changes WHERE record_id NOT IN (SELECT id FROM records)`).Scan(&orphans)
	db.QueryRow(`SELECT count(*) FROM records WHERE id NOT IN (SELECT record_id FROM changes)`).Scan(&unlogged)
	if orphans != 0 || unlogged != 0 {
		t.Fatalf("%d changes without record, %d records without change", orphans, unlogged)
	}
	db.QueryRow(`SELECT count(*) FROM records`).Scan(&records)
	return records, n
}

// TestImportSurvivesKill kills the agent with SIGKILL at random moments of
// imports of thousands of records, again and again; after each kill the
// store is sound and consistent, and importing everything again completes
// it with nothing duplicated.
func TestImportSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; run without -short")
	}
	dir := initStore(t)
	// Three self-contained files (each with its consents) of ~3,000 records.
	const files = 3
	var paths []string
	var lines []string
	for i := 0; i < files; i++ {
		chunk := seedLines(t, 2000, uint64(11+i))
		lines = append(lines, chunk...)
		paths = append(paths, writeFile(t, strings.Join(chunk, "\n")+"\n"))
	}
	per := len(lines) / files
	// How long does one uninterrupted import take here?
	scratch := initStore(t)
	start := time.Now()
	if out, err := childAgent("import", "--data", scratch, paths[0]).CombinedOutput(); err != nil {
		t.Fatalf("child import: %v\n%s", err, out)
	}
	full := time.Since(start)
	t.Logf("one import of %d records in a child process: %v", per, full)

	const rounds = 15
	rng := rand.New(rand.NewPCG(42, 42))
	kills, completed := 0, 0
	for round := 0; round < rounds; round++ {
		cmd := childAgent("import", "--data", dir, paths[rng.IntN(files)])
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// From early in the decoding to just past a normal finish: most
		// kills land while the transaction is being written or committed.
		time.Sleep(full/5 + time.Duration(rng.Int64N(int64(full*11/10))))
		if err := cmd.Process.Kill(); err == nil {
			kills++
		}
		if err := cmd.Wait(); err == nil {
			completed++
		}
		recs, chg := checkLog(t, dir)
		t.Logf("round %d: %d records, %d changes", round, recs, chg)
	}
	t.Logf("%d kills, %d imports finished before their kill", kills, completed)
	if completed == rounds {
		t.Fatal("no import was interrupted: the kill test tested nothing")
	}
	for _, p := range paths {
		if out, err := childAgent("import", "--data", dir, p).CombinedOutput(); err != nil {
			t.Fatalf("final import: %v\n%s", err, out)
		}
	}
	recs, chg := checkLog(t, dir)
	if recs != len(lines) || chg != len(lines) {
		t.Fatalf("after completing: %d records and %d changes, want %d of each", recs, chg, len(lines))
	}
}

// needles returns s in UTF-8, UTF-16LE and UTF-16BE.
func needles(s string) [][]byte {
	u := utf16.Encode([]rune(s))
	le := make([]byte, 2*len(u))
	be := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(le[2*i:], c)
		binary.BigEndian.PutUint16(be[2*i:], c)
	}
	return [][]byte{[]byte(s), le, be}
}

// scanDir returns the known values found in any file of dir.
func scanDir(t *testing.T, dir string, values []string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, v := range values {
			for _, n := range needles(v) {
				if bytes.Contains(b, n) {
					found = append(found, filepath.Base(p)+": "+v)
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestNoPlaintextPersonalDataOnDisk seeds records whose names, phones and
// e-mails are known and scans every byte of the data directory — the
// database, its WAL and shared memory while open, everything after close.
func TestNoPlaintextPersonalDataOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := initStore(t)
	set := fixture.Generate(fixture.Options{N: 1000, Seed: 77})
	values := fixture.KnownPersonal(set)
	if len(values) < 500 {
		t.Fatalf("only %d known personal values", len(values))
	}
	// The scanner must find what is there: a control file in clear.
	ctl := filepath.Join(dir, "control.txt")
	os.WriteFile(ctl, []byte("xx"+string(needles(values[3])[1])+"xx"), 0o600)
	if found := scanDir(t, dir, values[3:4]); len(found) != 1 {
		t.Fatalf("scanner missed a planted UTF-16 value: %v", found)
	}
	os.Remove(ctl)

	s, err := store.Open(ctx, dir, store.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, set.Records()...); err != nil {
		t.Fatal(err)
	}
	// Erase a few people too: erasure writes and frees pages.
	for _, b := range set.Beneficiaries[:20] {
		if _, err := s.EraseBeneficiary(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName+"-wal")); err != nil {
		t.Fatalf("expected a WAL while open: %v", err)
	}
	if found := scanDir(t, dir, values); len(found) > 0 {
		t.Fatalf("plaintext personal data while open (%d values), e.g. %v", len(found), found[:min(5, len(found))])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if found := scanDir(t, dir, values); len(found) > 0 {
		t.Fatalf("plaintext personal data after close: %v", found[:min(5, len(found))])
	}
	// And the data is really there, behind the passphrase.
	out := mustAgent(t, "", "list", "--data", dir, "--json").stdout
	present := 0
	for _, v := range values {
		if strings.Contains(out, v) {
			present++
		}
	}
	if present < len(values)*9/10 {
		t.Fatalf("only %d of %d values readable after unlock", present, len(values))
	}
}
