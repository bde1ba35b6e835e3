package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// The plan subcommand: usage errors, an unknown team refused, a stop
// planned, listed as a table and as JSON, cancelled.
func TestPlanCommand(t *testing.T) {
	dir := t.TempDir()
	if code, out := hub("plan"); code != ExitUsage || !strings.Contains(out, "hub plan <sous-commande>") {
		t.Fatalf("plan without subcommand: %d %s", code, out)
	}
	if code, out := hub("plan", "add", "--data", dir, "--vehicle", "N1"); code != ExitUsage || !strings.Contains(out, "--team") {
		t.Fatalf("plan add without team: %d %s", code, out)
	}
	add := []string{"plan", "add", "--data", dir, "--team", "cd88", "--vehicle", "Numéribus 1", "--date", "02/03/2026",
		"--start", "09:00", "--end", "12:00", "--place", "Place de la mairie", "--commune", "88413"}
	if code, out := hub(add...); code != ExitInvalid || !strings.Contains(out, "équipe « cd88 » inconnue") {
		t.Fatalf("plan for a team nobody is enrolled in: %d %s", code, out)
	}
	if code, out := hub("enroll", "--data", dir, "--device", "bus-1", "--team", "cd88", "--url", "wss://127.0.0.1:8443/sync"); code != 0 {
		t.Fatalf("enroll: %d %s", code, out)
	}
	code, out := hub(add...)
	if code != 0 || !strings.Contains(out, "planifié pour l'équipe cd88") || !strings.Contains(out, "Saint-Dié-des-Vosges (88413)") {
		t.Fatalf("plan add: %d %s", code, out)
	}
	if code, out := hub(add...); code != ExitInvalid || !strings.Contains(out, "déjà planifié") {
		t.Fatalf("the same stop twice: %d %s", code, out)
	}
	bad := append(append([]string{}, add[:len(add)-1]...), "88999")
	bad[9] = "03/03/2026"
	if code, out := hub(bad...); code != ExitInvalid || !strings.Contains(out, "commune") {
		t.Fatalf("unknown commune: %d %s", code, out)
	}
	code, out = hub("plan", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, "02/03/2026") || !strings.Contains(out, "PRÉVUS") || !strings.Contains(out, "Numéribus 1") {
		t.Fatalf("plan list: %d %s", code, out)
	}
	code, out = hub("plan", "list", "--data", dir, "--json")
	var v planList
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || len(v.Stops) != 1 || len(v.Vehicles) != 1 || v.Vehicles[0].Planned != 1 {
		t.Fatalf("plan list --json: %d %v %s", code, err, out)
	}
	if code, _ := hub("plan", "list", "--data", dir, "--from", "demain"); code != ExitUsage {
		t.Fatal("a bad date filter accepted")
	}
	if code, _ := hub("plan", "cancel", "--data", dir, "--id", "nope"); code != ExitUsage {
		t.Fatal("a bad id accepted")
	}
	id := v.Stops[0].ID.String()
	if code, out := hub("plan", "cancel", "--data", dir, "--id", id, "--team", "cd23"); code != ExitState || !strings.Contains(out, "introuvable dans l'équipe cd23") {
		t.Fatalf("cancel from another team: %d %s", code, out)
	}
	if code, out := hub("plan", "cancel", "--data", dir, "--id", id); code != 0 || !strings.Contains(out, "annulé") {
		t.Fatalf("cancel: %d %s", code, out)
	}
	if code, out := hub("plan", "list", "--data", dir, "--json"); code != 0 || !strings.Contains(out, `"stops": []`) {
		t.Fatalf("list after cancel: %d %s", code, out)
	}
	if code, out := hub("devices", "--data", dir); code != 0 || strings.Contains(out, "(hub)") {
		t.Fatalf("hub devices lists the hub itself: %s", out)
	}
}
