package cli

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/store/sqlite"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// english finds words of English sentences. Option names (--team),
// addresses and command names are taken out of a line before it is
// searched, since they are the same in every language.
var english = regexp.MustCompile(`(?i)\b(the|is|are|not|unknown|required|invalid|error|failed|created|planned|cancelled|revoked|disabled|flag|provided|defined|must|cannot|missing|expected|exists|already|valid|until|single|use|dial|listening|devices|changes|team|records|password|territory|period|before|after|for|with|of|and|or)\b`)

var notWords = regexp.MustCompile(`--?[a-z][a-z-]*|[a-z]+://\S+|NSYNC1-\S+|\S+@\S+|"[^"]*"|« hub [^»]*»|hub (serve|enroll|revoke|devices|stats|plan|user|version|import|export)( (add|list|cancel|disable|enable|password|token))?|<[^>]*>|\b[A-Z]{2,}\b|^  [a-z]+ |(?:\b` + commandWords + `\b(?:, | ou ))+\b` + commandWords + `\b`)

// commandWords are the names of the commands and subcommands, listed in
// usages and errors as they are typed.
const commandWords = `(?:serve|enroll|revoke|devices|stats|plan|user|version|import|export|add|list|cancel|disable|enable|password|token)`

// TestEveryMessageIsFrench runs the hub's commands as a person would —
// help, each command's help, mistakes of every kind, and the successful
// outputs (enroll, plan, users, devices, stats) — and checks that every
// line printed is French: no English word left once option names,
// addresses and command names are taken out, and numbers written the
// French way (1 234 with a narrow no-break space, 17,5 h).
func TestEveryMessageIsFrench(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("une phrase assez longue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	seedStats(t, dir)
	d := []string{"--data", dir}
	runs := [][]string{
		{}, {"--help"}, {"nope"},
		{"serve", "--help"}, {"enroll", "--help"}, {"revoke", "--help"}, {"devices", "--help"}, {"stats", "--help"},
		{"plan", "--help"}, {"plan", "add", "--help"}, {"plan", "list", "--help"}, {"plan", "cancel", "--help"},
		{"user", "add", "--help"}, {"user", "password", "--help"}, {"user", "token", "--help"},
		{"serve", "--nope"}, {"serve", "--listen"}, {"serve", "extra"}, {"stats", "--json=maybe"},
		{"serve", "--data", dir, "--listen", "0.0.0.0:0", "--insecure"},
		{"enroll", "--data", dir, "--team", "cd88"},
		{"enroll", "--data", t.TempDir(), "--device", "bus-9", "--team", "cd88"},
		{"enroll", "--data", dir, "--device", "bus-2", "--team", "cd88", "--url", "wss://127.0.0.1:8443/sync"},
		{"enroll", "--data", dir, "--device", "bus-2", "--team", "cd88", "--url", "wss://127.0.0.1:8443/sync"},
		append([]string{"revoke"}, d...), append([]string{"revoke", "--device", "nobody"}, d...),
		append([]string{"stats", "--from", "hier"}, d...), append([]string{"stats", "--territory", "xyz"}, d...),
		append([]string{"stats", "--from", "2026-06-01", "--to", "2026-01-01"}, d...),
		append([]string{"stats", "--from", "2026-01-01", "--to", "2026-12-31"}, d...),
		append([]string{"devices"}, d...),
		{"user"}, {"user", "nope"},
		append([]string{"user", "add", "--email", "pas-une-adresse", "--role", "viewer", "--password-file", pw}, d...),
		append([]string{"user", "add", "--email", "a@cd88.fr", "--role", "chef", "--password-file", pw}, d...),
		append([]string{"user", "add", "--email", "a@cd88.fr", "--role", "coordinator", "--password-file", pw}, d...),
		append([]string{"user", "add", "--email", "a@cd88.fr", "--role", "coordinator", "--territory", "999", "--password-file", pw}, d...),
		append([]string{"user", "add", "--email", "a@cd88.fr", "--role", "admin", "--territory", "88", "--password-file", pw}, d...),
		append([]string{"user", "add", "--email", "a@cd88.fr", "--role", "coordinator", "--territory", "88", "--password-file", filepath.Join(dir, "none")}, d...),
		append([]string{"user", "add", "--email", "a@cd88.fr", "--role", "coordinator", "--territory", "88", "--password-file", pw}, d...),
		append([]string{"user", "add", "--email", "A@cd88.fr", "--role", "viewer", "--password-file", pw}, d...),
		append([]string{"user", "list"}, d...),
		append([]string{"user", "disable", "--email", "nobody@cd88.fr"}, d...),
		append([]string{"user", "disable", "--email", "a@cd88.fr"}, d...),
		append([]string{"user", "enable", "--email", "a@cd88.fr"}, d...),
		append([]string{"user", "password", "--email", "a@cd88.fr", "--generate"}, d...),
		append([]string{"user", "password", "--email", "a@cd88.fr", "--generate", "--password-file", pw}, d...),
		append([]string{"user", "token", "--email", "a@cd88.fr"}, d...),
		append([]string{"user", "token", "--email", "a@cd88.fr", "--name", "tableur"}, d...),
		{"plan"}, {"plan", "nope"},
		append([]string{"plan", "add", "--vehicle", "N1"}, d...),
		append([]string{"plan", "add", "--team", "cd23", "--vehicle", "N1", "--date", "2026-03-02", "--place", "Mairie", "--commune", "88413"}, d...),
		append([]string{"plan", "add", "--team", "cd88", "--vehicle", "N1", "--date", "2026-13-02", "--place", "", "--commune", "88999"}, d...),
		append([]string{"plan", "add", "--team", "cd88", "--vehicle", "N1", "--date", "2026-03-02", "--start", "09:00", "--end", "12:00", "--place", "Mairie", "--commune", "88413"}, d...),
		append([]string{"plan", "list"}, d...),
		append([]string{"plan", "list", "--from", "demain"}, d...),
		append([]string{"plan", "cancel", "--id", "nope"}, d...),
		append([]string{"plan", "cancel", "--id", ident.New().String()}, d...),
		{"import", "--help"}, {"export", "--help"},
		append([]string{"import"}, d...), append([]string{"import", "--nope", "x"}, d...),
		append([]string{"import", filepath.Join(dir, "absent.paquet")}, d...),
		append([]string{"import", pw}, d...),
		append([]string{"export", "--device", "bus-1"}, d...),
		append([]string{"export", "--device", "nobody", "--out", filepath.Join(dir, "out.paquet")}, d...),
		append([]string{"export", "--device", "bus-1", "--out", filepath.Join(dir, "out.paquet"), "--all", "--after", "3"}, d...),
		append([]string{"export", "--device", "bus-1", "--out", filepath.Join(dir, "out.paquet"), "--after", "trois"}, d...),
		append([]string{"revoke", "--device", "bus-1"}, d...),
		append([]string{"devices"}, d...),
	}
	for _, args := range runs {
		_, out := hub(args...)
		for _, line := range strings.Split(out, "\n") {
			// JSON and the structured log lines are for programs.
			if strings.HasPrefix(strings.TrimSpace(line), "{") || strings.HasPrefix(line, "time=") {
				continue
			}
			if w := english.FindString(notWords.ReplaceAllString(line, " ")); w != "" {
				t.Errorf("hub %s: English word %q in %q", strings.Join(args, " "), w, line)
			}
		}
	}
	_, out := hub("stats", "--data", dir, "--from", "2026-01-01", "--to", "2026-12-31")
	if want := "1\u202f235 accompagnements (2 activités : 1 individuelles, 1 ateliers), 0 bénéficiaires, 17,5 h, 2 communes"; !strings.Contains(out, want) {
		t.Errorf("hub stats: want %q in\n%s", want, out)
	}
}

// seedStats enrolls a device of team cd88 in dir's hub and pushes two
// activities through ApplyBatch, as a sync would: an individual session
// of 50 minutes in Épinal and a workshop of 1,234 people, 16 h 40 long,
// in Saint-Dié-des-Vosges, both in 2026.
func seedStats(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var tok [32]byte
	rand.Read(tok[:])
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: "bus-1", Team: "cd88", ExpiresAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	dev, err := st.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: []byte("dk"), PushKey: []byte("pk")}, at)
	if err != nil {
		t.Fatal(err)
	}
	acts := []*domain.Activity{
		{ID: ident.New(), Type: "individuel", Date: "2026-03-03", Duree: 50, TypeLieu: "lieu_activite", Commune: "88160",
			Thematiques: []string{"email"}, Autonomie: "autonome"},
		{ID: ident.New(), Type: "collectif", Date: "2026-04-03", Duree: 1000, TypeLieu: "lieu_activite", Commune: "88413",
			Thematiques: []string{"email"}, TitreAtelier: "Atelier", Niveau: "debutant", Participants: &domain.Participants{Total: 1234}},
	}
	var cs []change.Change
	for i, a := range acts {
		f, err := change.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, change.Change{Kind: domain.KindActivity, ID: a.ID, Op: change.OpUpsert, Fields: f,
			HLC: hlc.FromTime(at.Add(time.Duration(i) * time.Hour)), Seq: uint64(i + 1)})
	}
	if _, _, err := st.ApplyBatch(ctx, dev.ID, cs, 1000); err != nil {
		t.Fatal(err)
	}
}
