package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/sqlitex"
)

// Backups. The store keeps copies of itself in its data directory
// (backups/), taken by SQLite's VACUUM INTO while the agent works: each
// is the store as of one commit, in one file, and holds what the store
// holds — bodies sealed under the data key, the same key slots — so a
// copy reveals no more than the store does (docs/SECURITY.md). A copy is
// checked (quick_check) before it replaces an older one, and the newest
// KeepBackups are kept. An erasure replaces them all (afterErasure), so
// that no copy keeps erased values, even sealed.
//
// A copy is named agent-<UTC time>-<reason>.db; the time sorts them.

// BackupDir is the directory of the copies inside the data directory.
const BackupDir = "backups"

// DefaultKeepBackups is how many copies are kept unless told otherwise.
const DefaultKeepBackups = 7

// BackupEvery is how old the newest copy may grow while `agent serve`
// runs before it takes another.
const BackupEvery = 24 * time.Hour

// BackupReason says why a copy was taken.
type BackupReason string

// The reasons.
const (
	BackupManual    BackupReason = "manual"    // agent backup
	BackupDaily     BackupReason = "daily"     // agent serve, once a day
	BackupMigration BackupReason = "migration" // before the schema is upgraded
	BackupErasure   BackupReason = "erasure"   // after an erasure replaced the others
	// BackupAside is the store as it was before a restore, kept aside:
	// never rotated away, replaced at an erasure like the others.
	BackupAside BackupReason = "aside"
)

func (r BackupReason) valid() bool {
	switch r {
	case BackupManual, BackupDaily, BackupMigration, BackupErasure, BackupAside:
		return true
	}
	return false
}

// stampLayout is the time in a copy's name: fixed width, so names sort
// as times do.
const stampLayout = "20060102T150405.000Z"

// BackupFile is one copy in the backup directory.
type BackupFile struct {
	Path   string
	Taken  time.Time
	Reason BackupReason
	Bytes  int64
	// Read from the copy (zero when it could not be read: Err says why):
	// no passphrase needed, no personal data.
	Device            string
	LastSeq, AckedSeq uint64
	Records           int
	Err               error
}

// Name is the copy's file name.
func (b BackupFile) Name() string { return filepath.Base(b.Path) }

// metaErasures counts the erasures committed in the store: a copy whose
// count is behind the store's was taken before an erasure whose
// replacement of the copies it may have missed.
const metaErasures = "erasures"

// testHookCopied, when set by a test, runs between a copy and its
// renaming into place.
var testHookCopied func()

// ErrNoBackup is returned when the backup directory holds no usable copy.
var ErrNoBackup = apperr.New(apperr.State, "no backup of the store")

// ErrNoRoomForBackup: a copy would leave the disk nearly full.
var ErrNoRoomForBackup = apperr.New(apperr.State, "not enough room on the disk for a backup")

// Backup takes a copy of the store now and drops the oldest beyond
// KeepBackups. It needs no passphrase, and `agent serve` in another
// process may keep working meanwhile.
func (s *Store) Backup(ctx context.Context, reason BackupReason) (BackupFile, error) {
	if !reason.valid() || reason == BackupAside {
		return BackupFile{}, fmt.Errorf("backup reason %q", reason)
	}
	s.backupMu.Lock()
	defer s.backupMu.Unlock()
	return s.takeBackup(ctx, reason)
}

// takeBackup copies the store into the backup directory; s.backupMu is
// held.
func (s *Store) takeBackup(ctx context.Context, reason BackupReason) (BackupFile, error) {
	dir := filepath.Join(s.dir, BackupDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return BackupFile{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := s.roomForBackup(); err != nil {
		return BackupFile{}, err
	}
	for attempt := 0; ; attempt++ {
		now := s.opts.Wall().UTC()
		final := filepath.Join(dir, backupName(now, reason))
		if _, err := os.Stat(final); err == nil {
			time.Sleep(time.Millisecond) // same millisecond as the last: next name
			continue
		}
		tmp := final + ".tmp"
		os.Remove(tmp)
		if err := sqlitex.VacuumInto(ctx, s.path, tmp); err != nil {
			return BackupFile{}, fmt.Errorf("backing up the store: %w", err)
		}
		if testHookCopied != nil {
			testHookCopied()
		}
		b, err := inspectBackup(ctx, tmp, true)
		if err != nil {
			os.Remove(tmp)
			return BackupFile{}, fmt.Errorf("checking the backup: %w", err)
		}
		if err := os.Rename(tmp, final); err != nil {
			os.Remove(tmp)
			return BackupFile{}, fmt.Errorf("backing up the store: %w", err)
		}
		syncDir(dir)
		// Another process may have committed an erasure since the copy
		// began, and replaced the copies before this one was named:
		// checked after the rename, so that either that process's
		// replacement saw this copy, or this check sees its erasure.
		// Not cancelled: a copy in place is not dropped for a caller
		// that went away meanwhile.
		live, err := readErasures(context.WithoutCancel(ctx), s.r)
		if err != nil || live != b.erasures {
			os.Remove(final)
			if err == nil && attempt < 2 {
				continue // a fresh copy, after the erasure
			}
			return BackupFile{}, fmt.Errorf("the store changed during the backup (erasure): try again: %v", err)
		}
		b.Path, b.Taken, b.Reason = final, now, reason
		s.log.Info("store backed up", "file", b.Name(), "reason", string(reason), "bytes", b.Bytes, "seq", b.LastSeq)
		s.rotate(dir)
		return b.BackupFile, nil
	}
}

func backupName(t time.Time, reason BackupReason) string {
	return "agent-" + t.UTC().Format(stampLayout) + "-" + string(reason) + ".db"
}

// parseBackupName reads the time and reason of a copy's name.
func parseBackupName(name string) (time.Time, BackupReason, bool) {
	rest, ok := strings.CutPrefix(name, "agent-")
	if !ok {
		return time.Time{}, "", false
	}
	rest, ok = strings.CutSuffix(rest, ".db")
	if !ok {
		return time.Time{}, "", false
	}
	stamp, reason, ok := strings.Cut(rest, "-")
	if !ok || !BackupReason(reason).valid() {
		return time.Time{}, "", false
	}
	t, err := time.Parse(stampLayout, stamp)
	if err != nil {
		return time.Time{}, "", false
	}
	return t, BackupReason(reason), true
}

// readErasures reads metaErasures.
func readErasures(ctx context.Context, db *sql.DB) (uint64, error) {
	var v sql.NullString
	err := db.QueryRowContext(ctx, `SELECT CAST(value AS TEXT) FROM meta WHERE key = ?`, metaErasures).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the erasure count: %w", err)
	}
	n, _ := strconv.ParseUint(v.String, 10, 64)
	return n, nil
}

// inspected is a copy as read by inspectBackup.
type inspected struct {
	BackupFile
	erasures uint64
}

// inspectBackup reads a copy's clear metadata, after quick_check when
// check is set: a copy SQLite finds damaged is an error, like a file that
// is no agent store.
func inspectBackup(ctx context.Context, p string, check bool) (inspected, error) {
	b := inspected{BackupFile: BackupFile{Path: p}}
	fi, err := os.Stat(p)
	if err != nil {
		return b, err
	}
	b.Bytes = fi.Size()
	db, err := sqlitex.OpenCopy(p)
	if err != nil {
		return b, err
	}
	defer db.Close()
	if check {
		if err := sqlitex.QuickCheck(ctx, db); err != nil {
			return b, fmt.Errorf("%s: %w", filepath.Base(p), err)
		}
	}
	mig, err := migrations()
	if err != nil {
		return b, err
	}
	if _, err := sqlitex.CheckVersion(ctx, db, mig); err != nil {
		return b, fmt.Errorf("%s: %w", filepath.Base(p), err)
	}
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT CAST(value AS TEXT) FROM meta WHERE key = ?),
		(SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?),
		(SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?),
		(SELECT count(*) FROM records WHERE deleted = 0),
		coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0)`,
		metaDevice, metaLastSeq, metaAckedSeq, metaErasures).Scan(&b.Device, &b.LastSeq, &b.AckedSeq, &b.Records, &b.erasures)
	if err != nil {
		if sqlitex.IsCorrupt(err) {
			return b, fmt.Errorf("%s: %w", filepath.Base(p), &sqlitex.DamagedError{Problems: []string{err.Error()}})
		}
		return b, fmt.Errorf("%s is not an agent store: %w", filepath.Base(p), err)
	}
	return b, nil
}

// roomForBackup refuses a copy that would leave less than MinFreeBytes
// on the disk: a backup must not be what stops the day's work.
func (s *Store) roomForBackup() error {
	d := s.Disk()
	if !d.Known {
		return nil
	}
	need := uint64(0)
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(s.path + suffix); err == nil {
			need += uint64(fi.Size())
		}
	}
	if d.Avail < need+MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free, the copy needs up to %d and %d must stay free", ErrNoRoomForBackup, d.Avail, need, MinFreeBytes)
	}
	return nil
}

// rotate removes the oldest copies beyond KeepBackups (the copies kept
// aside by a restore are not counted, nor removed), and what failed
// copies left behind.
func (s *Store) rotate(dir string) {
	bs, err := listBackupFiles(dir)
	if err != nil {
		s.log.Warn("backups not rotated", "err", err)
		return
	}
	var kept int
	for i := len(bs) - 1; i >= 0; i-- { // newest first
		if bs[i].Reason == BackupAside {
			continue
		}
		kept++
		if kept > s.opts.KeepBackups {
			if err := removeCopy(bs[i].Path); err != nil {
				s.log.Warn("old backup not removed", "file", bs[i].Name(), "err", err)
			}
		}
	}
}

// removeCopy removes a copy and what SQLite may have left beside it.
func removeCopy(p string) error {
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		os.Remove(p + suffix)
	}
	return err
}

// listBackupFiles lists the copies of dir, oldest first, from their
// names only, and removes the temporary files of copies that failed.
func listBackupFiles(dir string) ([]BackupFile, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var out []BackupFile
	for _, e := range es {
		if !e.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(e.Name(), ".db.tmp") {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.Remove(filepath.Join(dir, e.Name())) // a copy cut short long ago
			}
			continue
		}
		t, reason, ok := parseBackupName(e.Name())
		if !ok {
			continue
		}
		b := BackupFile{Path: filepath.Join(dir, e.Name()), Taken: t, Reason: reason}
		if fi, err := e.Info(); err == nil {
			b.Bytes = fi.Size()
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b BackupFile) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// Backups lists the copies in the data directory dir, oldest first, with
// what each says of itself. It needs neither an open store nor a
// passphrase: it serves when the store is damaged.
func Backups(ctx context.Context, dir string) ([]BackupFile, error) {
	bs, err := listBackupFiles(filepath.Join(dir, BackupDir))
	if err != nil {
		return nil, err
	}
	for i := range bs {
		b, err := inspectBackup(ctx, bs[i].Path, false)
		if err != nil {
			bs[i].Err = err
			continue
		}
		bs[i].Device, bs[i].LastSeq, bs[i].AckedSeq, bs[i].Records = b.Device, b.LastSeq, b.AckedSeq, b.Records
	}
	return bs, nil
}

// LatestBackup returns the newest copy of dir (copies kept aside by a
// restore aside) that quick_check finds sound, and the newer ones it had
// to pass over.
func LatestBackup(ctx context.Context, dir string) (BackupFile, []BackupFile, error) {
	bs, err := listBackupFiles(filepath.Join(dir, BackupDir))
	if err != nil {
		return BackupFile{}, nil, err
	}
	var skipped []BackupFile
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i].Reason == BackupAside {
			continue
		}
		b, err := inspectBackup(ctx, bs[i].Path, true)
		if err != nil {
			bs[i].Err = err
			skipped = append(skipped, bs[i])
			continue
		}
		b.Taken, b.Reason = bs[i].Taken, bs[i].Reason
		return b.BackupFile, skipped, nil
	}
	return BackupFile{}, skipped, fmt.Errorf("%s: %w", filepath.Join(dir, BackupDir), ErrNoBackup)
}

// NewestBackup returns when the newest copy (aside copies apart) was
// taken, zero when there is none. It reads names only.
func NewestBackup(dir string) (time.Time, error) {
	bs, err := listBackupFiles(filepath.Join(dir, BackupDir))
	if err != nil {
		return time.Time{}, err
	}
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i].Reason != BackupAside {
			return bs[i].Taken, nil
		}
	}
	return time.Time{}, nil
}

// AutoBackup takes a copy whenever the newest is older than every (at
// once when there is none), until ctx ends: `agent serve` runs it. A copy
// that fails is tried again at the next look (every hour at most), and
// said once in the log, not at each look.
func (s *Store) AutoBackup(ctx context.Context, every time.Duration) {
	look := min(every/24, time.Hour)
	var failing bool
	for {
		newest, err := NewestBackup(s.dir)
		if err == nil && s.opts.Wall().Sub(newest) >= every {
			_, err = s.Backup(ctx, BackupDaily)
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.log.Warn("automatic backup failed", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("automatic backups work again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(look):
		}
	}
}

// afterErasure runs after a write that erased personal data committed:
// the old WAL frames held the erased (sealed) bytes, so they are folded
// into the file, where secure_delete has zeroed the freed cells; and
// every copy in the backup directory is replaced by one fresh copy, so
// that no file keeps the erased values. Every erasure — a person's
// request, a withdrawn consent, a retention purge — commits through
// write(), which calls it. s.mu is held.
func (s *Store) afterErasure(ctx context.Context) {
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		s.log.Warn("checkpoint after erasure failed", "err", err)
	}
	s.backupMu.Lock()
	defer s.backupMu.Unlock()
	dir := filepath.Join(s.dir, BackupDir)
	bs, err := listBackupFiles(dir)
	if err != nil {
		s.log.Error("backups not replaced after an erasure", "err", err)
		return
	}
	if len(bs) == 0 {
		return
	}
	for _, b := range bs {
		if err := removeCopy(b.Path); err != nil {
			s.log.Error("backup not removed after an erasure", "file", b.Name(), "err", err)
		}
	}
	syncDir(dir)
	if _, err := s.takeBackup(ctx, BackupErasure); err != nil {
		s.log.Warn("no fresh backup after an erasure", "err", err)
	}
}

// syncDir flushes a directory's entries (a rename) to the disk, where
// the system allows it.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// backupBeforeMigration copies the store before its schema is upgraded
// from version v. A copy that cannot be taken (a full disk) does not stop
// the upgrade: each migration is one transaction, and a mediator locked
// out of their work is the worse outcome; the log says so.
func (s *Store) backupBeforeMigration(ctx context.Context, v int) {
	if _, err := s.Backup(ctx, BackupMigration); err != nil {
		s.log.Warn("no backup before the schema upgrade", "from", v, "to", len(s.mig), "err", err)
	}
}
