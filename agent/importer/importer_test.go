package importer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/jsonl"
	"numeribus/internal/seal"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	s, _, err := store.Create(context.Background(), t.TempDir(), []byte("phrase de passe de test"),
		store.Options{KDF: seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// file returns the JSON Lines of n seeded activities and their records.
func file(t *testing.T, n int) ([]string, []domain.Record) {
	t.Helper()
	recs := fixture.Generate(fixture.Options{N: n, Seed: 9}).Records()
	lines := make([]string, len(recs))
	for i, r := range recs {
		b, err := jsonl.EncodeLine(r)
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = string(b)
	}
	return lines, recs
}

func lastSeq(t *testing.T, s *store.Store) uint64 {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.LastSeq
}

func TestImportStreamsAWholeFile(t *testing.T) {
	s := newStore(t)
	lines, recs := file(t, 1500) // several decoding runs
	in := "# export du 2 mars\n\n" + strings.Join(lines, "\n") + "\n"
	rep, err := Import(context.Background(), s, strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != len(recs) || rep.Created != len(recs) || lastSeq(t, s) != uint64(len(recs)) {
		t.Fatalf("report %+v, last seq %d, for %d records", rep, lastSeq(t, s), len(recs))
	}
	rep, err = Import(context.Background(), s, strings.NewReader(in))
	if err != nil || rep.Created != 0 || rep.Unchanged != len(recs) {
		t.Fatalf("second import: %+v, %v", rep, err)
	}
}

func TestImportNamesTheLinesAndWritesNothing(t *testing.T) {
	lines, _ := file(t, 1500)
	n := len(lines)
	// Activities come last in the fixture: the edited line has a duree.
	if !strings.Contains(lines[n-5], `"kind":"activity"`) || !strings.Contains(lines[n-5], `"duree":`) {
		t.Fatalf("line %d is not an activity with a duree: %s", n-4, lines[n-5])
	}
	tests := []struct {
		name  string
		edit  func([]string) []string
		lines []int // line numbers in the errors
	}{
		{"bad JSON near the end", func(l []string) []string {
			l[n-3] = `{"kind":"activity",`
			return l
		}, []int{n - 2}},
		{"two bad lines in different runs", func(l []string) []string {
			l[10] = `{"kind":"visite"}`
			l[n-1] = `pas du JSON`
			return l
		}, []int{11, n}},
		{"a record the store refuses, far down the file", func(l []string) []string {
			l[n-5] = strings.Replace(l[n-5], `"duree":`, `"duree":-`, 1)
			return l
		}, []int{n - 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			in := strings.Join(tt.edit(append([]string(nil), lines...)), "\n")
			_, err := Import(context.Background(), s, bytes.NewReader([]byte(in)))
			var le jsonl.Errors
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want line errors", err)
			}
			var got []int
			for _, e := range le {
				got = append(got, e.Line)
			}
			if len(got) != len(tt.lines) {
				t.Fatalf("errors on lines %v, want %v: %v", got, tt.lines, err)
			}
			for i := range got {
				if got[i] != tt.lines[i] {
					t.Fatalf("errors on lines %v, want %v: %v", got, tt.lines, err)
				}
			}
			if seq := lastSeq(t, s); seq != 0 {
				t.Fatalf("a refused file wrote %d changes", seq)
			}
		})
	}
}
