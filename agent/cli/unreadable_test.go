package cli

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"numeribus/agent/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/seal"
	"numeribus/internal/sqlitex"
)

// plantUnreadable stores, in the agent store in dir, an activity that
// decrypts but does not decode (its duration is text), as a newer or
// faulty agent could leave one, with secret in its notes. The test seals
// it as the store does — data key from the passphrase slot, associated
// data ("records", kind, id) of agent/store/seal.go — since the store
// writes only records that decode.
func plantUnreadable(t *testing.T, dir, secret string) ident.ID {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(dir, store.FileName), false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sl seal.Slot
	if err := db.QueryRow(`SELECT kind, salt, kdf_time, kdf_memory, kdf_threads, wrapped FROM keyslots WHERE kind = ?`, seal.SlotPassphrase).
		Scan(&sl.Kind, &sl.Salt, &sl.Params.Time, &sl.Params.MemoryKiB, &sl.Params.Threads, &sl.Wrapped); err != nil {
		t.Fatal(err)
	}
	key, err := sl.Unwrap([]byte(testPass))
	if err != nil {
		t.Fatal(err)
	}
	defer key.Wipe()
	st := merge.NewState()
	for name, v := range map[string]string{"duree": "abc", "notes": secret} {
		st.Fields[fieldNum(t, domain.KindActivity, name)] = mustMarshal(t, v)
	}
	raw, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	id := ident.New()
	ad := append(append(append([]byte("records\x00"), domain.KindActivity...), 0), id[:]...)
	body, err := key.Seal(nil, raw, ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO records(id, kind, hlc, deleted, erased, body) VALUES (?, ?, 1, 0, 0, ?)`,
		id[:], string(domain.KindActivity), body); err != nil {
		t.Fatal(err)
	}
	return id
}

func fieldNum(t *testing.T, k domain.Kind, name string) uint64 {
	t.Helper()
	for _, f := range domain.Fields(k) {
		if f.Name == name {
			return f.Num
		}
	}
	t.Fatalf("%s has no field %s", k, name)
	return 0
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := change.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// `agent list` goes past a record it cannot open (issue #10): it lists
// every other record, exits 0, and names the unreadable one on stderr —
// its id only, no personal data, neither its own nor the others'.
func TestListGoesPastARecordItCannotOpen(t *testing.T) {
	dir := initStore(t)
	lines := seedLines(t, 5, 3)
	mustAgent(t, strings.Join(lines, "\n"), "import", "--data", dir)
	const secret = "Mme Confidentielle"
	bad := plantUnreadable(t, dir, secret)

	var ids, names []string
	for _, l := range lines {
		var v struct{ ID, Nom string }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
		if v.Nom != "" {
			names = append(names, v.Nom)
		}
	}
	if len(names) == 0 {
		t.Fatal("the fixture has no named beneficiary: the check of stderr would check nothing")
	}
	for _, args := range [][]string{{"list", "--data", dir}, {"list", "--data", dir, "--json"}} {
		r := agent(t, "", testPass, args...)
		if r.code != 0 {
			t.Fatalf("agent %v: exit %d, want 0\n%s", args, r.code, r.stderr)
		}
		for _, id := range ids {
			if !strings.Contains(r.stdout, id) {
				t.Fatalf("agent %v does not list %s:\n%s", args, id, r.stdout)
			}
		}
		if strings.Contains(r.stdout, bad.String()) {
			t.Fatalf("agent %v lists the unreadable record", args)
		}
		if !strings.Contains(r.stderr, bad.String()) || !strings.Contains(r.stderr, "illisible") {
			t.Fatalf("agent %v does not name the unreadable record %s on stderr:\n%s", args, bad, r.stderr)
		}
		for _, p := range append(names, secret) {
			if strings.Contains(r.stderr, p) {
				t.Fatalf("agent %v prints %q on stderr:\n%s", args, p, r.stderr)
			}
		}
	}
}
