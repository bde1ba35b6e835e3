package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"numeribus/hub/releases/releasestest"
)

// The release subcommands: a key pair made once, a binary signed with it
// directly or offline, refused for the wrong platform, another key, bytes
// that are not the signed ones, a development version, twice.
func TestReleaseCommands(t *testing.T) {
	dir, keys := t.TempDir(), t.TempDir()
	key := filepath.Join(keys, "release.key")
	code, out := hub("release", "keygen", "--out", key)
	if code != ExitOK || !strings.Contains(out, "OFFLINE") {
		t.Fatalf("keygen: %d %s", code, out)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, %v", fi.Mode(), err)
	}
	if _, err := os.Stat(key + ".pub"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(key)
	if code, out := hub("release", "keygen", "--out", key); code != ExitState || !strings.Contains(out, "not overwritten") {
		t.Fatalf("keygen over an existing key: %d %s", code, out)
	}
	if after, _ := os.ReadFile(key); string(after) != string(before) {
		t.Fatal("the existing key was changed")
	}

	win := filepath.Join(keys, "agent.exe")
	os.WriteFile(win, releasestest.Executable(t, "windows", "amd64", 50_000), 0o644)
	lin := filepath.Join(keys, "agent")
	os.WriteFile(lin, releasestest.Executable(t, "linux", "amd64", 60_000), 0o755)

	if code, out := hub("release", "list", "--data", dir); code != ExitOK || !strings.Contains(out, "No release yet") {
		t.Fatalf("list before any release: %d %s", code, out)
	}
	// Signed and added in one go, the file before or after the flags.
	code, out = hub("release", "add", win, "--sign", key, "--version", "v1.4.0", "--os", "windows", "--arch", "amd64", "--data", dir)
	if code != ExitOK || !strings.Contains(out, "Release 1.4.0 for windows/amd64 added") {
		t.Fatalf("add: %d %s", code, out)
	}
	// Signed offline, added with the signature file.
	if code, out := hub("release", "sign", "--key", key, "--version", "1.4.0", lin); code != ExitOK || !strings.Contains(out, lin+".sig") {
		t.Fatalf("sign: %d %s", code, out)
	}
	if code, out := hub("release", "add", lin, "--signature", lin+".sig", "--data", dir); code != ExitOK || !strings.Contains(out, "linux/amd64") {
		t.Fatalf("add --signature: %d %s", code, out)
	}

	refused := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"wrong platform", []string{"add", lin, "--sign", key, "--version", "1.5.0", "--os", "windows", "--arch", "amd64"}, ExitInvalid, "linux/amd64 executable, not windows/amd64"},
		{"development version", []string{"add", win, "--sign", key, "--version", "v1.4.0-3-gc212498"}, ExitInvalid, "développement"},
		{"the same release twice", []string{"add", win, "--sign", key, "--version", "1.4.0"}, ExitInvalid, "already stored"},
		{"neither key nor signature", []string{"add", win, "--version", "1.5.0"}, ExitUsage, "--sign"},
		{"a public key to sign", []string{"add", win, "--sign", key + ".pub", "--version", "1.5.0"}, ExitInvalid, "public key"},
		{"signature of other bytes", []string{"add", win, "--signature", lin + ".sig"}, ExitInvalid, "windows/amd64 executable, not linux/amd64"},
	}
	for _, tt := range refused {
		code, out := hub(append(append([]string{"release"}, tt.args...), "--data", dir)...)
		if code != tt.code || !strings.Contains(out, tt.says) {
			t.Errorf("%s: %d %s; want %d and %q", tt.name, code, out, tt.code, tt.says)
		}
	}
	// The signed file changed after signing: one byte.
	b, _ := os.ReadFile(lin)
	b[len(b)-1] ^= 1
	os.WriteFile(lin, b, 0o755)
	if code, out := hub("release", "add", lin, "--signature", lin+".sig", "--data", dir); code != ExitInvalid || !strings.Contains(out, "does not describe") {
		t.Fatalf("tampered after signing: %d %s", code, out)
	}
	// Another key: refused, the hub keeps the one agents pinned.
	other := filepath.Join(keys, "other.key")
	hub("release", "keygen", "--out", other)
	if code, out := hub("release", "add", win, "--sign", other, "--version", "1.5.0", "--data", dir); code != ExitState || !strings.Contains(out, "another key") {
		t.Fatalf("another key: %d %s", code, out)
	}

	code, out = hub("release", "list", "--data", dir, "--json")
	var list struct {
		Key      string `json:"key"`
		Releases []struct {
			Version, OS, Arch string
			Latest            bool `json:"latest"`
		} `json:"releases"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &list) != nil || len(list.Releases) != 2 || list.Key == "" {
		t.Fatalf("list --json: %d %s", code, out)
	}
	if r := list.Releases[0]; r.Version != "1.4.0" || r.OS != "windows" || !r.Latest {
		t.Errorf("first release listed as %+v", r)
	}
	if code, out := hub("release", "list", "--data", dir); code != ExitOK || !strings.Contains(out, "Release key "+list.Key) || strings.Count(out, "latest") != 2 {
		t.Fatalf("list: %d %s", code, out)
	}
}
