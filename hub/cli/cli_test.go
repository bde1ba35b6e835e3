package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func hub(args ...string) (int, string) {
	var out bytes.Buffer
	code := Main(context.Background(), args, Env{Stdout: &out, Stderr: &out})
	return code, out.String()
}

func TestUsage(t *testing.T) {
	if code, out := hub(); code != ExitUsage || !strings.Contains(out, "Commandes") {
		t.Fatalf("no command: %d %s", code, out)
	}
	if code, _ := hub("nope"); code != ExitUsage {
		t.Fatal("unknown command accepted")
	}
	for _, c := range []string{"serve", "enroll", "revoke", "devices", "stats"} {
		if code, out := hub(c, "--help"); code != ExitOK || !strings.Contains(out, "Usage : hub "+c) {
			t.Errorf("%s --help: %d %s", c, code, out)
		}
	}
}

func TestInsecureOnlyOnLoopback(t *testing.T) {
	code, out := hub("serve", "--data", t.TempDir(), "--listen", "0.0.0.0:0", "--insecure")
	if code != ExitUsage || !strings.Contains(out, "loopback") {
		t.Fatalf("insecure on all interfaces: %d %s", code, out)
	}
}

func TestEnrollNeedsNameTeamAndURL(t *testing.T) {
	dir := t.TempDir()
	if code, _ := hub("enroll", "--data", dir, "--team", "cd88"); code != ExitUsage {
		t.Fatal("enroll without --device accepted")
	}
	if code, out := hub("enroll", "--data", dir, "--device", "bus-1", "--team", "cd88"); code != ExitUsage || !strings.Contains(out, "--url") {
		t.Fatalf("enroll with no known URL: %d %s", code, out)
	}
	code, out := hub("enroll", "--data", dir, "--device", "bus-1", "--team", "cd88", "--url", "wss://127.0.0.1:8443/sync", "--json")
	if code != 0 || !strings.Contains(out, `"code":"NSYNC1-`) {
		t.Fatalf("enroll: %d %s", code, out)
	}
	if code, out := hub("revoke", "--data", dir, "--device", "bus-1"); code != ExitState {
		t.Fatalf("revoking a device never enrolled: %d %s", code, out)
	}
}
