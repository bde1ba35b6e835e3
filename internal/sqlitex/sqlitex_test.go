package sqlitex

import (
	"path/filepath"
	"testing"
)

// A pragma given to OpenWriter replaces the default of that name: the
// driver applies the first of two, so an appended one was silently
// ignored (a hub command's longer busy timeout was 5 s all the same).
func TestExtraPragmaReplacesTheDefault(t *testing.T) {
	db, err := OpenWriter(filepath.Join(t.TempDir(), "x.db"), "busy_timeout(30000)", "cache_size(-1000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for pragma, want := range map[string]int{"busy_timeout": 30000, "cache_size": -1000, "foreign_keys": 1} {
		var got int
		if err := db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %d (%v), want %d", pragma, got, err, want)
		}
	}
}
