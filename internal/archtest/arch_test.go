// Package archtest checks that dependencies point inward: the domain
// packages do no I/O, internal never imports the programs, and the agent
// and the hub never import each other (STYLE.md §1); and that CBOR
// decoders, with their limits, are built in internal/cborx only (§4).
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// pure packages hold the domain and its rules: no database, no network,
// no processes.
var pure = []string{"domain", "hlc", "ident", "cborx", "change", "merge", "jsonl", "territoire", "territoire/contours", "fixture", "seal", "apperr", "frnum"}

var forbiddenInPure = []string{"database/sql", "net", "net/http", "os/exec", "modernc.org/sqlite", "github.com/gorilla/websocket"}

func deps(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "numeribus/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[f[0]] = f[1:]
	}
	return m
}

func TestDependenciesPointInward(t *testing.T) {
	all := deps(t)
	if len(all) < 10 {
		t.Fatalf("go list found only %d packages", len(all))
	}
	for pkg, ds := range all {
		short := strings.TrimPrefix(pkg, "numeribus/")
		for _, d := range ds {
			switch {
			case strings.HasPrefix(short, "internal/") && (strings.HasPrefix(d, "numeribus/agent") || strings.HasPrefix(d, "numeribus/hub")):
				t.Errorf("%s imports %s: internal must not depend on the programs", pkg, d)
			case strings.HasPrefix(short, "agent") && strings.HasPrefix(d, "numeribus/hub"):
				t.Errorf("%s imports %s: the agent must not depend on the hub", pkg, d)
			case strings.HasPrefix(short, "hub") && strings.HasPrefix(d, "numeribus/agent"):
				t.Errorf("%s imports %s: the hub must not depend on the agent", pkg, d)
			}
		}
	}
	for _, p := range pure {
		pkg := "numeribus/internal/" + p
		ds, ok := all[pkg]
		if !ok {
			t.Errorf("package %s not found", pkg)
			continue
		}
		for _, d := range ds {
			for _, f := range forbiddenInPure {
				if d == f {
					t.Errorf("%s depends on %s: domain packages do no I/O", pkg, d)
				}
			}
		}
	}
}
