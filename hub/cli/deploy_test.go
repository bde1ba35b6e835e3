package cli

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// deploy/numeribus-hub.service gives the hub time to drain before
// systemd kills it, restarts it after a crash, runs it as its own
// account, hardened, with its data in the state directory it is given.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("../../deploy/numeribus-hub.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = append(unit[k], v)
		}
	}
	one := func(k string) string {
		t.Helper()
		if len(unit[k]) != 1 {
			t.Fatalf("%s: %q, want one value", k, unit[k])
		}
		return unit[k][0]
	}
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	if err != nil {
		t.Fatal(err)
	}
	if drain := httpShutdown + syncDrain; stop < drain+5*time.Second {
		t.Errorf("TimeoutStopSec=%v: the hub may take %v to stop, leave 5 s more", stop, drain)
	}
	for k, want := range map[string]string{"Restart": "on-failure", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "StateDirectory": "numeribus-hub", "StateDirectoryMode": "0700",
		"User": "numeribus-hub", "KillSignal": "SIGTERM", "CapabilityBoundingSet": ""} {
		if got := one(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if exec := one("ExecStart"); !strings.Contains(exec, " serve --data /var/lib/numeribus-hub ") {
		t.Errorf("ExecStart %q: not serving from the state directory", exec)
	}
}
