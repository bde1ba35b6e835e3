package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/benchreport"
	"numeribus/internal/sqlitex"
)

// benchBackup times what the store's safety costs on the imported store:
// the quick_check every Open runs, and one backup (VACUUM INTO, then the
// copy's own quick_check), with the copy's size against the store's.
func benchBackup(ctx context.Context, c config, dir string, res *benchreport.Results) error {
	db := filepath.Join(dir, store.FileName)
	r, err := sqlitex.OpenReader(db, 1)
	if err != nil {
		return err
	}
	checks := make([]time.Duration, max(3, c.unlocks))
	for i := range checks {
		t0 := time.Now()
		if err := sqlitex.QuickCheck(ctx, r); err != nil {
			r.Close()
			return err
		}
		checks[i] = time.Since(t0)
	}
	r.Close()
	s, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	fi, err := os.Stat(db)
	if err != nil {
		return err
	}
	t0 := time.Now()
	b, err := s.Backup(ctx, store.BackupManual)
	if err != nil {
		return err
	}
	took := time.Since(t0)
	res.Add("open_quick_check_ms", "quick_check at every open of the imported store (median)", ms(median(checks)), "ms")
	res.Add("backup_ms", "one backup of the imported store (VACUUM INTO + its quick_check)", ms(took), "ms")
	res.Add("backup_bytes_ratio", "backup file / store file", float64(b.Bytes)/float64(fi.Size()), "ratio")
	res.Note("imported store: %d bytes, its backup %d bytes (%s)", fi.Size(), b.Bytes, b.Name())
	return nil
}
