package retain

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

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
