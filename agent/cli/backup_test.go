package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/sqlitex"
)

// `agent backup` needs no passphrase; `agent backups` lists the copies,
// as a table and as JSON.
func TestBackupCommands(t *testing.T) {
	dir := initStore(t)
	mustAgent(t, "", "seed", "--data", dir, "--n", "20")
	r := agent(t, "", "", "backup", "--data", dir)
	if r.code != ExitOK || !strings.Contains(r.stdout, "Sauvegarde faite") || !strings.Contains(r.stdout, filepath.Join(dir, "backups")) {
		t.Fatalf("backup: %+v", r)
	}
	r = agent(t, "", "", "backups", "--data", dir)
	if r.code != ExitOK || !strings.Contains(r.stdout, "manuelle") || strings.Count(r.stdout, "agent-") != 1 {
		t.Fatalf("backups: %+v", r)
	}
	r = agent(t, "", "", "backups", "--data", dir, "--json")
	var list []backupJSON
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 {
		t.Fatalf("backups --json: %v %s", err, r.stdout)
	}
	if b := list[0]; b.Reason != "manual" || b.Records == 0 || b.LastSeq == 0 || b.Error != "" {
		t.Errorf("backup listed as %+v", b)
	}
	empty := initStore(t)
	if r := agent(t, "", "", "backups", "--data", empty); r.code != ExitOK || !strings.Contains(r.stdout, "Aucune sauvegarde") {
		t.Errorf("no backups: %+v", r)
	}
}

// A store damaged on the disk: every command says so in French, with the
// exact command that restores the last backup; that command, typed as
// printed, brings the store back, damaged store aside, and the agent
// works again. The data directory has a space in its name, as a Windows
// profile's has.
func TestDamagedStoreWayOut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Marie Dupont", "agent")
	mustAgent(t, "", "init", "--data", dir)
	mustAgent(t, "", "seed", "--data", dir, "--n", "30")
	want := mustAgent(t, "", "list", "--data", dir, "--json").stdout
	mustAgent(t, "", "backup", "--data", dir)
	mustAgent(t, "", "seed", "--data", dir, "--n", "5", "--seed", "2") // after the copy, never sent
	damagePage(t, filepath.Join(dir, store.FileName), "records")

	r := agent(t, "", testPass, "status", "--data", dir)
	if r.code != ExitState || !strings.Contains(r.stderr, "endommagé") || strings.Contains(r.stderr, "database damaged") {
		t.Fatalf("status of a damaged store: %+v", r)
	}
	cmd := regexp.MustCompile(`(?m)^\s*(agent restore .*)$`).FindStringSubmatch(r.stderr)
	if cmd == nil || !strings.Contains(cmd[1], `"`+dir+`"`) {
		t.Fatalf("no restore command (with the directory quoted) in:\n%s", r.stderr)
	}
	args := shellWords(cmd[1])[1:]
	r = agent(t, "", "", args...)
	if r.code != ExitOK || !strings.Contains(r.stdout, "restaurée") || !strings.Contains(r.stdout, "endommagé est gardé de côté") {
		t.Fatalf("%s: %+v", cmd[1], r)
	}
	if got := mustAgent(t, "", "list", "--data", dir, "--json").stdout; got != want {
		t.Errorf("the restored store lists %d lines, the copy held %d", strings.Count(got, "\n"), strings.Count(want, "\n"))
	}
	mustAgent(t, "", "seed", "--data", dir, "--n", "3", "--seed", "3")
	r = agent(t, "", "", "backups", "--data", dir)
	if !strings.Contains(r.stdout, "mise de côté") {
		t.Errorf("the damaged store is not among the backups:\n%s", r.stdout)
	}
}

// damagePage overwrites the start of table's root page in the database
// file p, as a failing disk would.
func damagePage(t *testing.T, p, table string) {
	t.Helper()
	db, err := sqlitex.OpenCopy(p)
	if err != nil {
		t.Fatal(err)
	}
	var root, size int64
	err = db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name = ?`, table).Scan(&root)
	if err == nil {
		err = db.QueryRow(`PRAGMA page_size`).Scan(&size)
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 64), (root-1)*size); err != nil {
		t.Fatal(err)
	}
}

// shellWords splits a command line as a shell would, for the double
// quotes shellQuote writes.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	in, started := false, false
	for _, r := range s {
		switch {
		case r == '"':
			in, started = !in, true
		case r == ' ' && !in:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

// A restore is refused while another program has the store open, and
// while changes are not sent unless --force; the message says what to do.
func TestRestoreRefusals(t *testing.T) {
	dir := initStore(t)
	mustAgent(t, "", "seed", "--data", dir, "--n", "10")
	mustAgent(t, "", "backup", "--data", dir)
	if r := agent(t, "", "", "restore", "--data", dir); r.code != ExitUsage {
		t.Errorf("restore without --latest or --from: %+v", r)
	}
	s, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := agent(t, "", "", "restore", "--data", dir, "--latest")
	s.Close()
	if r.code != ExitState || !strings.Contains(r.stderr, "ouvert par un autre programme") {
		t.Fatalf("restore beside an open store: %+v", r)
	}
	// Everything so far is in the copy: restored as is. Then changes
	// made after it, not sent, stop the next restore.
	if r := agent(t, "", "", "restore", "--data", dir, "--latest"); r.code != ExitOK {
		t.Fatalf("restore of a copy holding every change: %+v", r)
	}
	mustAgent(t, "", "seed", "--data", dir, "--n", "2", "--seed", "9")
	r = agent(t, "", "", "restore", "--data", dir, "--latest")
	if r.code != ExitState || !strings.Contains(r.stderr, "pas encore été envoyées") || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("restore with changes not sent: %+v", r)
	}
	r = agent(t, "", "", "restore", "--data", dir, "--latest", "--force")
	if r.code != ExitOK || !strings.Contains(r.stdout, "celle d'aujourd'hui") {
		t.Fatalf("restore --force: %+v", r)
	}
	r = agent(t, "", "", "restore", "--data", dir, "--from", filepath.Join(t.TempDir(), "absent.db"))
	if r.code == ExitOK {
		t.Fatalf("restore of a missing file: %+v", r)
	}
}

// The messages of the disk and backup errors are French and say what to
// do.
func TestBackupMessages(t *testing.T) {
	for err, want := range map[error]string{
		&store.DiskLowError{Avail: 10 << 20}: "il reste 10 Mo",
		store.ErrNoRoomForBackup:             "pas assez de place",
		store.ErrOtherDevice:                 "autre poste",
	} {
		if got := message(err); !strings.Contains(got, want) {
			t.Errorf("message(%v) = %q, want %q in it", err, got, want)
		}
	}
}

// `agent serve`, and `agent app` (the double-clicked program), on a
// damaged store neither exit nor start the interface: they serve a page
// that offers to restore the last backup, and once restored through it,
// start as usual with the restored store.
func TestServeDamagedStoreRestoresFromThePage(t *testing.T) {
	for _, cmd := range [][]string{{"serve"}, {"app", "--no-browser"}} {
		t.Run(cmd[0], func(t *testing.T) { serveDamagedStore(t, cmd) })
	}
}

func serveDamagedStore(t *testing.T, cmd []string) {
	dir := initStore(t)
	mustAgent(t, "", "seed", "--data", dir, "--n", "10")
	mustAgent(t, "", "backup", "--data", dir)
	damagePage(t, filepath.Join(dir, store.FileName), "records")

	out := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		args := append(append([]string{}, cmd...), "--data", dir, "--listen", "127.0.0.1:0")
		done <- Main(ctx, args, Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, KDF: testKDF,
			Getenv: func(k string) string {
				if k == "NUMERIBUS_PASSPHRASE" {
					return testPass
				}
				return ""
			}})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the agent did not stop")
		}
	}()
	base := waitFor(t, out, regexp.MustCompile(`marche à suivre est sur (http://[0-9.:]+)/`))
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(page), "endommagé") || !strings.Contains(string(page), "agent restore --data") {
		t.Fatalf("damaged page: %d\n%s", res.StatusCode, page)
	}
	name := regexp.MustCompile(`name="sauvegarde" value="([^"]+)"`).FindStringSubmatch(string(page))
	if name == nil {
		t.Fatalf("no restore button:\n%s", page)
	}
	// A request naming another file restores nothing.
	res, err = http.PostForm(base+"/restaurer", url.Values{"sauvegarde": {"../agent.db"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if bs, _ := store.Backups(context.Background(), dir); len(bs) != 1 {
		t.Fatalf("a forged request moved files: %d backups", len(bs))
	}
	res, err = http.PostForm(base+"/restaurer", url.Values{"sauvegarde": {name[1]}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "Sauvegarde restaurée") {
		t.Fatalf("restore through the page: %d\n%s", res.StatusCode, page)
	}
	waitFor(t, out, regexp.MustCompile(`(Synchronisation en arrière-plan)`))
	all := regexp.MustCompile(`Interface web : (http://[0-9.:]+)/`).FindAllStringSubmatch(out.String(), -1)
	res, err = http.Get(all[len(all)-1][1] + "/unlock")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || strings.Contains(string(page), "endommagé") {
		t.Fatalf("the interface after the restore answers %d\n%s", res.StatusCode, page)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits for re to match the output and returns its first group.
func waitFor(t *testing.T, out *lockedBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %v in:\n%s", re, out.String())
	return ""
}
