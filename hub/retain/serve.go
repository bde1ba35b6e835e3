package retain

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"numeribus/internal/retention"
)

// Path is where the hub serves its retention policy, beside /sync on the
// same address and the same TLS certificate, which the agents pin.
const Path = retention.Path

// Policies is what Handler needs of a store.
type Policies interface {
	RetentionPolicy(ctx context.Context) (retention.Policy, error)
}

// Handler serves the retention policy as JSON (retention.Policy's form)
// to GET: the periods are reference data for every agent — no personal
// data, nothing secret (the information notice tells them to anyone) — so
// no session is asked; the agent trusts the answer because it comes over
// the certificate it pinned at enrollment.
func Handler(st Policies, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "méthode non permise", http.StatusMethodNotAllowed)
			return
		}
		p, err := st.RetentionPolicy(r.Context())
		if err != nil {
			log.Error("reading the retention policy", "err", err)
			http.Error(w, "politique de conservation illisible", http.StatusInternalServerError)
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			http.Error(w, "politique de conservation illisible", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(append(b, '\n'))
	})
}

// PurgeEvery is how often a serving hub purges.
const PurgeEvery = 24 * time.Hour

// Purger is what Loop needs of a store.
type Purger interface {
	PurgeExpired(ctx context.Context, now time.Time) (Purged, error)
}

// Loop purges st ten minutes after it starts, then every `every`, until
// ctx ends. A failed
// purge is logged and tried again at the next turn: periods are months.
func Loop(ctx context.Context, st Purger, log *slog.Logger, every time.Duration, now func() time.Time) {
	// Not at start-up: agents reconnect en masse then, and a hub
	// restarted many times a day would purge as often.
	t := time.NewTimer(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, err := st.PurgeExpired(ctx, now())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("retention purge failed; tried again later", "err", err)
		case p.Records+p.Audit > 0:
			log.Info("retention purge", "people", p.People, "assessments", p.Assessments, "notes", p.Notes,
				"records", p.Records, "audit", p.Audit)
		}
		t.Reset(every)
	}
}
