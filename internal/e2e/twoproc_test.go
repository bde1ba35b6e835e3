package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/sqlitex"
)

// TestTwoSeedsAtOnceOnOneStore runs two `agent seed` processes at the
// same time on one store, as `agent seed` or `agent import` beside a
// running `agent serve`: both must write, and the outbox must number
// every change once, without a gap.
func TestTwoSeedsAtOnceOnOneStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	run(t, "agent", "init", "--data", dir)

	type result struct {
		out []byte
		err error
	}
	// The test holds the write lock while both start: each has unlocked
	// (and read the store's last seq) before either writes, as serve has
	// long before a seed. They wait for the lock well within SQLite's
	// busy timeout.
	w, err := sqlitex.OpenWriter(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tx, err := w.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	seeds := []string{"11", "22"}
	done := make(chan result, len(seeds))
	for _, k := range seeds {
		go func() {
			out, err := child("agent", "seed", "--data", dir, "--n", "200", "--seed", k).CombinedOutput()
			done <- result{out, err}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	tx.Rollback()
	created := uint64(0)
	createdRe := regexp.MustCompile(`: (\d+) créé`)
	for range seeds {
		r := <-done
		if r.err != nil {
			t.Fatalf("agent seed: %v\n%s", r.err, r.out)
		}
		m := createdRe.FindSubmatch(r.out)
		if m == nil {
			t.Fatalf("agent seed printed %q", r.out)
		}
		n, _ := strconv.ParseUint(string(m[1]), 10, 64)
		created += n
	}

	var st struct {
		LastSeq uint64 `json:"last_seq"`
		Pending uint64 `json:"pending_changes"`
		Records map[string]struct {
			Live uint64 `json:"live"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(run(t, "agent", "status", "--data", dir, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	live := uint64(0)
	for _, k := range st.Records {
		live += k.Live
	}
	if st.LastSeq != created || st.Pending != created || live != created {
		t.Fatalf("status: last seq %d, %d pending, %d records; the seeds created %d", st.LastSeq, st.Pending, live, created)
	}

	s, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := uint64(0)
	err = s.Log(context.Background(), func(e store.LogEntry) error {
		n++
		if e.Seq != n {
			t.Fatalf("change %d of the log has seq %d", n, e.Seq)
		}
		return nil
	})
	if err != nil || n != created {
		t.Fatalf("log: %d changes (%v), want %d", n, err, created)
	}
}
