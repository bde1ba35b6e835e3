package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"numeribus/hub/releases"
	"numeribus/internal/sqlitex"
)

// Self-updating agents (issue #14), end to end with real programs: a
// `hub serve` and two builds of the agent that differ only by the
// version linked in, plus a "release" that exits at once. The agent
// reaches the hub through a proxy that cuts the first download midway.

// buildTools builds the hub, the agent at versions 1.0.0 and 1.1.0, and
// a program that exits at once, into a temporary directory.
func buildTools(t *testing.T) (hub, agent100, agent110, broken string) {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	dir := t.TempDir()
	build := func(out, pkg, version string, wd string) string {
		args := []string{"build", "-trimpath", "-o", filepath.Join(dir, out)}
		if version != "" {
			args = append(args, "-ldflags", "-X numeribus/agent/cli.Version="+version)
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir, cmd.Env = wd, append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", out, err, b)
		}
		return filepath.Join(dir, out)
	}
	src := filepath.Join(dir, "broken")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module broken\n\ngo 1.24\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport \"os\"\n\n// A release that exits at once.\nfunc main() { os.Exit(2) }\n"), 0o644)
	return build("hub", "./hub", "", root), build("agent-1.0.0", "./agent", "1.0.0", root),
		build("agent-1.1.0", "./agent", "1.1.0", root), build("broken-agent", ".", "", src)
}

// prog runs a built program to its end and returns its output; it fails
// the test on another exit code than want.
func prog(t *testing.T, want int, path string, args ...string) string {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "NUMERIBUS_PASSPHRASE="+pass)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %v: %v", filepath.Base(path), args, err)
		}
		code = ee.ExitCode()
	}
	if code != want {
		t.Fatalf("%s %s: exit %d, want %d\n%s", filepath.Base(path), strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

// startProg starts a built program whose output the test watches.
func startProg(t *testing.T, path string, args ...string) *watched {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "NUMERIBUS_PASSPHRASE="+pass)
	w := &watched{name: filepath.Base(path) + " " + args[0], cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w.out, w.out
	cmd.WaitDelay = 10 * time.Second // a child it started cannot hold the test's pipes
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w.err = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(w.stop)
	return w
}

// interrupt stops a program as Ctrl-C does and waits for a clean end.
func (w *watched) interrupt(t *testing.T) string {
	t.Helper()
	w.cmd.Process.Signal(os.Interrupt)
	return w.wait(t, 30*time.Second)
}

type agentUpdate struct {
	Agent struct {
		Version string `json:"version"`
		Key     string `json:"release_key"`
		Pending *struct {
			Version    string `json:"version"`
			Verified   bool   `json:"verified"`
			Downloaded int64  `json:"downloaded_bytes"`
			Size       int64  `json:"size"`
		} `json:"pending"`
		LastCheck *struct {
			Message string `json:"message"`
			Failed  bool   `json:"failed"`
		} `json:"last_check"`
		Refused []struct {
			Version string `json:"version"`
		} `json:"refused_versions"`
	} `json:"agent"`
}

func updateStatus(t *testing.T, agent, dir string) agentUpdate {
	t.Helper()
	var st agentUpdate
	if err := json.Unmarshal([]byte(prog(t, 0, agent, "status", "--data", dir, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAgentUpdatesItselfFromTheHub(t *testing.T) {
	hubBin, agent100, agent110, broken := buildTools(t)
	work := t.TempDir()
	hubDir, keys, agentDir := filepath.Join(work, "hub"), filepath.Join(work, "keys"), filepath.Join(work, "agent-data")
	os.MkdirAll(keys, 0o700)
	// The laptop's install: the 1.0.0 build as "agent".
	inst := filepath.Join(work, "install")
	os.MkdirAll(inst, 0o755)
	agent := filepath.Join(inst, "agent")
	if b, err := os.ReadFile(agent100); err != nil || os.WriteFile(agent, b, 0o755) != nil {
		t.Fatal(err)
	}

	hub := startProg(t, hubBin, "serve", "--data", hubDir, "--listen", "127.0.0.1:0")
	addr := hub.waitPrinted(t, regexp.MustCompile(`hub à l'écoute sur (\S+)`), 30*time.Second)[1]
	// The agent's road to the hub cuts each connection after 3 to 6 MB
	// until the test lifts it: the first download of the binary
	// (25 MB, not stripped) breaks midway; the sync's rounds go through.
	proxy := startCutProxy(t, addr, 3<<20, 6<<20, 14)
	code := strings.TrimSpace(prog(t, 0, hubBin, "enroll", "--data", hubDir, "--device", "bus-1", "--team", "cd88", "--url", "wss://"+proxy.addr()+"/sync"))
	code = regexp.MustCompile(`NSYNC1-\S+`).FindString(code)

	// Enrolled before the hub had any release: no key to pin yet.
	prog(t, 0, agent, "init", "--data", agentDir)
	if out := prog(t, 0, agent, "enroll", "--data", agentDir, code); !strings.Contains(out, "ne publie pas encore de versions") {
		t.Fatalf("enroll: %s", out)
	}
	prog(t, 0, hubBin, "release", "keygen", "--out", filepath.Join(keys, "release.key"))
	if out := prog(t, 0, hubBin, "release", "add", agent110, "--sign", filepath.Join(keys, "release.key"), "--version", "1.1.0", "--data", hubDir); !strings.Contains(out, "linux/amd64") && !strings.Contains(out, "added") {
		t.Fatalf("release add: %s", out)
	}
	// The next sync pins the key, and says so.
	if out := prog(t, 0, agent, "sync", "--data", agentDir); !strings.Contains(out, "avait été inscrit avant les mises à jour automatiques") {
		t.Fatalf("first sync after the first release: %s", out)
	}
	if st := updateStatus(t, agent, agentDir); st.Agent.Version != "1.0.0" || st.Agent.Key == "" || st.Agent.Pending != nil {
		t.Fatalf("status before serve: %+v", st.Agent)
	}

	// serve's first round checks: the download is cut midway; the agent
	// goes on, its data served.
	serve := startProg(t, agent, "serve", "--data", agentDir, "--listen", "127.0.0.1:0")
	serve.waitPrinted(t, regexp.MustCompile(`téléchargement interrompu`), 60*time.Second)
	serve.interrupt(t)
	st := updateStatus(t, agent, agentDir)
	if p := st.Agent.Pending; p == nil || p.Verified || p.Version != "1.1.0" || p.Downloaded == 0 || p.Downloaded >= p.Size {
		t.Fatalf("after the cut: %+v", st.Agent.Pending)
	}
	if !strings.Contains(prog(t, 0, agent, "status", "--data", agentDir), "non vérifiée") {
		t.Fatal("status does not say the update is not verified")
	}
	if out := prog(t, 0, agent, "version"); out != "agent 1.0.0\n" {
		t.Fatalf("after the cut the agent is %q", out)
	}
	cutBefore := proxy.cuts.Load()
	proxy.mu.Lock()
	proxy.min, proxy.max = 1<<40, 1<<40
	proxy.mu.Unlock()

	// The next serve resumes the download, verifies and stages it.
	start := time.Now()
	serve = startProg(t, agent, "serve", "--data", agentDir, "--listen", "127.0.0.1:0")
	serve.waitPrinted(t, regexp.MustCompile(`Mise à jour 1\.1\.0 téléchargée et vérifiée`), 60*time.Second)
	t.Logf("serve started to the rest of the release staged (%d of %d bytes were there): %v", st.Agent.Pending.Downloaded, st.Agent.Pending.Size, time.Since(start).Round(time.Millisecond))
	serve.interrupt(t)
	if proxy.cuts.Load() != cutBefore {
		t.Fatal("a connection was cut after the proxy was lifted")
	}
	st = updateStatus(t, agent, agentDir)
	if p := st.Agent.Pending; st.Agent.Version != "1.0.0" || p == nil || !p.Verified || p.Version != "1.1.0" {
		t.Fatalf("staged: %+v %+v", st.Agent, st.Agent.Pending)
	}

	// The next start switches: 1.1.0 serves, 1.0.0 kept as agent.prev.
	start = time.Now()
	serve = startProg(t, agent, "serve", "--data", agentDir, "--listen", "127.0.0.1:0")
	serve.waitPrinted(t, regexp.MustCompile(`Version 1\.1\.0 installée`), 60*time.Second)
	serve.waitPrinted(t, regexp.MustCompile(`Interface web : http://`), 30*time.Second)
	t.Logf("serve started to 1.1.0 installed and serving: %v", time.Since(start).Round(time.Millisecond))
	if out := prog(t, 0, agent, "version"); out != "agent 1.1.0\n" {
		t.Fatalf("after the switch agent is %q", out)
	}
	if out := prog(t, 0, filepath.Join(inst, "agent.prev"), "version"); out != "agent 1.0.0\n" {
		t.Fatalf("agent.prev is %q", out)
	}
	serve.interrupt(t) // the interrupt reaches the new version through the old
	if st := updateStatus(t, agent, agentDir); st.Agent.Version != "1.1.0" || st.Agent.Pending != nil {
		t.Fatalf("after the switch: %+v", st.Agent)
	}

	// A release that exits at once: installed, fails, 1.1.0 comes back
	// and serves, and 1.2.0 is never installed again.
	prog(t, 0, hubBin, "release", "add", broken, "--sign", filepath.Join(keys, "release.key"), "--version", "1.2.0", "--data", hubDir)
	serve = startProg(t, agent, "serve", "--data", agentDir, "--listen", "127.0.0.1:0")
	serve.waitPrinted(t, regexp.MustCompile(`Mise à jour 1\.2\.0 téléchargée et vérifiée`), 60*time.Second)
	serve.interrupt(t)
	start = time.Now()
	serve = startProg(t, agent, "serve", "--data", agentDir, "--listen", "127.0.0.1:0")
	serve.waitPrinted(t, regexp.MustCompile(`La version 1\.2\.0 arrêtée sans avoir démarré \(code 2\) : retour à la version 1\.1\.0`), 60*time.Second)
	serve.waitPrinted(t, regexp.MustCompile(`Interface web : http://`), 30*time.Second)
	t.Logf("a release that exits at once: serve started to 1.2.0 rolled back and 1.1.0 serving: %v", time.Since(start).Round(time.Millisecond))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st := updateStatus(t, agent, agentDir)
		if lc := st.Agent.LastCheck; lc != nil && strings.Contains(lc.Message, "1.2.0 n'a pas démarré sur ce poste") {
			if len(st.Agent.Refused) != 1 || st.Agent.Refused[0].Version != "1.2.0" || st.Agent.Pending != nil {
				t.Fatalf("after the rollback: %+v", st.Agent)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no check after the rollback: %+v", st.Agent.LastCheck)
		}
	}
	if out := prog(t, 0, agent, "version"); out != "agent 1.1.0\n" {
		t.Fatalf("after the rollback agent is %q", out)
	}
	serve.interrupt(t)

	// A hub whose database was tampered with (a stolen hub, without the
	// offline key): a newer release's bytes changed in place. The agent
	// downloads them, refuses them, stages nothing, and stays 1.1.0.
	prog(t, 0, hubBin, "release", "add", agent110, "--sign", filepath.Join(keys, "release.key"), "--version", "1.3.0", "--data", hubDir)
	db, err := sqlitex.OpenWriter(filepath.Join(hubDir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	var chunk []byte
	if err := db.QueryRow(`SELECT data FROM release_chunks WHERE release_id = (SELECT id FROM releases WHERE version = '1.3.0') AND n = 3`).Scan(&chunk); err != nil {
		t.Fatal(err)
	}
	chunk = bytes.Clone(chunk)
	chunk[releases.ChunkSize/2] ^= 1
	if _, err := db.ExecContext(context.Background(), `UPDATE release_chunks SET data = ? WHERE release_id = (SELECT id FROM releases WHERE version = '1.3.0') AND n = 3`, chunk); err != nil {
		t.Fatal(err)
	}
	db.Close()
	serve = startProg(t, agent, "serve", "--data", agentDir, "--listen", "127.0.0.1:0")
	serve.waitPrinted(t, regexp.MustCompile(`ne correspond pas à son empreinte signée`), 60*time.Second)
	serve.interrupt(t)
	st = updateStatus(t, agent, agentDir)
	if lc := st.Agent.LastCheck; st.Agent.Pending != nil || lc == nil || !lc.Failed || !strings.Contains(lc.Message, "empreinte signée") {
		t.Fatalf("after a tampered download: %+v %+v", st.Agent.Pending, st.Agent.LastCheck)
	}
	for _, f := range []string{"staged.bin", "download.part"} {
		if _, err := os.Stat(filepath.Join(agentDir, "update", f)); err == nil {
			t.Errorf("%s left after a tampered download", f)
		}
	}
	if out := prog(t, 0, agent, "version"); out != "agent 1.1.0\n" {
		t.Fatalf("after a tampered download agent is %q", out)
	}
	hub.interrupt(t)
}
