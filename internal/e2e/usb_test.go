package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	agentcli "numeribus/agent/cli"
	hubcli "numeribus/hub/cli"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/sqlitex"
	"numeribus/internal/wire"
)

// The transfer by USB stick (docs/CLI.md, « Transfert par clé USB »),
// end to end with real files and real stores: a laptop's bundle through
// the hub and its receipt back, twice, mixed with live syncs in both
// orders; the team's bundle for a laptop; what must be refused.

// agentRun runs an agent command in-process on a's data directory, with
// the passphrase in the environment unless locked.
func agentRun(t *testing.T, a *testAgent, locked bool, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	env := agentcli.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		if k == "NUMERIBUS_PASSPHRASE" && !locked {
			return pass
		}
		return ""
	}}
	full := append([]string{args[0], "--data", a.dir}, args[1:]...)
	code := agentcli.Main(context.Background(), full, env)
	return code, stdout.String(), stderr.String()
}

func agentOK(t *testing.T, a *testAgent, args ...string) string {
	t.Helper()
	code, out, errOut := agentRun(t, a, false, args...)
	if code != 0 {
		t.Fatalf("agent %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func hubOK(t *testing.T, h *testHub, args ...string) string {
	t.Helper()
	code, out := h.cli(t, args...)
	if code != 0 {
		t.Fatalf("hub %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// hubMain runs a hub command in-process with its arguments as given.
func hubMain(t *testing.T, args ...string) string {
	t.Helper()
	var out syncBuffer
	if code := hubcli.Main(context.Background(), args, hubcli.Env{Stdout: &out, Stderr: &out}); code != 0 {
		t.Fatalf("hub %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	}
	return out.String()
}

// hubSnapshot is what the hub holds, in one string: every record's
// merged state, the change log, each device's mark and the refused
// changes. Equal snapshots: an import changed nothing.
func hubSnapshot(t *testing.T, h *testHub) string {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(h.dir, hubcli.DBFile), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, q := range []string{
		`SELECT hex(id) || kind || team || hlc || deleted || erased || hex(state) FROM records ORDER BY id`,
		`SELECT hseq || team || device || dseq || kind || hex(record_id) || op || hlc || hex(fields) FROM changes ORDER BY hseq`,
		`SELECT name || ':' || hwm FROM devices ORDER BY name`,
		`SELECT device || dseq || code FROM rejected ORDER BY device, dseq`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		rows.Close()
		b.WriteString("--\n")
	}
	return b.String()
}

// plaintextIn returns the values of known found in b, in UTF-8 or UTF-16.
func plaintextIn(b []byte, known []string) []string {
	var hits []string
	for _, v := range known {
		u16 := utf16.Encode([]rune(v))
		le := make([]byte, 0, 2*len(u16))
		for _, c := range u16 {
			le = append(le, byte(c), byte(c>>8))
		}
		if bytes.Contains(b, []byte(v)) || bytes.Contains(b, le) {
			hits = append(hits, v)
		}
	}
	return hits
}

func acked(t *testing.T, a *testAgent) (last, ack uint64) {
	t.Helper()
	last, ack, err := a.st.Seqs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return last, ack
}

// A laptop's work goes to the hub on a stick and its receipt comes back;
// the same bundle and the same receipt a second time, then a live sync,
// change nothing. The team's bundle brings a second laptop the first
// one's work and the hub's planned stop, once.
func TestUSBRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := startHub(t)
	a1 := newAgent(t, h, "bus-1", "cd88", nil)
	a2 := newAgent(t, h, "bus-2", "cd88", nil)
	// Enough for several parts, so that persons and their consents land
	// in different parts of the bundle.
	set := fixture.Generate(fixture.Options{N: 1000, Seed: 14})
	a1.save(t, set.Records()...)
	known := fixture.KnownPersonal(set)
	if len(known) < 20 {
		t.Fatalf("only %d known personal values: the scan would prove little", len(known))
	}
	stick := t.TempDir()
	out1 := filepath.Join(stick, "bus-1.nsync")
	agentOK(t, a1, "export", "--out", out1)
	raw, err := os.ReadFile(out1)
	if err != nil {
		t.Fatal(err)
	}
	if hits := plaintextIn(raw, known); len(hits) > 0 {
		t.Fatalf("the bundle holds personal values in clear: %q", hits[:min(5, len(hits))])
	}
	for _, r := range set.Records() {
		id := r.RecordID()
		if bytes.Contains(raw, id[:]) {
			t.Fatalf("the bundle shows the record id %s in clear", id)
		}
	}

	before := hubSnapshot(t, h)
	imp := hubOK(t, h, "import", out1)
	if !strings.Contains(imp, "Reçu écrit dans") || !strings.Contains(imp, " 0 refusée(s)") {
		t.Fatalf("hub import said:\n%s", imp)
	}
	after := hubSnapshot(t, h)
	if after == before {
		t.Fatal("the import changed nothing at the hub")
	}
	sameLines(t, "hub and bus-1 records", hubLines(t, h, "cd88"), a1.lines(t))
	if len(filesContain(t, h.dir, known[0])) == 0 {
		t.Fatalf("the hub does not hold %q in clear: the scans of the bundles would prove nothing", known[0])
	}

	last, ack := acked(t, a1)
	if ack != 0 || last == 0 {
		t.Fatalf("before the receipt: last %d, acked %d", last, ack)
	}
	agentOK(t, a1, "import-receipt", out1+".recu")
	if _, ack := acked(t, a1); ack != last {
		t.Fatalf("after the receipt: acked %d, want %d", ack, last)
	}
	if last <= 2000 {
		t.Fatalf("%d changes: one part only, the consents would not be apart from their persons", last)
	}

	// The same bundle again: a second receipt, the hub unchanged; its
	// receipt taken again changes nothing either.
	hubOK(t, h, "import", "--receipt", out1+".2.recu", out1)
	if got := hubSnapshot(t, h); got != after {
		t.Fatal("importing the same bundle twice changed the hub")
	}
	if out := agentOK(t, a1, "import-receipt", out1+".2.recu"); !strings.Contains(out, "déjà été importé") {
		t.Fatalf("second receipt: %s", out)
	}
	if _, ack := acked(t, a1); ack != last {
		t.Fatalf("after the second receipt: acked %d, want %d", ack, last)
	}
	// A live sync now has nothing to send, and changes nothing.
	if rep := a1.sync(t); rep.Pushed != 0 {
		t.Fatalf("live sync after the bundle pushed %d changes", rep.Pushed)
	}
	if got := hubSnapshot(t, h); got != after {
		t.Fatal("a live sync after the bundle changed the hub")
	}

	// The other way: a stop planned at the hub, and the team's bundle for
	// bus-2, which has never synced.
	tomorrow := time.Now().AddDate(0, 0, 1).Format(domain.DateLayout)
	hubMain(t, "plan", "add", "--data", h.dir, "--team", "cd88", "--vehicle", "Numéribus 2", "--date", tomorrow, "--start", "09:00", "--end", "12:00",
		"--place", "Place de la mairie", "--commune", "88160")
	out2 := filepath.Join(stick, "bus-2.nsync")
	exp := hubOK(t, h, "export", "--device", "bus-2", "--out", out2)
	if !strings.Contains(exp, "agent import-bundle") {
		t.Fatalf("hub export said:\n%s", exp)
	}
	raw2, err := os.ReadFile(out2)
	if err != nil {
		t.Fatal(err)
	}
	if hits := plaintextIn(raw2, append(known, "Place de la mairie")); len(hits) > 0 {
		t.Fatalf("the team's bundle holds values in clear: %q", hits[:min(5, len(hits))])
	}
	for _, r := range set.Records() {
		if id := r.RecordID(); bytes.Contains(raw2, id[:]) {
			t.Fatalf("the team's bundle shows the record id %s in clear", id)
		}
	}
	agentOK(t, a2, "import-bundle", out2)
	want := hubLines(t, h, "cd88")
	sameLines(t, "bus-2 and hub records", a2.lines(t), want)
	ss1, err := a2.st.SyncState(ctx)
	if err != nil || ss1.PullCursor == 0 {
		t.Fatalf("bus-2's pull cursor after the bundle: %+v %v", ss1, err)
	}
	agentOK(t, a2, "import-bundle", out2)
	sameLines(t, "bus-2 records after the bundle twice", a2.lines(t), want)
	if ss2, _ := a2.st.SyncState(ctx); ss2.PullCursor != ss1.PullCursor || !bytes.Equal(ss2.PullTag, ss1.PullTag) {
		t.Fatalf("the second import moved the cursor: %+v, then %+v", ss1, ss2)
	}
	if rep := a2.sync(t); rep.Pulled != 0 {
		t.Fatalf("a live sync after the team's bundle pulled %d changes again", rep.Pulled)
	}
	// bus-2's own export now carries its pull cursor: the hub's next
	// export for it starts there, and holds nothing new.
	out3 := filepath.Join(stick, "bus-2-retour.nsync")
	agentOK(t, a2, "export", "--out", out3)
	hubOK(t, h, "import", out3)
	if exp := hubOK(t, h, "export", "--device", "bus-2", "--out", out2); !strings.Contains(exp, "0 modification(s)") ||
		!strings.Contains(exp, "dernier paquet") {
		t.Fatalf("second export for bus-2 said:\n%s", exp)
	}
}

// A bundle imported, then a live sync of the same changes; and a live
// sync, then the bundle of the same changes: either order ends as one
// transfer alone, with the hub served by a process of its own and each
// hub command a process too.
func TestUSBAndLiveSyncOfTheSameChanges(t *testing.T) {
	hp := &hubProc{dir: t.TempDir(), addr: freePort(t)}
	hp.start(t)
	defer hp.kill()
	h := &testHub{t: t, dir: hp.dir}
	a := newAgent(t, h, "bus-1", "cd88", nil)
	stick := t.TempDir()
	set := fixture.Generate(fixture.Options{N: 30, Seed: 7})
	recs := set.Records()
	a.save(t, recs[:len(recs)/2]...)

	// Bundle first, then the live sync (the receipt left on the stick).
	f1 := filepath.Join(stick, "un.nsync")
	agentOK(t, a, "export", "--out", f1)
	run(t, "hub", "import", "--data", hp.dir, f1)
	imported := hubSnapshot(t, h)
	if rep := a.sync(t); rep.Pushed != 0 {
		t.Fatalf("live sync after the bundle pushed %d changes", rep.Pushed)
	}
	if got := hubSnapshot(t, h); got != imported {
		t.Fatal("the live sync after the bundle changed the hub")
	}
	last, ack := acked(t, a)
	if ack != last {
		t.Fatalf("the live sync acked %d of %d", ack, last)
	}
	agentOK(t, a, "import-receipt", f1+".recu") // late: changes nothing
	if _, again := acked(t, a); again != last {
		t.Fatalf("the late receipt moved the mark to %d", again)
	}

	// Live sync first, then the bundle of the same changes.
	a.save(t, recs[len(recs)/2:]...)
	f2 := filepath.Join(stick, "deux.nsync")
	agentOK(t, a, "export", "--out", f2)
	a.sync(t)
	synced := hubSnapshot(t, h)
	out := run(t, "hub", "import", "--data", hp.dir, f2)
	if !strings.Contains(out, " 0 appliquée(s)") {
		t.Fatalf("the bundle after the live sync applied something:\n%s", out)
	}
	if got := hubSnapshot(t, h); got != synced {
		t.Fatal("the bundle after the live sync changed the hub")
	}
	agentOK(t, a, "import-receipt", f2+".recu")
	last, ack = acked(t, a)
	if ack != last {
		t.Fatalf("acked %d of %d", ack, last)
	}
	sameLines(t, "hub and agent", hubLines(t, h, "cd88"), a.lines(t))
}

// What must be refused is refused with a French message and nothing
// applied: one byte changed, a bundle for another hub, a revoked device;
// at the agent, a receipt or a team bundle altered, from another hub, or
// for another laptop.
func TestUSBRefused(t *testing.T) {
	h := startHub(t)
	other := startHub(t)
	a1 := newAgent(t, h, "bus-1", "cd88", nil)
	a2 := newAgent(t, h, "bus-2", "cd88", nil)
	a3 := newAgent(t, other, "bus-3", "cd88", nil)
	set := fixture.Generate(fixture.Options{N: 10, Seed: 3})
	a1.save(t, set.Records()...)
	a3.save(t, set.Records()...)
	stick := t.TempDir()
	good := filepath.Join(stick, "bus-1.nsync")
	agentOK(t, a1, "export", "--out", good)
	raw, _ := os.ReadFile(good)
	before := hubSnapshot(t, h)

	for _, tc := range []struct {
		name   string
		file   func() string
		hub    *testHub
		code   int
		reason string
	}{
		{"one byte in the middle", func() string { return flipped(t, stick, raw, len(raw)/2) }, h, agentcli.ExitInvalid, "altéré"},
		{"the last byte", func() string { return flipped(t, stick, raw, len(raw)-1) }, h, agentcli.ExitInvalid, "altéré"},
		{"a byte of the head", func() string { return flipped(t, stick, raw, 20) }, h, agentcli.ExitInvalid, ""},
		{"cut short", func() string { return written(t, stick, raw[:len(raw)-100]) }, h, agentcli.ExitInvalid, "altéré"},
		{"not a bundle", func() string { return written(t, stick, []byte("prenom;nom\n")) }, h, agentcli.ExitInvalid, "ni un paquet"},
		{"for another hub", func() string { return good }, other, agentcli.ExitInvalid, "autre hub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := hubSnapshot(t, tc.hub)
			code, out := tc.hub.cli(t, "import", tc.file())
			if code != tc.code || !strings.Contains(out, tc.reason) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.reason, out)
			}
			if got := hubSnapshot(t, tc.hub); got != snap {
				t.Fatal("a refused bundle changed the hub")
			}
		})
	}

	// Agent side, with a genuine receipt and team bundle to alter.
	hubOK(t, h, "import", good)
	receipt, _ := os.ReadFile(good + ".recu")
	team := filepath.Join(stick, "bus-2.nsync")
	hubOK(t, h, "export", "--device", "bus-2", "--out", team)
	teamRaw, _ := os.ReadFile(team)
	f3 := filepath.Join(stick, "bus-3.nsync")
	agentOK(t, a3, "export", "--out", f3)
	hubOK(t, other, "import", f3)
	lines2 := a2.lines(t)
	for _, tc := range []struct {
		name   string
		agent  *testAgent
		args   []string
		reason string
	}{
		{"a receipt with one byte changed", a1, []string{"import-receipt", flipped(t, stick, receipt, len(receipt)/2)}, ""},
		{"another hub's receipt", a1, []string{"import-receipt", f3 + ".recu"}, "autre hub"},
		{"another laptop's receipt", a2, []string{"import-receipt", good + ".recu"}, "autre poste"},
		{"a bundle given as a receipt", a1, []string{"import-receipt", good}, "pas un reçu"},
		{"a team bundle with one byte changed", a2, []string{"import-bundle", flipped(t, stick, teamRaw, len(teamRaw)/2)}, "altéré"},
		{"another laptop's team bundle", a1, []string{"import-bundle", team}, "autre poste"},
		{"a laptop's bundle given to a laptop", a2, []string{"import-bundle", good}, "hub import"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last, ack := acked(t, tc.agent)
			code, out, errOut := agentRun(t, tc.agent, false, tc.args...)
			if code != agentcli.ExitInvalid || !strings.Contains(errOut, tc.reason) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, agentcli.ExitInvalid, tc.reason, out, errOut)
			}
			if l, a := acked(t, tc.agent); l != last || a != ack {
				t.Fatalf("a refused file moved the marks: %d/%d, then %d/%d", last, ack, l, a)
			}
		})
	}
	sameLines(t, "bus-2 after refused bundles", a2.lines(t), lines2)

	// A device revoked after it wrote its bundle: refused at the hub.
	a1.save(t, set.Records()[0]) // one more change, so that there is something to refuse
	late := filepath.Join(stick, "tard.nsync")
	agentOK(t, a1, "export", "--out", late)
	hubOK(t, h, "revoke", "--device", "bus-1")
	snap := hubSnapshot(t, h)
	code, out := h.cli(t, "import", late)
	if code != agentcli.ExitRefused || !strings.Contains(out, "révoqué") {
		t.Fatalf("bundle of a revoked device: exit %d\n%s", code, out)
	}
	if got := hubSnapshot(t, h); got != snap {
		t.Fatal("the revoked device's bundle changed the hub")
	}
	if before == snap {
		t.Fatal("the genuine bundle changed nothing (the comparisons would prove nothing)")
	}
}

func written(t *testing.T, dir string, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "fichier-*.nsync")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func flipped(t *testing.T, dir string, b []byte, i int) string {
	t.Helper()
	c := bytes.Clone(b)
	c[i] ^= 0x20
	return written(t, dir, c)
}

// A locked laptop exports what it sealed for the hub at write time,
// signed by its push key; the hub takes it, and the receipt needs no
// passphrase either.
func TestUSBLockedExport(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	a.save(t, fixture.Generate(fixture.Options{N: 20, Seed: 5}).Records()...)
	f := filepath.Join(t.TempDir(), "verrouille.nsync")
	code, out, errOut := agentRun(t, a, true, "export", "--push-only", "--out", f)
	if code != 0 || !strings.Contains(out, "clé d'envoi") {
		t.Fatalf("locked export: exit %d\n%s%s", code, out, errOut)
	}
	hubOK(t, h, "import", f)
	sameLines(t, "hub and agent", hubLines(t, h, "cd88"), a.lines(t))
	if code, out, errOut := agentRun(t, a, true, "import-receipt", f+".recu"); code != 0 {
		t.Fatalf("receipt while locked: exit %d\n%s%s", code, out, errOut)
	}
	if last, ack := acked(t, a); ack != last {
		t.Fatalf("acked %d of %d", ack, last)
	}
}

// Changes the hub refuses come back in the receipt and are kept on the
// laptop as a live ack's refusals are: here a laptop whose clock is three
// days ahead.
func TestUSBReceiptCarriesRefusals(t *testing.T) {
	ahead := func() time.Time { return time.Now().Add(72 * time.Hour) }
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", ahead)
	a.save(t, fixture.Generate(fixture.Options{N: 5, Seed: 9}).Records()...)
	f := filepath.Join(t.TempDir(), "avance.nsync")
	agentOK(t, a, "export", "--out", f)
	if out := hubOK(t, h, "import", f); !strings.Contains(out, wire.CodeClockAhead) {
		t.Fatalf("hub import said:\n%s", out)
	}
	code, out, errOut := agentRun(t, a, false, "import-receipt", f+".recu")
	if code != 0 || !strings.Contains(errOut, "refusée(s) par le hub") {
		t.Fatalf("receipt: exit %d\n%s%s", code, out, errOut)
	}
	rs, err := a.st.RejectedChanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	last, ack := acked(t, a)
	if len(rs) != int(last) || ack != last {
		t.Fatalf("%d refusals kept for %d changes, acked %d", len(rs), last, ack)
	}
	for _, r := range rs {
		if r.Code != wire.CodeClockAhead || r.Ahead < 71*time.Hour {
			t.Fatalf("refusal %+v", r)
		}
	}
	if got := hubLines(t, h, "cd88"); len(got) != 0 {
		t.Fatalf("the hub took %d records stamped three days ahead", len(got))
	}
}
