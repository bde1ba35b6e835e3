package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"numeribus/agent/update"
	"numeribus/internal/release"
)

// `agent status` says the version, and an update on its way: being
// downloaded (not verified), then staged (verified).
func TestStatusShowsVersionAndPendingUpdate(t *testing.T) {
	dir := initStore(t)
	v := Version
	t.Cleanup(func() { Version = v })

	r := mustAgent(t, "", "status", "--data", dir)
	if !strings.Contains(r.stdout, "Version de l'agent") || !strings.Contains(r.stdout, "version de développement") {
		t.Fatalf("status of a development build:\n%s", r.stdout)
	}
	Version = "1.0.0"
	r = mustAgent(t, "", "status", "--data", dir)
	if !strings.Contains(r.stdout, "1.0.0 ("+update.Platform()+")") || !strings.Contains(r.stdout, "pas encore épinglée") || strings.Contains(r.stdout, "Mise à jour en attente") {
		t.Fatalf("status of 1.0.0 without update:\n%s", r.stdout)
	}

	u := filepath.Join(dir, update.SubDir)
	os.MkdirAll(u, 0o700)
	info := release.Info{Version: "1.1.0", OS: "linux", Arch: "amd64", Size: 3 << 20}
	b, _ := json.Marshal(info)
	os.WriteFile(filepath.Join(u, "download.json"), b, 0o600)
	os.WriteFile(filepath.Join(u, "download.part"), make([]byte, 1<<20), 0o600)
	r = mustAgent(t, "", "status", "--data", dir)
	if !strings.Contains(r.stdout, "1.1.0, non vérifiée : téléchargement en cours (1,0\u202fMio sur 3,0\u202fMio)") {
		t.Fatalf("status while downloading:\n%s", r.stdout)
	}

	os.Remove(filepath.Join(u, "download.json"))
	os.Rename(filepath.Join(u, "download.part"), filepath.Join(u, "staged.bin"))
	info.Size = 1 << 20
	b, _ = json.Marshal(update.Staged{Info: info})
	os.WriteFile(filepath.Join(u, "staged.json"), b, 0o600)
	r = mustAgent(t, "", "status", "--data", dir)
	if !strings.Contains(r.stdout, "1.1.0, vérifiée : installée au prochain démarrage") {
		t.Fatalf("status with a staged update:\n%s", r.stdout)
	}
	var out struct {
		Agent update.Status `json:"agent"`
	}
	r = mustAgent(t, "", "status", "--data", dir, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if a := out.Agent; a.Version != "1.0.0" || !a.Updates || a.Pending == nil || !a.Pending.Verified || a.Pending.Version != "1.1.0" {
		t.Fatalf("status --json: %+v", a)
	}
}

func TestDataDirOfACommandLine(t *testing.T) {
	e := &Env{Getenv: func(k string) string {
		if k == "NUMERIBUS_DATA" {
			return "/env/dir"
		}
		return ""
	}}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "/env/dir"},
		{[]string{"serve", "--data", "/a"}, "/a"},
		{[]string{"serve", "-data", "/b", "--listen", "x"}, "/b"},
		{[]string{"serve", "--listen", "x", "--data=/c"}, "/c"},
		{[]string{"serve", "-data=/d"}, "/d"},
	} {
		if got := dataDirOf(e, tt.args); got != tt.want {
			t.Errorf("dataDirOf(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
