package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUserAddAndList(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("une phrase assez longue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := hub("user", "add", "--data", dir, "--email", "Coord@CD54.fr", "--role", "coordinator", "--territory", "54", "--territory", "88,54395", "--password-file", pw); code != ExitOK {
		t.Fatalf("user add: %d %s", code, out)
	}
	if code, out := hub("user", "add", "--data", dir, "--email", "coord@cd54.fr", "--role", "viewer", "--password-file", pw); code != ExitInvalid || !strings.Contains(out, "existe déjà") {
		t.Fatalf("duplicate: %d %s", code, out)
	}
	if code, out := hub("user", "add", "--data", dir, "--email", "x@cd54.fr", "--role", "coordinator", "--password-file", pw); code != ExitUsage || !strings.Contains(out, "territoire") {
		t.Fatalf("coordinator without territory: %d %s", code, out)
	}
	if code, out := hub("user", "add", "--data", dir, "--email", "x@cd54.fr", "--role", "chef", "--password-file", pw); code != ExitUsage {
		t.Fatalf("unknown role: %d %s", code, out)
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("court\n"), 0o600)
	if code, out := hub("user", "add", "--data", dir, "--email", "y@cd54.fr", "--role", "viewer", "--password-file", short); code != ExitUsage || !strings.Contains(out, "au moins") {
		t.Fatalf("short password: %d %s", code, out)
	}
	code, out := hub("user", "list", "--data", dir, "--json")
	if code != ExitOK {
		t.Fatalf("user list: %d %s", code, out)
	}
	var list []struct {
		Email       string
		Role        string
		Territories []string
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(list) != 1 || list[0].Email != "coord@cd54.fr" || list[0].Role != "coordinator" || strings.Join(list[0].Territories, " ") != "54 54395 88" {
		t.Fatalf("list: %+v", list)
	}
	if code, out := hub("user", "list", "--data", dir); code != ExitOK || !strings.Contains(out, "coord@cd54.fr") {
		t.Fatalf("user list: %d %s", code, out)
	}
}

// TestServeMountsTheDashboard checks that `hub serve` answers the
// dashboard on / beside /healthz (the sync endpoint is covered by the
// syncserver and e2e tests).
func TestServeMountsTheDashboard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *Server, 1)
	done := make(chan int, 1)
	go func() {
		var out strings.Builder
		done <- Main(ctx, []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--insecure"},
			Env{Stdout: &out, Stderr: &out, Ready: func(s *Server) { ready <- s }})
	}()
	var s *Server
	select {
	case s = <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("hub did not start")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get("http://" + s.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("GET /: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, err = c.Get("http://" + s.Addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /login: %d", res.StatusCode)
	}
	res, err = c.Get("http://" + s.Addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %d", res.StatusCode)
	}
	// A plain GET of /sync still reaches the sync endpoint (which wants
	// a websocket upgrade), not the dashboard's login redirect.
	res, err = c.Get("http://" + s.Addr + "/sync")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusSeeOther {
		t.Fatalf("/sync went to the dashboard")
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("serve exit %d", code)
	}
}
