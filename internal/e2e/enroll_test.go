package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentcli "numeribus/agent/cli"
)

// `agent enroll` with a code already used exits with the hub-refusal code
// of docs/CLI.md (retrying will not help), not as an unexpected failure.
func TestEnrollWithAUsedCodeIsARefusal(t *testing.T) {
	h := startHub(t)
	code := h.enrollCode(t, "bus-1", "cd88")
	first := filepath.Join(t.TempDir(), "a")
	run(t, "agent", "init", "--data", first)
	run(t, "agent", "enroll", "--data", first, code)

	second := filepath.Join(t.TempDir(), "b")
	run(t, "agent", "init", "--data", second)
	out, err := child("agent", "enroll", "--data", second, code).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != agentcli.ExitRefused {
		t.Fatalf("enroll with a used code: %v, want exit %d\n%s", err, agentcli.ExitRefused, out)
	}
}

// A demo hub without TLS (`hub serve --insecure`, loopback only) enrolls
// agents and syncs with them: its code carries no certificate to pin.
func TestInsecureHubEnrollsAndSyncs(t *testing.T) {
	h := startHub(t, "--insecure")
	a := newAgent(t, h, "bus-1", "cd88", nil)
	a.save(t, records(5, 31)...)
	a.sync(t)
	sameLines(t, "hub and agent", hubLines(t, h, "cd88"), a.lines(t))
}

// `agent enroll` with an expired code exits with the hub-refusal code,
// like a used one. The hub's own CLI issues a code valid 1 ms; the test
// waits (a bounded poll on the clock, not a guessed delay) until that
// millisecond is surely over before the agent uses it.
func TestEnrollWithAnExpiredCodeIsARefusal(t *testing.T) {
	h := startHub(t)
	code, out := h.cli(t, "enroll", "--device", "bus-1", "--team", "cd88", "--expires", "1ms", "--json")
	issued := time.Now() // the code expires before issued + 1 ms
	if code != 0 {
		t.Fatalf("hub enroll: %d %s", code, out)
	}
	var v struct{ Code string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Code == "" {
		t.Fatalf("enroll output %q: %v", out, err)
	}
	dir := filepath.Join(t.TempDir(), "a")
	run(t, "agent", "init", "--data", dir)
	for time.Now().Before(issued.Add(3 * time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
	b, err := child("agent", "enroll", "--data", dir, v.Code).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != agentcli.ExitRefused {
		t.Fatalf("enroll with an expired code: %v, want exit %d\n%s", err, agentcli.ExitRefused, b)
	}
	if !strings.Contains(string(b), "token_expired") {
		t.Fatalf("refused, but not for the expiry:\n%s", b)
	}
	if st := run(t, "agent", "status", "--data", dir, "--json"); strings.Contains(st, `"hub"`) {
		t.Fatalf("enrolled with an expired code:\n%s", st)
	}
}
