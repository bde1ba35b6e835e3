package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"numeribus/hub/accounts"
	"numeribus/hub/retain/retaintest"
	"numeribus/hub/store/sqlite"
)

// auditActions returns the actions of the hub's audit log in dir, newest
// first, with what they name.
func auditActions(t *testing.T, dir string) []string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := st.AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range log {
		out = append(out, string(e.Action)+" "+e.What)
	}
	return out
}

func TestRetentionShowSet(t *testing.T) {
	dir := t.TempDir()
	code, out := hub("retention", "show", "--data", dir)
	if code != ExitOK || !strings.Contains(out, "24 mois (2 ans) après le dernier contact avec la personne (par défaut)") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	if code, out := hub("retention", "set", "--data", dir, "--kind", "identite", "--months", "1 an"); code != ExitOK || !strings.Contains(out, "12 mois (1 an)") {
		t.Fatalf("set: %d %s", code, out)
	}
	code, out = hub("retention", "show", "--data", dir, "--json")
	if code != ExitOK || !strings.Contains(out, `"identite":12`) || !strings.Contains(out, `"notes":24`) {
		t.Fatalf("show --json: %d %s", code, out)
	}
	for _, bad := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--kind", "photos", "--months", "3"}, ExitUsage, "one of identite"},
		{[]string{"--kind", "identite", "--months", "120"}, ExitInvalid, "hors des bornes"},
		{[]string{"--kind", "identite", "--months", "deux ans"}, ExitUsage, "illisible"},
		{[]string{"--kind", "identite"}, ExitUsage, "--months N or --default"},
	} {
		code, out := hub(append([]string{"retention", "set", "--data", dir}, bad.args...)...)
		if code != bad.code || !strings.Contains(out, bad.says) {
			t.Errorf("set %v: %d %s, want %d and %q", bad.args, code, out, bad.code, bad.says)
		}
	}
	if code, out := hub("retention", "set", "--data", dir, "--kind", "identite", "--default"); code != ExitOK || !strings.Contains(out, "24 mois") {
		t.Fatalf("set --default: %d %s", code, out)
	}
	if _, out := hub("retention", "show", "--data", dir); !strings.Contains(out, "24 mois (2 ans) après le dernier contact avec la personne (par défaut)") {
		t.Errorf("after --default:\n%s", out)
	}
	log := auditActions(t, dir)
	if len(log) != 2 || !strings.HasPrefix(log[0], string(accounts.ActionRetentionSet)+" identite: 24 mois (avant : 12 mois") ||
		!strings.HasPrefix(log[1], string(accounts.ActionRetentionSet)+" identite: 12 mois") {
		t.Errorf("audit log: %q", log)
	}
}

// `hub access` writes the person's dossier, readable, and the audit log
// says so; `hub retention purge` erases what is due and is audited too.
func TestAccessAndPurge(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := retaintest.Seed(t, st)
	st.Close()
	out := filepath.Join(t.TempDir(), "acces.html")
	if code, msg := hub("access", "--data", dir, "--person", w.Ana.String(), "--out", filepath.Join(dir, "acces.html")); code != ExitUsage || !strings.Contains(msg, "est dans le dossier des données") {
		t.Fatalf("a dossier inside the data directory: %d %s", code, msg)
	}
	if code, msg := hub("access", "--data", dir, "--person", "pas-un-id", "--out", out); code != ExitUsage {
		t.Fatalf("a bad id: %d %s", code, msg)
	}
	code, msg := hub("access", "--data", dir, "--person", w.Ana.String(), "--out", out)
	if code != ExitOK || !strings.Contains(msg, "6 enregistrement(s)") {
		t.Fatalf("access: %d %s", code, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<html lang=\"fr\">", "<dt>Nom</dt><dd>" + retaintest.AnaName + "</dd>", "<dt>Téléphone</dt><dd>" + retaintest.AnaPhone + "</dd>",
		"Notes du médiateur</dt><dd>" + retaintest.AnaNote, "Commentaire</dt><dd>" + retaintest.AnaDiag, "(poste bus-1)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the dossier lacks %q", want)
		}
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("dossier readable by others: %v", fi.Mode())
	}
	txt := filepath.Join(t.TempDir(), "acces.txt")
	if code, _ := hub("access", "--data", dir, "--person", w.Ana.String(), "--out", txt); code != ExitOK {
		t.Fatal("access to a text file failed")
	}
	if b, _ := os.ReadFile(txt); !strings.Contains(string(b), "Nom : "+retaintest.AnaName) {
		t.Errorf("text dossier:\n%s", b)
	}
	// The purge runs at today's date: the world's 2024 data is due.
	code, msg = hub("retention", "purge", "--data", dir)
	if code != ExitOK || !strings.Contains(msg, "1 identities, 2 assessments and 1 activities' notes erased (5 records)") {
		t.Fatalf("purge: %d %s", code, msg)
	}
	log := auditActions(t, dir)
	if len(log) != 3 || !strings.HasPrefix(log[0], "retention_purge 1 identités") || log[2] != "access_export personne "+w.Ana.String() {
		t.Errorf("audit log: %q", log)
	}
}
