package retain

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"numeribus/internal/retention"
)

// fakeRows are (key, months) rows as a database would give them.
type fakeRows struct {
	rows [][2]any
	i    int
	err  error
}

func (r *fakeRows) Next() bool { r.i++; return r.i <= len(r.rows) }
func (r *fakeRows) Err() error { return r.err }
func (r *fakeRows) Scan(dest ...any) error {
	row := r.rows[r.i-1]
	*dest[0].(*string) = row[0].(string)
	*dest[1].(*int64) = int64(row[1].(int))
	return nil
}

// A stored period is the policy's; one out of its bounds or of an
// unknown kind (written by hand) is ignored with a warning, its kind
// left at its default; a failed read is an error.
func TestScanPolicy(t *testing.T) {
	rule, _ := retention.RuleOf(retention.Identite)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p, err := ScanPolicy(&fakeRows{rows: [][2]any{
		{PolicyKey(retention.Identite), rule.Min},
		{PolicyKey(retention.Notes), 100000},
		{PolicyPrefix + "inconnu", 12},
	}}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsSet(retention.Identite) || p.Months(retention.Identite) != rule.Min {
		t.Errorf("identite: %d months (set %v), want %d", p.Months(retention.Identite), p.IsSet(retention.Identite), rule.Min)
	}
	if p.IsSet(retention.Notes) {
		t.Errorf("a period out of bounds was kept: %d months", p.Months(retention.Notes))
	}
	if n := strings.Count(logs.String(), "stored retention period ignored"); n != 2 {
		t.Errorf("%d warnings, want 2:\n%s", n, logs.String())
	}
	if _, err := ScanPolicy(&fakeRows{err: errors.New("disque")}, log); err == nil || !strings.Contains(err.Error(), "disque") {
		t.Errorf("a failed read gave %v", err)
	}
}
