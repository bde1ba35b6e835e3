package cli

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"numeribus/internal/browsertest"
)

// TestBrowserAppFirstStartUnlockQuit runs the real agent program as a
// mediator meets it, with a fresh profile: `agent app` starts, opens "the
// browser" (NUMERIBUS_BROWSER, a script noting the address) on its
// interface, where headless Chromium chooses the passphrase, reads the
// recovery code, unlocks, and presses « Quitter »: the process ends with
// exit code 0. Then: the store and the logs are where the profile keeps
// them, and `agent status` finds them there; neither the passphrase nor
// the recovery code is in any file of the profile; started again, the
// program asks to unlock (no first start twice); a second start while it
// runs opens the browser on the first one and ends; Ctrl-C stops it with
// exit code 0.
func TestBrowserAppFirstStartUnlockQuit(t *testing.T) {
	browsertest.ChromiumPath(t)
	bin := buildAgent(t)
	profile := t.TempDir()
	opened := filepath.Join(profile, "navigateur-ouvert.txt")
	script := filepath.Join(t.TempDir(), "navigateur.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '"+opened+"'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + profile, "XDG_CONFIG_HOME=" + filepath.Join(profile, ".config"),
		"NUMERIBUS_BROWSER=" + script}
	data := filepath.Join(profile, ".config", "numeribus", "agent")
	const pass = "trois mots bien choisis"

	first := startApp(t, bin, env, "app", "--listen", "127.0.0.1:0")
	url := waitOpened(t, opened, 1)
	b := browsertest.New(t, strings.TrimSuffix(url, "/"), 1366, 768, 3*time.Minute)
	b.Do("first start", chromedp.Navigate(url), chromedp.WaitVisible(browsertest.CSS("#setup-form")),
		chromedp.SendKeys(browsertest.CSS("#f-passphrase"), pass), chromedp.SendKeys(browsertest.CSS("#f-confirm"), pass))
	b.NextPage("create", chromedp.Click(browsertest.CSS("#setup-form button[type=submit]")), "#recovery-code")
	code := strings.TrimSpace(b.Text("#recovery-code"))
	b.NextPage("continue", chromedp.Click(browsertest.CSS("#setup-continue")), "#f-secret")
	b.Do("unlock", chromedp.SendKeys(browsertest.CSS("#f-secret"), pass))
	b.NextPage("unlock", chromedp.Click(browsertest.CSS("main form button[type=submit]")), "#h-stops")
	b.NextPage("quit", chromedp.Click(browsertest.CSS("#quit-button")), "#stopped")
	if got := first.wait(t, 30*time.Second); got != 0 {
		t.Fatalf("exit code %d after « Quitter »\n%s", got, first.out())
	}

	if _, err := os.Stat(filepath.Join(data, "agent.db")); err != nil {
		t.Fatalf("no store in the profile: %v\n%s", err, first.out())
	}
	logText, err := os.ReadFile(filepath.Join(data, logDir, logName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first start: store created", "store unlocked from the UI", "stopping: « Quitter » in the UI", "agent app stopped"} {
		if !bytes.Contains(logText, []byte(want)) {
			t.Errorf("the log lacks %q:\n%s", want, logText)
		}
	}
	secrets := []string{pass, code, strings.ReplaceAll(code, "-", "")}
	filepath.WalkDir(profile, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret typed or shown in the browser", p)
			}
		}
		return nil
	})
	st := exec.Command(bin, "status")
	st.Env = env
	if out, err := st.CombinedOutput(); err != nil || !strings.Contains(string(out), "Appareil") {
		t.Fatalf("agent status with the profile's default: %v\n%s", err, out)
	}

	// Started again: straight to the unlock page.
	again := startApp(t, bin, env, "app", "--listen", "127.0.0.1:0")
	url = waitOpened(t, opened, 2)
	b.Do("second start", chromedp.Navigate(url), chromedp.WaitVisible(browsertest.CSS("#f-secret")))
	if p := b.Location(); p != url+"unlock" {
		t.Fatalf("second start at %s, want %sunlock", p, url)
	}
	// Double-clicked once more while it runs: the browser opens on it.
	third := startApp(t, bin, env, "app", "--listen", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
	if got := third.wait(t, 20*time.Second); got != 0 {
		t.Fatalf("second instance: exit code %d\n%s", got, third.out())
	}
	if got := waitOpened(t, opened, 3); got != url {
		t.Fatalf("second instance opened %s, want the running one's %s", got, url)
	}
	if err := again.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if got := again.wait(t, 30*time.Second); got != 0 {
		t.Fatalf("exit code %d after Ctrl-C\n%s", got, again.out())
	}
}

// buildAgent builds the agent program (agent/main.go and all) once per
// test binary.
var buildAgent = func() func(t *testing.T) string {
	var once sync.Once
	var path string
	var err error
	var out []byte
	dir, _ := os.MkdirTemp("", "agent-bin-")
	return func(t *testing.T) string {
		t.Helper()
		once.Do(func() {
			path = filepath.Join(dir, "agent")
			goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
			cmd := exec.Command(goBin, "build", "-o", path, "numeribus/agent")
			out, err = cmd.CombinedOutput()
		})
		if err != nil {
			t.Fatalf("go build numeribus/agent: %v\n%s", err, out)
		}
		return path
	}
}()

type appProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	code int
}

func (p *appProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *appProc) out() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// startApp starts the agent program with env only; it is killed at the
// end of the test if still running.
func startApp(t *testing.T, bin string, env []string, args ...string) *appProc {
	t.Helper()
	p := &appProc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code, failing the test past limit.
func (p *appProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		t.Fatalf("still running after %v\n%s", limit, p.out())
		return -1
	}
}

// waitOpened waits until the browser command has been run n times and
// returns the address it was given the nth time.
func waitOpened(t *testing.T, path string, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		b, _ := os.ReadFile(path)
		if lines := strings.Fields(string(b)); len(lines) >= n {
			return lines[n-1]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the browser was not opened a %dth time (%q)", n, b)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
