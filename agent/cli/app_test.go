package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The data directory of a double-clicked agent is under the person's
// profile: %APPDATA%\Numeribus on Windows, the usual config dir elsewhere.
func TestDefaultDataDir(t *testing.T) {
	cfg := func(d string, err error) func() (string, error) { return func() (string, error) { return d, err } }
	for _, tc := range []struct {
		goos string
		dir  func() (string, error)
		want string
	}{
		{"windows", cfg(`C:\Users\Ana\AppData\Roaming`, nil), filepath.Join(`C:\Users\Ana\AppData\Roaming`, "Numeribus")},
		{"linux", cfg("/home/ana/.config", nil), "/home/ana/.config/numeribus/agent"},
		{"darwin", cfg("/Users/ana/Library/Application Support", nil), "/Users/ana/Library/Application Support/numeribus/agent"},
		{"linux", cfg("", errors.New("neither $XDG_CONFIG_HOME nor $HOME are defined")), ""},
	} {
		if got := defaultDataDir(tc.goos, tc.dir); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.goos, got, tc.want)
		}
	}
}

// Double-clicked on Windows (no arguments) the agent is `agent app`;
// elsewhere no arguments still print the usage.
func TestWithDefaultCommand(t *testing.T) {
	for _, tc := range []struct {
		goos string
		args []string
		want []string
	}{
		{"windows", nil, []string{"app"}},
		{"windows", []string{"status"}, []string{"status"}},
		{"linux", nil, nil},
		{"darwin", []string{"version"}, []string{"version"}},
	} {
		if got := withDefaultCommand(tc.goos, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: %q, want %q", tc.goos, tc.args, got, tc.want)
		}
	}
	if r := agent(t, "", "", "app", "--passphrase-file", "x"); r.code != ExitUsage || !strings.Contains(r.stderr, "navigateur") {
		t.Errorf("app --passphrase-file: exit %d, %q", r.code, r.stderr)
	}
}

func TestBrowserCommand(t *testing.T) {
	const u = "http://127.0.0.1:7070/"
	for _, tc := range []struct {
		goos, override string
		want           []string
	}{
		{"windows", "", []string{"rundll32", "url.dll,FileProtocolHandler", u}},
		{"darwin", "", []string{"open", u}},
		{"linux", "", []string{"xdg-open", u}},
		{"freebsd", "", []string{"xdg-open", u}},
		{"windows", ` C:\firefox.exe `, []string{`C:\firefox.exe`, u}},
	} {
		if got := browserCommand(tc.goos, tc.override, u); !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: %q, want %q", tc.goos, tc.override, got, tc.want)
		}
	}
}

// The log never grows past its cap: keep+1 files of at most max bytes,
// the newest lines in agent.log, the oldest dropped, no line cut in two;
// opened again, it appends.
func TestRotatingLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "agent.log")
	const max, keep = 1000, 2
	w, err := openLog(path, max, keep)
	if err != nil {
		t.Fatal(err)
	}
	const lines = 200 // 200 × 31 bytes: a dozen files' worth
	for i := range lines {
		if _, err := fmt.Fprintf(w, "ligne %04d %s\n", i, strings.Repeat("x", 19)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	var all []string
	for _, name := range []string{"agent.log.2", "agent.log.1", "agent.log"} {
		b, err := os.ReadFile(filepath.Join(dir, "logs", name))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > max {
			t.Errorf("%s: %d bytes, over the %d cap", name, len(b), max)
		}
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s: a line cut in two", name)
		}
		all = append(all, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "agent.log.3")); !os.IsNotExist(err) {
		t.Errorf("agent.log.3 kept: %v", err)
	}
	if last := all[len(all)-1]; !strings.HasPrefix(last, fmt.Sprintf("ligne %04d", lines-1)) {
		t.Errorf("newest line %q", last)
	}
	for i := 1; i < len(all); i++ { // consecutive, oldest first
		var a, b int
		fmt.Sscanf(all[i-1], "ligne %d", &a)
		fmt.Sscanf(all[i], "ligne %d", &b)
		if b != a+1 {
			t.Fatalf("lines %d then %d", a, b)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("log mode %v: readable by others", fi.Mode().Perm())
	}
	w, err = openLog(path, max, keep)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "après")
	w.Close()
	if b, _ := os.ReadFile(path); !strings.HasSuffix(string(b), "après\n") || len(b) == len("après\n") {
		t.Errorf("reopened: %q", b)
	}
}

// Two servers take turns on one listener: a request sent between the
// turns waits and is answered by the second, none is refused.
func TestHandoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newHandoff(ln)
	defer h.Close()
	url := "http://" + h.Addr().String() + "/"
	serve := func(name string) (*http.Server, chan error) {
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
		done := make(chan error, 1)
		go func() { done <- s.Serve(h.turn()) }()
		return s, done
	}
	// get returns the answer's body, or the error (it runs in another
	// goroutine too).
	get := func() string {
		c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	first, firstDone := serve("premier")
	if got := get(); got != "premier" {
		t.Fatalf("first turn: %q", got)
	}
	first.Close()
	if err := <-firstDone; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("first turn ended with %v", err)
	}
	answer := make(chan string, 1)
	go func() { answer <- get() }() // no server's turn yet
	time.Sleep(100 * time.Millisecond)
	second, secondDone := serve("second")
	if got := <-answer; got != "second" {
		t.Fatalf("between turns: %q", got)
	}
	second.Close()
	<-secondDone
	h.Close()
	if _, err := net.DialTimeout("tcp", h.Addr().String(), time.Second); err == nil {
		t.Fatal("listener still open after Close")
	}
}
