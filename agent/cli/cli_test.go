package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"numeribus/internal/fixture"
	"numeribus/internal/jsonl"
	"numeribus/internal/seal"
)

// testKDF keeps key derivation cheap; its parameters are stored in the
// slot, so child processes unlock with them too.
var testKDF = seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

const testPass = "phrase de passe de test"

type run struct {
	code           int
	stdout, stderr string
}

// agent runs the command line in-process with NUMERIBUS_PASSPHRASE set
// to pass (unset when empty).
func agent(t testing.TB, stdin string, pass string, args ...string) run {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, KDF: testKDF,
		Getenv: func(k string) string {
			if k == "NUMERIBUS_PASSPHRASE" {
				return pass
			}
			return ""
		}}
	code := Main(context.Background(), args, env)
	return run{code, out.String(), errb.String()}
}

func mustAgent(t testing.TB, stdin string, args ...string) run {
	t.Helper()
	r := agent(t, stdin, testPass, args...)
	if r.code != 0 {
		t.Fatalf("agent %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func initStore(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	r := mustAgent(t, "", "init", "--data", dir)
	if !strings.Contains(r.stdout, "CODE DE SECOURS") {
		t.Fatalf("init printed no recovery code:\n%s", r.stdout)
	}
	return dir
}

func writeFile(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// seedLines returns n activities' worth of fixture records as JSON Lines.
func seedLines(t testing.TB, n int, seed uint64) []string {
	t.Helper()
	var lines []string
	for _, r := range fixture.Generate(fixture.Options{N: n, Seed: seed}).Records() {
		b, err := jsonl.EncodeLine(r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	return lines
}

func TestUsageAndHelp(t *testing.T) {
	if r := agent(t, "", "", "frobnicate"); r.code != ExitUsage || !strings.Contains(r.stderr, "commande inconnue") {
		t.Fatalf("unknown command: %+v", r)
	}
	if r := agent(t, "", ""); r.code != ExitUsage || !strings.Contains(r.stdout, "Commandes") {
		t.Fatalf("no command: %+v", r)
	}
	for _, c := range commands {
		if c.name == "version" || c.name == "consent" {
			continue
		}
		if r := agent(t, "", "", c.name, "--help"); r.code != ExitOK || !strings.Contains(r.stderr, "Usage : agent "+c.name) {
			t.Errorf("%s --help: %+v", c.name, r)
		}
	}
	if r := agent(t, "", "", "list", "--bogus"); r.code != ExitUsage {
		t.Fatalf("bad flag: %+v", r)
	}
	// One language, said once; options written as the usage writes them.
	r := agent(t, "", "", "seed", "--n", "abc")
	if r.code != ExitUsage || strings.Count(r.stderr, "abc") != 1 || !strings.Contains(r.stderr, "valeur invalide") ||
		strings.Contains(r.stderr, "invalid value") || strings.Contains(r.stderr, "parse error") {
		t.Errorf("--n abc: %+v", r)
	}
	if r := agent(t, "", "", "seed", "--help"); !strings.Contains(r.stderr, "  --data ") || strings.Contains(r.stderr, "  -data") {
		t.Errorf("help lists -data, not --data: %s", r.stderr)
	}
	if r := agent(t, "", "", "--version"); r.code != ExitOK || !strings.HasPrefix(r.stdout, "agent ") {
		t.Errorf("--version: %+v", r)
	}
	missing := filepath.Join(t.TempDir(), "absent")
	if r := agent(t, "", testPass, "list", "--data", missing); r.code != ExitState || !strings.Contains(r.stderr, "aucun magasin") ||
		strings.Contains(r.stderr, "no store") {
		t.Errorf("no store: %+v", r)
	}
}

// An empty passphrase is said to be empty, not wrong.
func TestEmptyPassphraseIsToldEmpty(t *testing.T) {
	dir := initStore(t)
	for content, want := range map[string]string{"\n": "vide", "   \n": "aucune phrase de passe saisie"} {
		r := agent(t, "", "", "list", "--data", dir, "--passphrase-file", writeFile(t, content))
		if r.code != ExitAuth || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "incorrect") {
			t.Errorf("passphrase file %q: %+v", content, r)
		}
	}
}

func TestInitRefusesExistingAndShortPassphrase(t *testing.T) {
	dir := initStore(t)
	if r := agent(t, "", testPass, "init", "--data", dir); r.code != ExitState || !strings.Contains(r.stderr, "existe déjà") {
		t.Fatalf("second init: %+v", r)
	}
	if r := agent(t, "", "court", "init", "--data", filepath.Join(t.TempDir(), "x")); r.code != ExitUsage {
		t.Fatalf("short passphrase: %+v", r)
	}
	if r := agent(t, "", "", "init", "--data", filepath.Join(t.TempDir(), "x")); r.code != ExitAuth {
		t.Fatalf("no passphrase and no terminal: %+v", r)
	}
	// --passphrase-file wins and its trailing newline is not part of it.
	pf := writeFile(t, "depuis un fichier\n")
	d2 := filepath.Join(t.TempDir(), "a")
	if r := agent(t, "", "", "init", "--data", d2, "--passphrase-file", pf); r.code != 0 {
		t.Fatalf("init from file: %+v", r)
	}
	if r := agent(t, "", "depuis un fichier", "status", "--data", d2); r.code != 0 {
		t.Fatalf("status: %+v", r)
	}
	if r := agent(t, "", "depuis un fichier", "list", "--data", d2); r.code != 0 {
		t.Fatalf("unlock with the file's passphrase via env: %+v", r)
	}
}

func dirHashes(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

func TestWrongPassphrase(t *testing.T) {
	dir := initStore(t)
	mustAgent(t, strings.Join(seedLines(t, 20, 3), "\n"), "import", "--data", dir)
	before := dirHashes(t, dir)
	for _, args := range [][]string{{"list", "--data", dir}, {"import", "--data", dir, "-"}, {"seed", "--data", dir, "--n", "5"}} {
		r := agent(t, seedLines(t, 2, 9)[0], "mauvaise phrase", args...)
		if r.code != ExitAuth || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "incorrect") {
			t.Fatalf("%v with wrong passphrase: %+v", args, r)
		}
	}
	after := dirHashes(t, dir)
	if len(before) != len(after) {
		t.Fatalf("files before %d after %d", len(before), len(after))
	}
	for n, h := range before {
		if after[n] != h {
			t.Fatalf("%s changed", n)
		}
	}
}

func TestImportIsIdempotentAndRoundTrips(t *testing.T) {
	dir := initStore(t)
	lines := seedLines(t, 50, 7)
	in := writeFile(t, strings.Join(lines, "\n")+"\n")
	r := mustAgent(t, "", "import", "--data", dir, in)
	if !strings.Contains(r.stdout, "0 mis à jour, 0 inchangé") {
		t.Fatalf("first import: %s", r.stdout)
	}
	r = mustAgent(t, "", "import", "--data", dir, in)
	if !strings.Contains(r.stdout, " 0 créé(s), 0 mis à jour") {
		t.Fatalf("second import created something: %s", r.stdout)
	}
	st := mustAgent(t, "", "status", "--data", dir, "--json")
	if !strings.Contains(st.stdout, `"pending_changes": `+itoa(len(lines))) {
		t.Fatalf("status after two imports of %d lines:\n%s", len(lines), st.stdout)
	}
	// list --json → import into another store → same listing.
	out := mustAgent(t, "", "list", "--data", dir, "--json").stdout
	if got := strings.Count(out, "\n"); got != len(lines) {
		t.Fatalf("list --json gave %d lines, want %d", got, len(lines))
	}
	dir2 := initStore(t)
	mustAgent(t, out, "import", "--data", dir2)
	out2 := mustAgent(t, "", "list", "--data", dir2, "--json").stdout
	if out != out2 {
		t.Fatal("list → import → list differs")
	}
	// Lines without ids get derived ones: importing twice adds nothing.
	noID := `{"kind":"tourstop","vehicule":"Numéribus 9","date":"2026-06-01","lieu":"Place du marché","commune":"48095"}`
	mustAgent(t, noID, "import", "--data", dir)
	if r := mustAgent(t, noID, "import", "--data", dir); !strings.Contains(r.stdout, "0 créé(s)") {
		t.Fatalf("id-less line imported twice: %s", r.stdout)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestImportReportsEveryBadLineAndWritesNothing(t *testing.T) {
	dir := initStore(t)
	good := seedLines(t, 5, 1)
	bad := append([]string{}, good...)
	bad = append(bad,
		`{"kind":"activity","type":"visite","date":"2026-02-30","duree":0,"type_lieu":"lieu_activite","commune":"99999","thematiques":["cuisine"]}`,
		`{"kind":"beneficiary","prenom":"Sans","nom":"Consentement"}`,
		`pas du JSON`)
	r := agent(t, strings.Join(bad, "\n"), testPass, "import", "--data", dir)
	if r.code != ExitInvalid {
		t.Fatalf("bad file: exit %d\n%s", r.code, r.stderr)
	}
	// The syntax error is found before anything is decrypted.
	if !strings.Contains(r.stderr, "ligne "+itoa(len(good)+3)) {
		t.Fatalf("syntax error line not reported:\n%s", r.stderr)
	}
	bad = bad[:len(bad)-1]
	r = agent(t, strings.Join(bad, "\n"), testPass, "import", "--data", dir)
	for _, want := range []string{
		"ligne " + itoa(len(good)+1), `"visite"`, "individuel, collectif", `"cuisine"`, `"99999"`, "duree",
		"ligne " + itoa(len(good)+2), "suivi nominatif",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if st := mustAgent(t, "", "status", "--data", dir, "--json"); !strings.Contains(st.stdout, `"last_seq": 0`) {
		t.Fatalf("a failed import wrote changes:\n%s", st.stdout)
	}
}

func TestSeedIsReproducible(t *testing.T) {
	a, b := initStore(t), initStore(t)
	mustAgent(t, "", "seed", "--data", a, "--n", "30", "--seed", "5")
	mustAgent(t, "", "seed", "--data", b, "--n", "30", "--seed", "5")
	la := mustAgent(t, "", "list", "--data", a, "--json").stdout
	lb := mustAgent(t, "", "list", "--data", b, "--json").stdout
	if la != lb || la == "" {
		t.Fatal("same seed, different data")
	}
	if r := mustAgent(t, "", "list", "--data", a, "--kind", "tourstop"); !strings.Contains(r.stdout, "Numéribus") {
		t.Fatalf("table listing:\n%s", r.stdout)
	}
}

func TestEraseAndWithdrawCommands(t *testing.T) {
	dir := initStore(t)
	const b = "01900000-0000-7000-8000-000000000001"
	const c = "01900000-0000-7000-8000-000000000002"
	in := `{"kind":"beneficiary","id":"` + b + `","prenom":"Gaëlle","nom":"Fournier-Test","telephone":"0611223344","genre":"feminin","commune":"23096"}
{"kind":"consent","id":"` + c + `","beneficiaire":"` + b + `","finalites":["suivi_nominatif","diagnostic"],"mode":"oral_trace","date":"2026-02-03"}`
	mustAgent(t, in, "import", "--data", dir)
	if r := mustAgent(t, "", "list", "--data", dir, "--kind", "beneficiary"); !strings.Contains(r.stdout, "Gaëlle Fournier-Test") {
		t.Fatalf("listing: %s", r.stdout)
	}
	r := mustAgent(t, "", "consent", "withdraw", "--data", dir, "--consent", c, "--finalite", "suivi_nominatif", "--date", "2026-03-01")
	if !strings.Contains(r.stdout, "Identité du bénéficiaire effacée") {
		t.Fatalf("withdraw: %s", r.stdout)
	}
	out := mustAgent(t, "", "list", "--data", dir, "--json").stdout
	if strings.Contains(out, "Gaëlle") || strings.Contains(out, "0611223344") || !strings.Contains(out, `"genre":"feminin"`) {
		t.Fatalf("after withdrawal:\n%s", out)
	}
	if r := agent(t, "", testPass, "erase", "--data", dir, "--beneficiary", "pas-un-id"); r.code != ExitUsage {
		t.Fatalf("bad id: %+v", r)
	}
	if r := agent(t, "", testPass, "erase", "--data", dir, "--beneficiary", "01900000-0000-7000-8000-0000000000ff"); r.code != ExitState {
		t.Fatalf("unknown beneficiary: %+v", r)
	}
	mustAgent(t, "", "erase", "--data", dir, "--beneficiary", b)
}

func TestPassphraseChangeWithRecoveryCode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	r := mustAgent(t, "", "init", "--data", dir)
	var code string
	for _, l := range strings.Split(r.stdout, "\n") {
		if l = strings.TrimSpace(l); len(l) == 39 && strings.Count(l, "-") == 7 {
			code = l
		}
	}
	if code == "" {
		t.Fatalf("no recovery code in:\n%s", r.stdout)
	}
	np := writeFile(t, "toute nouvelle phrase\n")
	if r := agent(t, "", code, "passphrase", "--data", dir, "--new-passphrase-file", np); r.code != 0 {
		t.Fatalf("passphrase change with recovery code: %+v", r)
	}
	if r := agent(t, "", testPass, "list", "--data", dir); r.code != ExitAuth {
		t.Fatalf("old passphrase still works: %+v", r)
	}
	if r := agent(t, "", "toute nouvelle phrase", "list", "--data", dir); r.code != 0 {
		t.Fatalf("new passphrase: %+v", r)
	}
}

// The example of docs/IMPORT.md imports as documented.
func TestImportDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/IMPORT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```json\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no json example in docs/IMPORT.md")
	}
	dir := initStore(t)
	r := mustAgent(t, example, "import", "--data", dir)
	if !strings.Contains(r.stdout, "6 lu(s), 6 créé(s)") {
		t.Fatalf("doc example: %s", r.stdout)
	}
}

func TestSyncExitCodes(t *testing.T) {
	dir := initStore(t)
	if r := agent(t, "", testPass, "sync", "--data", dir); r.code != ExitState || !strings.Contains(r.stderr, "inscrit") {
		t.Fatalf("sync before enrollment: %+v", r)
	}
	if r := agent(t, "", testPass, "enroll", "--data", dir, "pas-un-code"); r.code != ExitFailure || !strings.Contains(r.stderr, "enrollment code") {
		t.Fatalf("bad code: %+v", r)
	}
	if r := agent(t, "", testPass, "status", "--data", dir); r.code != 0 || !strings.Contains(r.stdout, "non inscrit") {
		t.Fatalf("status before enrollment: %+v", r)
	}
}
