package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

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
