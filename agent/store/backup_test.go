package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/sqlitex"
)

// personal lists the identifying values of followed(): none may appear
// in clear in any file.
var personal = []string{"Lefèvre-Garnier", "0612345678", "helene.lefevre@example.fr", "Revoir Hélène pour sa déclaration"}

func backupsOf(t *testing.T, dir string) []BackupFile {
	t.Helper()
	bs, err := Backups(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// A backup is the store as it was, sealed as it is: the identifying
// values are nowhere in its bytes, while the clear metadata (the device
// id) is — the scan would find them if they were there in clear.
func TestBackupHoldsNoPlaintext(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	bf, err := s.Backup(ctx, BackupManual)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(bf.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(s.Device())) {
		t.Fatal("the device id is not in the backup: the scan proves nothing")
	}
	for _, v := range personal {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("the backup holds %q in clear", v)
		}
	}
	if bf.Records != 3 || bf.Device != s.Device() || bf.LastSeq != 3 || bf.Reason != BackupManual {
		t.Errorf("backup described as %+v", bf)
	}
	if fi, err := os.Stat(filepath.Join(s.dir, BackupDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("backup directory: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(bf.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", fi.Mode(), err)
	}
}

// The newest KeepBackups copies stay; a copy kept aside by a restore is
// neither counted nor removed.
func TestBackupRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s, _, err := Create(ctx, dir, []byte(testPass), Options{KDF: testKDF, KeepBackups: 3, Wall: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	aside := filepath.Join(dir, BackupDir, backupName(now.Add(-time.Hour), BackupAside))
	os.MkdirAll(filepath.Dir(aside), 0o700)
	if err := sqlitex.VacuumInto(ctx, s.Path(), aside); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		now = now.Add(24 * time.Hour)
		bf, err := s.Backup(ctx, BackupDaily)
		if err != nil {
			t.Fatal(err)
		}
		if i >= 2 {
			want = append(want, bf.Name())
		}
	}
	var got []string
	for _, b := range backupsOf(t, dir) {
		if b.Reason != BackupAside {
			got = append(got, b.Name())
		} else if b.Path != aside {
			t.Errorf("aside copy %s", b.Name())
		}
	}
	if len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Errorf("the aside copy was rotated away: %v", err)
	}
}

// After an erasure no earlier copy remains: they are replaced by one
// taken after it, in which the person is erased.
func TestErasureReplacesBackups(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	var before []string
	for range 2 {
		bf, err := s.Backup(ctx, BackupManual)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, bf.Name())
	}
	if _, err := s.EraseBeneficiary(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	bs := backupsOf(t, s.dir)
	if len(bs) != 1 || bs[0].Reason != BackupErasure {
		t.Fatalf("backups after the erasure: %+v", bs)
	}
	for _, n := range before {
		if bs[0].Name() == n {
			t.Fatalf("copy %s from before the erasure kept", n)
		}
	}
	if got := restoredBeneficiary(t, bs[0].Path, b.ID); got.Identified() {
		t.Fatalf("the fresh copy still identifies the person: %+v", got)
	}
}

// restoredBeneficiary opens copy p as a store (in a directory of its
// own) and returns beneficiary id.
func restoredBeneficiary(t *testing.T, p string, id ident.ID) *domain.Beneficiary {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if err := copyFile(p, filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	it, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return it.Record.(*domain.Beneficiary)
}

// A copy taken by one program while another erases: the eraser replaces
// the copies it finds, and the copy being taken, from before the
// erasure, must not survive it. Two stores on one directory stand for
// the two programs; the erasure lands between the copy and its naming.
func TestBackupDuringAnotherProgramsErasure(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	if _, err := s.Backup(ctx, BackupManual); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, s.dir, Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Unlock(ctx, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	erased := false
	testHookCopied = func() {
		if erased {
			return
		}
		erased = true
		if _, err := other.EraseBeneficiary(ctx, b.ID); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookCopied = nil }()
	if _, err := s.Backup(ctx, BackupManual); err != nil {
		t.Fatal(err)
	}
	bs := backupsOf(t, s.dir)
	if len(bs) != 2 {
		t.Fatalf("backups: %+v", bs)
	}
	for _, bf := range bs {
		if got := restoredBeneficiary(t, bf.Path, b.ID); got.Identified() {
			t.Errorf("%s, taken around the erasure, still identifies the person", bf.Name())
		}
	}
}

// Backups reads names it knows only; LatestBackup passes over a damaged
// copy to the newest sound one, and says so.
func TestLatestBackupSkipsDamaged(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	mustSave(t, s, ptrActivity())
	good, err := s.Backup(ctx, BackupManual)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	bad, err := s.Backup(ctx, BackupManual)
	if err != nil {
		t.Fatal(err)
	}
	damage(t, bad.Path, "records")
	os.WriteFile(filepath.Join(s.dir, BackupDir, "notes.txt"), []byte("x"), 0o600)
	got, skipped, err := LatestBackup(ctx, s.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != good.Path || len(skipped) != 1 || skipped[0].Path != bad.Path {
		t.Fatalf("latest %s, skipped %+v; want %s after skipping %s", got.Name(), skipped, good.Name(), bad.Name())
	}
	if n := len(backupsOf(t, s.dir)); n != 2 {
		t.Errorf("Backups lists %d files, want the 2 copies", n)
	}
}

func ptrActivity() *domain.Activity {
	_, _, a := followed()
	a.Beneficiaire = nil
	a.Autonomie = ""
	return a
}

// damage overwrites the start of table's root page in the database file
// p, as a failing disk would.
func damage(t *testing.T, p, table string) {
	t.Helper()
	db, err := sqlitex.OpenCopy(p)
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	err = db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name = ?`, table).Scan(&root)
	if err == nil {
		err = db.QueryRow(`PRAGMA page_size`).Scan(&pageSize)
	}
	db.Close()
	if err != nil || root < 2 {
		t.Fatalf("root page of %s: %d %v", table, root, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 64), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
}

// AutoBackup takes a copy at once when there is none, and no other while
// the newest is younger than the period.
func TestAutoBackup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, _ := mustCreate(t)
	done := make(chan struct{})
	go func() { s.AutoBackup(ctx, 240*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(backupsOf(t, s.dir)) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	bs := backupsOf(t, s.dir)
	if len(bs) < 2 || bs[0].Reason != BackupDaily {
		t.Fatalf("backups: %+v", bs)
	}
	if gap := bs[1].Taken.Sub(bs[0].Taken); gap < 240*time.Millisecond {
		t.Errorf("two copies %v apart, the period is 240ms", gap)
	}
}

// A store opened with damaged pages is refused with a DamagedError that
// names its directory, not opened to fail later.
func TestOpenFindsDamage(t *testing.T) {
	ctx := context.Background()
	s, _ := mustCreate(t)
	b, c, a := followed(domain.FinaliteSuivi)
	mustSave(t, s, b, c, a)
	dir := s.dir
	s.Close() // the WAL folded into the file
	damage(t, filepath.Join(dir, FileName), "records")
	_, err := Open(ctx, dir, Options{KDF: testKDF})
	var de *DamagedError
	if !errors.As(err, &de) || de.Dir != dir || !errors.Is(err, ErrDamaged) {
		t.Fatalf("Open of a damaged store: %v, want DamagedError", err)
	}
}
