// Package store is the agent's encrypted SQLite store: records, their
// field-level change log (the outbox the sync sends), and the key slots
// that unlock the data key.
//
// Every record and change body is sealed before it reaches SQL, so the
// database file, its WAL and any temporary file hold no personal data in
// clear. Only ids, kinds, stamps, sequence numbers and sync state are
// readable without the passphrase — enough for `agent status` and, later,
// for the sync to know what is pending.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/diskspace"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/owneronly"
	"numeribus/internal/seal"
	"numeribus/internal/sqlitex"
	"numeribus/schema"
)

// FileName is the database file inside the data directory.
const FileName = "agent.db"

// Errors callers map to messages and exit codes.
var (
	ErrExists      = apperr.New(apperr.State, "a store already exists in this directory")
	ErrNoStore     = apperr.New(apperr.State, "no store in this directory (run `agent init` first)")
	ErrLocked      = apperr.New(apperr.Locked, "the store is locked: passphrase needed")
	ErrWrongSecret = seal.ErrWrongSecret
	ErrNotFound    = apperr.New(apperr.NotFound, "record not found")
	ErrTooNew      = sqlitex.ErrTooNew
)

// Options tune a store. The zero value is what production uses.
type Options struct {
	Logger *slog.Logger
	// Wall is the wall clock the HLC reads (time.Now when nil).
	Wall func() time.Time
	// KDF are the Argon2id costs of new passphrase slots
	// (seal.DefaultParams when zero); tests lower them.
	KDF seal.KDFParams
	// IndexOnUnlock starts building the lookup index (index.go) in the
	// background as soon as the store is unlocked, for the UI of `agent
	// serve`; otherwise the first Related or SearchNames builds it. The
	// one-shot commands never need it.
	IndexOnUnlock bool
	// FreeSpace measures the room on the data directory's disk
	// (diskspace.Free when nil); tests inject one (disk.go).
	FreeSpace func(dir string) (diskspace.Space, error)
	// KeepBackups is how many backups are kept (DefaultKeepBackups
	// when zero; backup.go).
	KeepBackups int
}

// Store is an open agent store. Reads of clear metadata work while locked;
// everything that touches a record body needs Unlock.
type Store struct {
	dir, path string
	opts      Options
	log       *slog.Logger
	mig       []sqlitex.Migration

	r *sql.DB // read-only pool

	mu       sync.Mutex // serialises writes; guards the fields below
	w        *sql.DB    // the single writer connection, opened at unlock
	key      *seal.Key
	clock    *hlc.Clock
	device   string
	seq      uint64
	consents *consentIndex // nil until first needed after unlock
	// ix is the lookup index (nil until built), ixBuild its build in
	// progress; see index.go.
	ix      *index
	ixBuild *ixBuild
	// dataVersion is the writer's PRAGMA data_version at the last write
	// (when versionKnown): if it moved, another process wrote (catchUp).
	dataVersion  int64
	versionKnown bool

	notify chan struct{} // a token after each commit that logged changes

	// env seals outbox bodies to the hub (nil before enrollment); its
	// key lives in memory while unlocked, like the data key.
	env *envelope
	// hubKnown says hubKey (nil before enrollment) has been read.
	hubKnown bool
	hubKey   []byte

	disk diskWatch // the room on the disk (disk.go)
	// backupMu serialises this Store's copies and their replacement
	// after an erasure; other Stores on the directory, in this process
	// or another, are handled by metaErasures (backup.go).
	backupMu sync.Mutex
}

type envelope struct {
	id  int64
	env *seal.Envelope
}

func migrations() ([]sqlitex.Migration, error) {
	return sqlitex.Load(schema.Agent, "agent")
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.KDF == (seal.KDFParams{}) {
		o.KDF = seal.DefaultParams
	}
	if o.Wall == nil {
		o.Wall = time.Now
	}
	if o.FreeSpace == nil {
		o.FreeSpace = diskspace.Free
	}
	if o.KeepBackups <= 0 {
		o.KeepBackups = DefaultKeepBackups
	}
}

// Create makes a new store in dir protected by passphrase, and returns it
// unlocked with the recovery code, to be shown once.
func Create(ctx context.Context, dir string, passphrase []byte, opts Options) (*Store, string, error) {
	opts.defaults()
	if len(passphrase) == 0 {
		return nil, "", errors.New("empty passphrase")
	}
	p := filepath.Join(dir, FileName)
	if _, err := os.Stat(p); err == nil {
		return nil, "", fmt.Errorf("%s: %w", p, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("checking %s: %w", p, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("creating data directory: %w", err)
	}
	s, code, err := create(ctx, dir, p, passphrase, opts)
	if err != nil {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(p + suffix)
		}
		return nil, "", err
	}
	return s, code, nil
}

func create(ctx context.Context, dir, p string, passphrase []byte, opts Options) (*Store, string, error) {
	mig, err := migrations()
	if err != nil {
		return nil, "", err
	}
	// SQLite gives -wal and -shm the mode of the database file: made
	// 0600 here, before SQLite creates it with the umask's 0644, no file
	// of the store is readable by other accounts of the laptop.
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("creating %s: %w", p, err)
	}
	f.Close()
	w, err := sqlitex.OpenWriter(p)
	if err != nil {
		return nil, "", err
	}
	if _, err := sqlitex.Migrate(ctx, w, mig); err != nil {
		w.Close()
		return nil, "", fmt.Errorf("creating schema: %w", err)
	}
	dek, err := seal.NewKey()
	if err != nil {
		w.Close()
		return nil, "", err
	}
	code, err := seal.NewRecoveryCode()
	if err != nil {
		w.Close()
		return nil, "", err
	}
	norm, _ := seal.NormalizeRecoveryCode(code)
	pass, err := seal.Wrap(dek, passphrase, seal.SlotPassphrase, opts.KDF)
	if err == nil {
		var rec seal.Slot
		rec, err = seal.Wrap(dek, []byte(norm), seal.SlotRecovery, seal.RecoveryParams)
		if err == nil {
			err = initMeta(ctx, w, pass, rec)
		}
	}
	if err != nil {
		dek.Wipe()
		w.Close()
		return nil, "", err
	}
	w.Close()
	s, err := Open(ctx, dir, opts)
	if err != nil {
		dek.Wipe()
		return nil, "", err
	}
	if err := s.unlockWith(ctx, dek); err != nil {
		s.Close()
		return nil, "", err
	}
	s.log.Info("store created", "device", s.device)
	return s, code, nil
}

func initMeta(ctx context.Context, w *sql.DB, slots ...seal.Slot) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UTC().Format(time.RFC3339)
	for k, v := range map[string]any{
		metaDevice: ident.New().String(), metaLastSeq: 0, metaAckedSeq: 0,
		metaHLC: 0, metaCreated: now,
	} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?)`, k, v); err != nil {
			return fmt.Errorf("writing meta %s: %w", k, err)
		}
	}
	for _, sl := range slots {
		if err := insertSlot(ctx, tx, sl); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Open opens the store in dir, locked. It never writes: a wrong passphrase
// given to Unlock later leaves the files byte for byte as they were.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	opts.defaults()
	p := filepath.Join(dir, FileName)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoStore)
	} else if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	// A store made by an earlier agent may be readable by other accounts
	// of the laptop: taken back to its owner before it is read. Only
	// warned about when that fails (a copy owned by someone else): the
	// bodies are sealed, and a mediator must not be locked out of work.
	if err := owneronly.Dir(dir); err != nil {
		opts.Logger.Warn("data directory left as it was", "err", err)
	}
	if err := owneronly.Files(owneronly.SQLite(p)...); err != nil {
		opts.Logger.Warn("data files left as they were", "err", err)
	}
	mig, err := migrations()
	if err != nil {
		return nil, err
	}
	r, err := sqlitex.OpenReader(p, 4)
	if err != nil {
		return nil, err
	}
	if _, err := sqlitex.CheckVersion(ctx, r, mig); err != nil {
		r.Close()
		if sqlitex.IsCorrupt(err) {
			return nil, &DamagedError{Dir: dir, Problems: []string{err.Error()}}
		}
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	// A damaged file found now, with a clear way out (DamagedError),
	// rather than by a failing save in front of the person helped.
	if err := sqlitex.QuickCheck(ctx, r); err != nil {
		r.Close()
		if de, ok := errors.AsType[*sqlitex.DamagedError](err); ok {
			return nil, &DamagedError{Dir: dir, Problems: de.Problems}
		}
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	s := &Store{dir: dir, path: p, opts: opts, log: opts.Logger, mig: mig, r: r, notify: make(chan struct{}, 1)}
	m, err := s.readMeta(ctx)
	if err != nil {
		r.Close()
		return nil, err
	}
	s.device = m.Device
	return s, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Unlock derives the slot keys from secret (a passphrase or the recovery
// code) and keeps the data key in memory until Lock or Close. On success
// it opens the writer and applies pending migrations.
func (s *Store) Unlock(ctx context.Context, secret []byte) error {
	slots, err := s.slots(ctx)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		try := secret
		if sl.Kind == seal.SlotRecovery {
			norm, ok := seal.NormalizeRecoveryCode(string(secret))
			if !ok {
				continue // not shaped like a code: skip the derivation
			}
			try = []byte(norm)
		}
		key, err := sl.Unwrap(try)
		if err == nil {
			return s.unlockWith(ctx, key)
		}
		if !errors.Is(err, seal.ErrWrongSecret) {
			return err
		}
	}
	s.log.Info("unlock refused")
	return ErrWrongSecret
}

func (s *Store) unlockWith(ctx context.Context, key *seal.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.writer(ctx); err != nil {
		key.Wipe()
		return err
	}
	m, err := s.readMeta(ctx)
	if err != nil {
		key.Wipe()
		return err
	}
	s.stopIndex() // built with the key about to go
	if s.key != nil {
		s.key.Wipe()
	}
	s.key = key
	s.device = m.Device
	s.seq = m.LastSeq
	s.clock = hlc.New(s.opts.Wall, hlc.Timestamp(m.HLC))
	s.clock.SetOffset(time.Duration(m.ClockApplied) * time.Millisecond)
	s.consents = nil
	s.versionKnown = false
	if err := s.ensureDraftKey(ctx); err != nil {
		// Drafts are a comfort: the store opens without them.
		s.log.Warn("no draft key: forms open at a lock will not be kept", "err", err)
	}
	if s.opts.IndexOnUnlock {
		s.startIndexBuild()
	}
	return nil
}

// Locked reports whether the data key is absent.
func (s *Store) Locked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key == nil
}

// Lock wipes the data key from memory and forgets decrypted indexes.
func (s *Store) Lock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopIndex()
	s.key.Wipe()
	s.key = nil
	s.consents = nil
	if s.env != nil {
		s.env.env.Key.Wipe()
		s.env = nil
	}
}

// Close locks the store and closes the database.
func (s *Store) Close() error {
	s.Lock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.w != nil {
		errs = append(errs, s.w.Close())
		s.w = nil
	}
	errs = append(errs, s.r.Close())
	return errors.Join(errs...)
}

// Changed delivers a token after each commit that logged new changes:
// the sync loop waits on it to push a record within seconds.
func (s *Store) Changed() <-chan struct{} { return s.notify }

// Seqs returns the last logged and the last acknowledged sequence
// numbers. It works while locked.
func (s *Store) Seqs(ctx context.Context) (last, acked uint64, err error) {
	m, err := s.readMeta(ctx)
	return m.LastSeq, m.AckedSeq, err
}

// Device returns the device id.
func (s *Store) Device() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.device
}

const (
	metaDevice   = "device_id"
	metaLastSeq  = "last_seq"
	metaAckedSeq = "acked_seq"
	metaHLC      = "hlc"
	metaCreated  = "created_at"
	// metaClockApplied is the correction (ms) the clock applies, set when
	// pending changes were restamped; see RestampPending.
	metaClockApplied = "clock_offset_applied_ms"
)

type metaValues struct {
	Device   string
	LastSeq  uint64
	AckedSeq uint64
	HLC      uint64
	Created  string
	// ClockApplied is the clock correction in ms.
	ClockApplied int64
}

func (s *Store) readMeta(ctx context.Context) (metaValues, error) {
	var m metaValues
	rows, err := s.r.QueryContext(ctx, `SELECT key, CAST(value AS TEXT) FROM meta`)
	if err != nil {
		return m, fmt.Errorf("reading meta: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return m, fmt.Errorf("reading meta: %w", err)
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case metaDevice:
			m.Device = v
		case metaLastSeq:
			m.LastSeq = n
		case metaAckedSeq:
			m.AckedSeq = n
		case metaHLC:
			m.HLC = n
		case metaCreated:
			m.Created = v
		case metaClockApplied:
			m.ClockApplied, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return m, rows.Err()
}
