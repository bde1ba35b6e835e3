package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"numeribus/hub/store/sqlite"
)

// /healthz tells a load balancer whether to send agents here: 200 while
// the hub serves and its database answers, 503 once it drains or when
// the database does not answer.
func TestHealth(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var draining atomic.Bool
	h := health(st, &draining)
	get := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code
	}
	if c := get(); c != http.StatusOK {
		t.Fatalf("serving: %d, want 200", c)
	}
	draining.Store(true)
	if c := get(); c != http.StatusServiceUnavailable {
		t.Fatalf("draining: %d, want 503", c)
	}
	draining.Store(false)
	st.Close() // the database is gone
	if c := get(); c != http.StatusServiceUnavailable {
		t.Fatalf("database closed: %d, want 503", c)
	}
}
