package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A form kept while locked: sealed to the store's own key, given back
// after the unlock, never in clear on the disk.
func TestDraftKeptWhileLocked(t *testing.T) {
	s, _ := mustCreate(t)
	ctx := context.Background()
	if err := s.Unlock(ctx, []byte(testPass)); err != nil { // makes the draft key
		t.Fatal(err)
	}
	s.Lock()
	const name = "Gwendoline Kerbrat-Lézardrieux"
	values := map[string][]string{"form_id": {"01900000-0000-7000-8000-000000000001"}, "prenom": {name}, "publics": {"a", "b"}}
	if err := s.SaveDraft(ctx, "/beneficiaires/nouveau", values, time.Now()); err != nil {
		t.Fatalf("SaveDraft while locked: %v", err)
	}
	if _, err := s.Drafts(ctx); err != ErrLocked {
		t.Fatalf("Drafts while locked: %v, want ErrLocked", err)
	}
	for _, f := range []string{FileName, FileName + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(s.dir, f))
		if bytes.Contains(b, []byte("Kerbrat")) {
			t.Fatalf("%s holds the draft in clear", f)
		}
	}
	if err := s.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Drafts(ctx)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Drafts: %+v, %v", ds, err)
	}
	d := ds[0]
	if d.Form != "/beneficiaires/nouveau" || d.Values["prenom"][0] != name || !slices.Equal(d.Values["publics"], []string{"a", "b"}) {
		t.Fatalf("draft given back: %+v", d)
	}
	if err := s.DeleteDraft(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Drafts(ctx); len(ds) != 0 {
		t.Fatalf("deleted draft still there: %+v", ds)
	}
}

// Too big a draft is refused; too many keep the newest.
func TestDraftLimits(t *testing.T) {
	s, _ := mustCreate(t)
	ctx := context.Background()
	if err := s.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	big := map[string][]string{"notes": {strings.Repeat("x", MaxDraftBytes)}}
	if err := s.SaveDraft(ctx, "/beneficiaires/nouveau", big, time.Now()); err == nil {
		t.Fatal("an oversized draft was kept")
	}
	for i := range MaxDrafts + 3 {
		if err := s.SaveDraft(ctx, "/activites/nouvelle", map[string][]string{"n": {string(rune('a' + i))}}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.Drafts(ctx)
	if err != nil || len(ds) != MaxDrafts || ds[len(ds)-1].Values["n"][0] != string(rune('a'+MaxDrafts+2)) {
		t.Fatalf("%d drafts kept (%v), want the newest %d", len(ds), err, MaxDrafts)
	}
}
