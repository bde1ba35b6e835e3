package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"numeribus/internal/domain"
)

// ids returns the ids of the store's live records, sorted.
func ids(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := s.List(context.Background(), "", false, func(it Item) error {
		out = append(out, it.Record.RecordID().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func openUnlocked(t *testing.T, dir, pass string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Unlock(context.Background(), []byte(pass)); err != nil {
		t.Fatalf("unlock with %q: %v", pass, err)
	}
	return s
}

// A restore brings the copy back as the store, and keeps the store it
// replaces aside, whole; the passphrase set after the copy still opens
// the restored store. Changes not yet sent stop it unless forced.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	dir := s.dir
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	week1 := ids(t, s)
	bf, err := s.Backup(ctx, BackupManual)
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, ptrActivity(), ptrActivity())
	all := ids(t, s)
	const newPass = "nouvelle phrase de passe"
	if err := s.SetPassphrase(ctx, []byte(newPass)); err != nil {
		t.Fatal(err)
	}

	if _, err := Restore(ctx, dir, RestoreOptions{From: bf.Path}); !errors.Is(err, ErrInUse) {
		t.Fatalf("restore with the store open: %v, want ErrInUse", err)
	}
	s.Close()
	_, err = Restore(ctx, dir, RestoreOptions{From: bf.Path})
	var pe *PendingError
	if !errors.As(err, &pe) || pe.Pending != 2 {
		t.Fatalf("restore with 2 changes neither sent nor in the copy: %v, want PendingError", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("a refused restore moved the store: %v", err)
	}
	res, err := Restore(ctx, dir, RestoreOptions{From: bf.Path, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.KeptSecrets || res.Damaged || res.From.Path != bf.Path || res.Aside == "" {
		t.Errorf("restore result %+v", res)
	}
	r := openUnlocked(t, dir, newPass)
	if got := ids(t, r); !slices.Equal(got, week1) {
		t.Errorf("restored store holds %v, want %v", got, week1)
	}
	if last, _, _ := r.Seqs(ctx); last != 3 {
		t.Errorf("restored store's last seq %d, want 3", last)
	}
	r.Close()

	// The store put aside is whole: restored in its turn, it gives back
	// everything.
	var aside *BackupFile
	for _, x := range backupsOf(t, dir) {
		if x.Reason == BackupAside {
			aside = &x
		}
	}
	if aside == nil || aside.Path != res.Aside || aside.LastSeq != 5 {
		t.Fatalf("aside copy %+v, want %s at seq 5", aside, res.Aside)
	}
	if _, err := Restore(ctx, dir, RestoreOptions{From: res.Aside, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, openUnlocked(t, dir, newPass)); !slices.Equal(got, all) {
		t.Errorf("the store put aside, restored, holds %v, want %v", got, all)
	}
}

// Another laptop's copy is refused; a file that is no sound store is
// refused; neither touches the store.
func TestRestoreRefusesOtherCopies(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	other, _ := mustCreate(t)
	bf, err := other.Backup(ctx, BackupManual)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := s.Backup(ctx, BackupManual)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Restore(ctx, s.dir, RestoreOptions{From: bf.Path}); !errors.Is(err, ErrOtherDevice) {
		t.Fatalf("restore of another device's copy: %v", err)
	}
	damage(t, mine.Path, "changes")
	if _, err := Restore(ctx, s.dir, RestoreOptions{From: mine.Path}); err == nil {
		t.Fatal("a damaged copy was restored")
	}
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte("rien"), 0o600)
	if _, err := Restore(ctx, s.dir, RestoreOptions{From: junk}); err == nil {
		t.Fatal("a file that is no store was restored")
	}
	if bs := backupsOf(t, s.dir); len(bs) != 1 {
		t.Errorf("refused restores left %d files in the backups, want the 1 copy", len(bs))
	}
	openUnlocked(t, s.dir, testPass)
}

// A damaged store is replaced without --force though its changes were not
// all sent (it cannot be used; the copy put aside keeps it), and the
// restored store opens.
func TestRestoreDamagedStore(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	dir := s.dir
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	if _, err := s.Backup(ctx, BackupManual); err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, ptrActivity())
	s.Close()
	damage(t, filepath.Join(dir, FileName), "records")
	if _, err := Open(ctx, dir, Options{}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("open: %v", err)
	}
	latest, _, err := LatestBackup(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Restore(ctx, dir, RestoreOptions{From: latest.Path})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Damaged || !res.KeptSecrets {
		t.Errorf("restore result %+v", res)
	}
	r := openUnlocked(t, dir, testPass)
	if it, err := r.Get(ctx, b.ID); err != nil || it.Record.(*domain.Beneficiary).Nom != b.Nom {
		t.Fatalf("restored beneficiary: %+v %v", it, err)
	}
	// It keeps working: a save, a backup.
	mustSave(t, r, ptrActivity())
	if _, err := r.Backup(ctx, BackupManual); err != nil {
		t.Fatal(err)
	}
}

// A data directory whose store is gone gets the copy back.
func TestRestoreIntoEmptyDirectory(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	mustSave(t, s, ptrActivity())
	want := ids(t, s)
	bf, err := s.Backup(ctx, BackupManual)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	dir := t.TempDir()
	res, err := Restore(ctx, dir, RestoreOptions{From: bf.Path})
	if err != nil {
		t.Fatal(err)
	}
	if res.Aside != "" || res.KeptSecrets {
		t.Errorf("restore result %+v", res)
	}
	if got := ids(t, openUnlocked(t, dir, testPass)); !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, FileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored file: %v %v", fi.Mode(), err)
	}
}
