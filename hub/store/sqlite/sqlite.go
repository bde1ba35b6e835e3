// Package sqlite is the hub's store on one SQLite file (modernc, no cgo).
// It holds four jobs, each in its files, each behind an interface a
// second backend (PostgreSQL) implements too:
//
//   - the sync store (hub/store.Store, checked by hub/store/storetest):
//     devices and enrollment (devices.go), the merge of pushed batches
//     into record states and the change log (apply.go, multi.go), refused
//     changes (reject.go), pulls and divergence tags (read.go, tags.go),
//     the consents of a batch's persons (consents.go);
//   - the facts (facts.go, facts_follow.go, facts_read.go): the
//     statistical fields of every record in indexed tables, following the
//     change log, read back as hub/report.Source;
//   - the dashboard's accounts (accounts.go, hub/accounts.Store);
//   - the coordinators' planning (plan.go): tour stops written as
//     hub-authored changes.
//
// What is not SQL lives outside, shared by every backend: the merge rule
// (internal/merge), what a record contributes to the indicators
// (report.ActivityFactOf and the other FactOf functions), which index
// ranges a report query reads (report.Query.Branches), the erasure scrub
// (internal/change.WithoutPersonal), the value checks of pushed changes
// (syncserver, change.CheckValues). A backend writes facts down and reads
// them back; it decides none of them.
//
// Like the agent's store it keeps two handles on the file: a single
// writer connection with immediate transactions, so writers queue in Go
// instead of failing with SQLITE_BUSY, and a pool of read-only
// connections that WAL lets run beside the writer. Schema migrations are
// the numbered files of schema/hub, applied at Open.
//
// Unlike the agent, the hub keeps record states and change fields in
// clear: it is where the data is consolidated. Erasure is therefore
// enforced here too: an erase change strips the personal fields from the
// record and from every earlier change of it in the log, and the WAL is
// checkpointed so the erased bytes do not linger (secure_delete is on).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/owneronly"
	"numeribus/internal/sqlitex"
	"numeribus/schema"
)

// ErrTooNew is returned by Open for a file written by a newer hub.
var ErrTooNew = sqlitex.ErrTooNew

// Options tune a store. The zero value is what production uses.
type Options struct {
	// Logger receives warnings about skipped changes (nil: discarded).
	Logger *slog.Logger
	// Host is set by `hub serve`: its busy writes make way for the hub
	// commands run beside it (guests.go). Every other store is a guest.
	Host bool

	// pause is when background checkpoints come (zero: ckptQuiet and
	// ckptMaxLag); tests shorten or lengthen it.
	pause ckptPause
}

// ckptPause is when the background checkpointer runs: once the commits
// have paused for quiet, or maxLag after the first one it has not
// checkpointed.
type ckptPause struct{ quiet, maxLag time.Duration }

// readConns is the size of the read pool.
const readConns = 4

// readPragmas size the read connections for the dashboard's reports, which
// scan a territory's year of facts (about 125,000 rows for a département
// on a hub of a million activities): the file is mapped rather than read
// page by page with a system call each, and each connection keeps a
// larger page cache between requests.
var readPragmas = []string{"mmap_size(1073741824)", "cache_size(-32768)"}

// syncReadConns and syncReadPragmas size the sync's own read pool: pull
// pages, log tags, device and consent look-ups. A thousand agents pulling
// read the whole log; through the mapped file of the report pool its
// pages counted in the hub's resident memory (448 MiB at the peak of a
// burst, of which 266 its own), read with pread they stay in the
// kernel's page cache, shared and reclaimable, and the small per
// connection cache keeps the hot index pages. The report pool's queues
// do not hold up the agents' pulls either.
const syncReadConns = 4

var syncReadPragmas = []string{"mmap_size(0)"}

// Store is an open hub store, safe for concurrent use.
type Store struct {
	path string
	log  *slog.Logger
	host bool
	// guestStop ends the touches of presence, the guest or host file
	// (touching is closed once they have ended); gate is the host's side
	// (guests.go).
	guestStop chan struct{}
	touching  <-chan struct{}
	presence  string
	gate      guestGate

	chain *store.LogChain // the pull cursors' tags (store.LogChain)

	w *sql.DB // the single writer connection
	r *sql.DB // read-only pool: reports, the dashboard, commands
	// sr is the sync's read-only pool (syncReadPragmas).
	sr *sql.DB

	// Statements of the ApplyBatch hot path, prepared once on the writer
	// connection and bound to each transaction with Tx.StmtContext.
	stDevice, stUpdDevice                              *sql.Stmt
	getRecs, putRecs, insRecs, insChanges, putSubjects *multi

	// Background checkpoints (see startCheckpointer): their connection,
	// the request for one, and the end of the goroutine. ckMu is held
	// by a checkpoint running, so that the one following an erasure is
	// not refused as busy. pause is when they come.
	ck             *sql.DB
	pause          ckptPause
	kick           chan struct{}
	ckStop, ckDone chan struct{}
	ckMu           sync.Mutex
	closeOnce      sync.Once

	// The fact tables' follower (facts_follow.go): facts cover the change
	// log up to factsAt; factsMu serialises catch-ups.
	factsAt                         atomic.Int64
	factsMu                         sync.Mutex
	factsKick, factsStop, factsDone chan struct{}
	// batchesWaiting counts the batches waiting for the writer: the
	// follower lets them pass before each of its steps.
	batchesWaiting atomic.Int32
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Preparer = (*Store)(nil)
)

// Migrations returns the hub schema's migrations.
func Migrations() ([]sqlitex.Migration, error) {
	return sqlitex.Load(schema.Hub, "hub")
}

// Open opens the store at path, creating the file (mode 0600) if absent;
// its directory must exist. Pending migrations are applied; a file from
// a newer hub is refused with ErrTooNew.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mig, err := Migrations()
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("opening hub store: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("opening hub store: %s is not a directory", filepath.Dir(path))
	}
	// The file holds personal data in clear: create it readable by the
	// hub's user only (SQLite gives the -wal and -shm files the same mode).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating hub store: %w", err)
	}
	// A file made before that rule (0644) is taken back to its owner,
	// with its -wal and -shm, or the hub does not start: its records are
	// in clear.
	if err := owneronly.Files(owneronly.SQLite(path)...); err != nil {
		return nil, fmt.Errorf("opening hub store: %w", err)
	}
	// A command waits for its turn beside a busy hub rather than fail
	// (guests.go), and the hub for the commands' short writes: six
	// commands at once beside a hub slowed by the race detector took
	// more than SQLite's 5 s on either side.
	w, err := sqlitex.OpenWriter(path, fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	if err != nil {
		return nil, err
	}
	if _, err := sqlitex.Migrate(ctx, w, mig); err != nil {
		w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	r, err := sqlitex.OpenReader(path, readConns, readPragmas...)
	if err != nil {
		w.Close()
		return nil, err
	}
	sr, err := sqlitex.OpenReader(path, syncReadConns, syncReadPragmas...)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	s := &Store{path: path, log: log, w: w, r: r, sr: sr, host: opts.Host}
	s.chain = store.NewLogChain(s.scanLog)
	s.guestStop = make(chan struct{})
	s.presence = guestFile(path)
	if s.host {
		s.presence = hostFile(path)
	}
	s.touching = startTouching(s.presence, s.guestStop)
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.backfillFacts(ctx); err != nil { // a hub upgraded to the fact tables
		s.Close()
		return nil, err
	}
	if err := s.backfillConsentSubjects(ctx); err != nil { // a hub upgraded to consent_subjects
		s.Close()
		return nil, err
	}
	s.pause = opts.pause
	if s.pause == (ckptPause{}) {
		s.pause = ckptPause{ckptQuiet, ckptMaxLag}
	}
	if err := s.startCheckpointer(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.startFactsFollower()
	return s, nil
}

// Checkpoints: SQLite copies the WAL back into the database file, by
// default on the connection that commits, once the WAL holds 1000 pages:
// during a push that was a sixth of the writer's time, two fsyncs
// included, while nothing else could commit. Here a goroutine on a
// connection of its own runs PASSIVE checkpoints (they never block the
// writer, nor wait for readers) once the commits pause for ckptQuiet, or
// ckptMaxLag after the first commit not checkpointed when they never do.
// Checkpointing every 50 ms during a burst copied the same hot pages (the
// indexes' inner and last pages) back again and again and took the disk
// and a core from the writer: on a 100,000-change push, the writer's turn
// ran at 0.78 × the raw insert of the same rows with them, 0.94 × without
// (the raw insert never checkpoints). A burst is now written to the WAL,
// then copied once. The writer's own automatic checkpoint stays as a
// backstop at walBackstop pages: SQLite restarts the WAL from its
// beginning only when a writer begins after a complete checkpoint, which
// under a steady stream of commits the background one never is; the
// writer then restarts it itself, finding most pages already copied. The
// WAL thus stays under about walBackstop pages (a 100,000-change push
// writes about 30,000). Durability: in WAL mode with synchronous=NORMAL a
// commit survives a crash of the process at once and a power cut once
// checkpointed — within ckptMaxLag, plus the checkpoint's own time; an
// agent whose acknowledged changes the hub lost sends them again (the
// Welcome's mark is behind its own: docs/PROTOCOL.md).
const (
	walBackstop = 65536 // pages of the WAL beyond which the writer checkpoints (256 MiB)
	ckptQuiet   = 100 * time.Millisecond
	ckptMaxLag  = 2 * time.Second
)

// startCheckpointer raises the writer's automatic checkpoint to the
// backstop and starts the background checkpoints.
func (s *Store) startCheckpointer(ctx context.Context) error {
	// The writer pool holds its one connection for good (sqlitex), so the
	// setting stays; were the connection replaced, the new one would
	// checkpoint at SQLite's default, correct and only slower.
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walBackstop)); err != nil {
		return fmt.Errorf("setting the checkpoint backstop: %w", err)
	}
	ck, err := sql.Open("sqlite", sqlitex.DSN(s.path, false))
	if err != nil {
		return fmt.Errorf("opening %s for checkpoints: %w", s.path, err)
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	ck.SetConnMaxIdleTime(0)
	ck.SetConnMaxLifetime(0)
	s.ck = ck
	s.kick = make(chan struct{}, 1)
	s.ckStop = make(chan struct{})
	s.ckDone = make(chan struct{})
	go s.checkpointer()
	return nil
}

// checkpointed asks for a background checkpoint (after a commit).
func (s *Store) checkpointed() {
	s.factsChanged()
	select {
	case s.kick <- struct{}{}:
	default: // one is already asked for
	}
}

func (s *Store) checkpointer() {
	defer close(s.ckDone)
	for {
		select {
		case <-s.ckStop:
			return
		case <-s.kick:
		}
		// Closing while it waits: the commits waiting for it are
		// checkpointed all the same (another process may keep the file
		// open, and SQLite checkpoints only at the last close).
		open := s.waitForPause()
		s.ckMu.Lock()
		var busy, frames, done int
		err := s.ck.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
		s.ckMu.Unlock()
		if err != nil {
			s.log.Warn("background checkpoint failed", "err", err)
		}
		if !open {
			return
		}
	}
}

// waitForPause waits until no commit has come for s.pause.quiet, or for
// s.pause.maxLag at most: false when the store is closing.
func (s *Store) waitForPause() bool {
	return store.WaitForPause(s.ckStop, s.kick, s.pause.quiet, s.pause.maxLag)
}

func (s *Store) prepare(ctx context.Context) error {
	var err error
	if s.stDevice, err = s.w.PrepareContext(ctx, `SELECT num, team, hwm, revoked_at FROM devices WHERE id = ?`); err != nil {
		return fmt.Errorf("preparing: %w", err)
	}
	if s.stUpdDevice, err = s.w.PrepareContext(ctx, `UPDATE devices SET hwm = ?,
		bytes_received = bytes_received + ?, changes_received = changes_received + ? WHERE num = ?`); err != nil {
		return fmt.Errorf("preparing: %w", err)
	}
	if s.getRecs, err = prepareMulti(ctx, s.w, `SELECT id, kind, team, state FROM records WHERE id IN (`, 1, ", ", `)`); err != nil {
		return err
	}
	// New records get their kind, team and origin; existing ones keep
	// theirs and take the merged state.
	if s.putRecs, err = prepareMulti(ctx, s.w, `INSERT INTO records(id, kind, team, origin, hlc, deleted, erased, state) VALUES `, 8, ", ",
		` ON CONFLICT(id) DO UPDATE SET hlc = excluded.hlc, deleted = excluded.deleted, erased = excluded.erased, state = excluded.state`); err != nil {
		return err
	}
	// ApplyBatch's first try: every record new (applyNew).
	if s.insRecs, err = prepareMulti(ctx, s.w, `INSERT INTO records(id, kind, team, origin, hlc, deleted, erased, state) VALUES `, 8, ", ",
		` ON CONFLICT(id) DO NOTHING`); err != nil {
		return err
	}
	if s.insChanges, err = prepareMulti(ctx, s.w, `INSERT INTO changes(team, device, dseq, kind, record_id, op, hlc, fields) VALUES `, 8, ", ", ``); err != nil {
		return err
	}
	if s.putSubjects, err = prepareMulti(ctx, s.w, `INSERT INTO consent_subjects(id, team, beneficiary) VALUES `, 3, ", ", " "+putSubjectConflict); err != nil {
		return err
	}
	return nil
}

// exec runs one writing statement in an immediate transaction. Run
// alone, a statement first takes a read snapshot, then waits for the write
// lock; if another process commits meanwhile (a busy hub, a command beside
// it), SQLite answers SQLITE_BUSY_SNAPSHOT at once, whatever the busy
// timeout: BEGIN IMMEDIATE takes the write lock first.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return res, tx.Commit()
}

// Ping checks that the file reads.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&n)
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the store's connections.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.guestStop != nil {
			close(s.guestStop)
			<-s.touching
			leave(s.presence)
		}
		if s.factsStop != nil {
			close(s.factsStop)
			<-s.factsDone
		}
		if s.ckStop != nil {
			close(s.ckStop)
			<-s.ckDone
		}
	})
	var errs []error
	if s.ck != nil {
		errs = append(errs, s.ck.Close())
	}
	for _, st := range []*sql.Stmt{s.stDevice, s.stUpdDevice} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, m := range []*multi{s.getRecs, s.putRecs, s.insRecs, s.insChanges, s.putSubjects} {
		if m != nil {
			errs = append(errs, m.close())
		}
	}
	errs = append(errs, s.w.Close(), s.r.Close(), s.sr.Close())
	return errors.Join(errs...)
}

// Times are stored as Unix milliseconds, NULL for the zero time.

func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64).UTC()
}
