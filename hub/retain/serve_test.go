package retain

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"numeribus/internal/ident"
	"numeribus/internal/retention"
)

type policy struct{ p retention.Policy }

func (s policy) RetentionPolicy(context.Context) (retention.Policy, error) { return s.p, nil }

// The policy served is the one stored, in the form agents read; only
// reads are answered.
func TestHandler(t *testing.T) {
	p, _ := retention.Default().With(retention.Notes, 6)
	h := Handler(policy{p}, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET: %d %v", rec.Code, rec.Header())
	}
	var got retention.Policy
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || !got.Equal(p) {
		t.Fatalf("served %s: %v", rec.Body, err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

// A plan is cut into chunks of about size records, a person kept with
// their sessions, nothing lost nor doubled.
func TestChunks(t *testing.T) {
	id := func(i int) ident.ID { var x ident.ID; x[15] = byte(i); x[14] = byte(i >> 8); return x }
	var pl retention.Plan
	for i := range 5 {
		pl.People = append(pl.People, retention.Expired{Person: id(i), Individuals: []ident.ID{id(100 + i), id(200 + i)}})
	}
	for i := range 4 {
		pl.Assessments = append(pl.Assessments, id(300+i))
		pl.Notes = append(pl.Notes, id(400+i))
	}
	chunks := Chunks(pl, 4)
	seen := map[ident.ID]int{}
	total := 0
	for _, c := range chunks {
		if c.Records() > 4 {
			t.Errorf("a chunk of %d records", c.Records())
		}
		total += c.Records()
		EachTarget(c, func(tg Target) error { seen[tg.ID]++; return nil })
	}
	if total != pl.Records() || len(seen) != pl.Records() {
		t.Fatalf("%d records in chunks, %d distinct; want %d", total, len(seen), pl.Records())
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s in %d chunks", id, n)
		}
	}
	if got := Chunks(retention.Plan{}, 4); len(got) != 0 {
		t.Errorf("an empty plan gives %d chunks", len(got))
	}
}
