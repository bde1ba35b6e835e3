package retain

import (
	"fmt"
	"log/slog"
	"strings"

	"numeribus/hub/store"
	"numeribus/internal/retention"
)

// PolicyPrefix begins the keys of the periods in the hub's facts_meta
// table, one row per kind set ("retention:identite" → months), in both
// backends.
const PolicyPrefix = "retention:"

// PolicyKey is the facts_meta key of kind k's period.
func PolicyKey(k retention.Kind) string { return PolicyPrefix + string(k) }

// ScanPolicy reads the policy from rows of (key, months), those of the
// keys beginning with PolicyPrefix; a kind without a row keeps its
// default. A stored period out of its bounds (written by hand) is
// ignored, with a warning on log: the default applies.
func ScanPolicy(rows store.Rows, log *slog.Logger) (retention.Policy, error) {
	p := retention.Default()
	for rows.Next() {
		var (
			key    string
			months int64
		)
		if err := rows.Scan(&key, &months); err != nil {
			return p, fmt.Errorf("reading the retention policy: %w", err)
		}
		q, err := p.With(retention.Kind(strings.TrimPrefix(key, PolicyPrefix)), int(months))
		if err != nil {
			log.Warn("stored retention period ignored", "key", key, "err", err)
			continue
		}
		p = q
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("reading the retention policy: %w", err)
	}
	return p, nil
}
