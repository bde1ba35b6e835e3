package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `agent access` writes the person's dossier, readable by its owner
// only, never inside the data directory; read back, it says who she is,
// what she agreed to, and what was done with her.
func TestAccessCommand(t *testing.T) {
	dir := initStore(t)
	const b = "01900000-0000-7000-8000-000000000001"
	const c = "01900000-0000-7000-8000-000000000002"
	const a = "01900000-0000-7000-8000-000000000003"
	in := `{"kind":"beneficiary","id":"` + b + `","prenom":"Gaëlle","nom":"Fournier-Test","telephone":"0611223344","genre":"feminin","commune":"23096"}
{"kind":"consent","id":"` + c + `","beneficiaire":"` + b + `","finalites":["suivi_nominatif"],"mode":"oral_trace","date":"2026-02-03"}
{"kind":"activity","id":"` + a + `","type":"individuel","date":"2026-02-03","duree":30,"type_lieu":"lieu_activite","commune":"23096","thematiques":["email"],"beneficiaire":"` + b + `","notes":"revoir mardi"}`
	mustAgent(t, in, "import", "--data", dir)
	if r := agent(t, "", testPass, "access", "--data", dir, "--person", b, "--out", filepath.Join(dir, "x.html")); r.code != ExitUsage || !strings.Contains(r.stderr, "dans le dossier des données") {
		t.Fatalf("inside the data directory: %+v", r)
	}
	if r := agent(t, "", testPass, "access", "--data", dir, "--person", b); r.code != ExitUsage {
		t.Fatalf("no --out: %+v", r)
	}
	out := filepath.Join(t.TempDir(), "acces.txt")
	r := mustAgent(t, "", "access", "--data", dir, "--person", b, "--out", out)
	if !strings.Contains(r.stdout, "3 enregistrement(s)") {
		t.Errorf("access: %s", r.stdout)
	}
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{"Prénom : Gaëlle", "Nom : Fournier-Test", "Téléphone : 0611223344", "Commune de résidence : Guéret (23096)",
		"Finalités acceptées : Suivi nominatif (garder le nom et les coordonnées pour suivre la personne)", "Recueilli : Oral, tracé par le médiateur",
		"Notes du médiateur : revoir mardi"} {
		if !lines[want] {
			t.Errorf("the document lacks the line %q:\n%s", want, body)
		}
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("document readable by others: %v", fi.Mode())
	}
}
