package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/seal"
	"numeribus/internal/territoire"
)

// The lookup index answers a person's page and a name search without
// decrypting every record: for each beneficiary, the live consents,
// assessments and activities that refer to it, and the folded names of
// the live beneficiaries. It lives in memory only, while the store is
// unlocked: built by decrypting every record once (on every core, in the
// background after Unlock with Options.IndexOnUnlock, else at the first
// lookup), kept up to date by every write of this process after its
// commit. Lock wipes it.
//
// Another process's commits move the writer connection's PRAGMA
// data_version. The next lookup then catches up from the change log when
// that is exact — every record row a process writes locally comes with a
// logged change — or builds the index again when the other process
// applied pulled changes (which log none: the pull cursor moved).
//
// It only finds candidates: Related and SearchNames read each one from
// SQL, decrypt it and check it again as the scan did, so a stale entry can
// never show a record that does not belong.

// ixRef is the beneficiary a live consent, assessment or activity refers
// to, and the place of its kind in domain.Kinds (Related's order).
type ixRef struct {
	ref   ident.ID
	order uint8
}

// ixName is a live beneficiary's name folded as the search compares it:
// territoire.Normalize of "prenom nom" and of "nom prenom". Personal data:
// byte slices, wiped when the entry goes (erasure, lock).
type ixName struct{ name, rev []byte }

func (n ixName) wipe() {
	clear(n.name)
	clear(n.rev)
}

// ixUpdate is what a write, the build or a catch-up learnt of one record.
type ixUpdate struct {
	id   ident.ID
	ref  ixRef  // zero ref: it refers to nobody (or it is deleted)
	name ixName // nil unless a live beneficiary with a name
	// parts are the followed participants of a workshop, besides ref.
	parts []ident.ID
}

// ixMark is where the store was when the index last matched it.
type ixMark struct {
	version int64  // the writer connection's data_version
	seq     uint64 // meta last_seq: every change up to it is in the index
	cursor  string // meta pull_cursor: pulled changes log nothing
}

type index struct {
	mark  ixMark
	size  int                     // records read by the build
	refOf map[ident.ID]ixRef      // record → the beneficiary it refers to
	refs  map[ident.ID][]ident.ID // beneficiary → records referring to it
	names map[ident.ID]ixName
	// partsOf: workshop → its followed participants (few workshops have
	// any: kept apart from refOf, one entry a record).
	partsOf map[ident.ID][]ident.ID
}

func newIndex() *index {
	return &index{refOf: map[ident.ID]ixRef{}, refs: map[ident.ID][]ident.ID{}, names: map[ident.ID]ixName{},
		partsOf: map[ident.ID][]ident.ID{}}
}

// set replaces what the index holds of u.id.
func (x *index) set(u ixUpdate) {
	if old, ok := x.refOf[u.id]; ok {
		x.unref(old.ref, u.id)
		delete(x.refOf, u.id)
	}
	for _, p := range x.partsOf[u.id] {
		x.unref(p, u.id)
	}
	delete(x.partsOf, u.id)
	if old, ok := x.names[u.id]; ok {
		old.wipe()
		delete(x.names, u.id)
	}
	x.add(u)
}

// unref removes record id from the records referring to b.
func (x *index) unref(b, id ident.ID) {
	rs := x.refs[b]
	if i := slices.Index(rs, id); i >= 0 {
		rs = slices.Delete(rs, i, i+1)
	}
	if len(rs) == 0 {
		delete(x.refs, b)
	} else {
		x.refs[b] = rs
	}
}

// add adds u, for a record the index does not hold yet (a build).
func (x *index) add(u ixUpdate) {
	if !u.ref.ref.IsZero() {
		x.refOf[u.id] = u.ref
		x.refs[u.ref.ref] = append(x.refs[u.ref.ref], u.id)
	}
	if len(u.parts) > 0 {
		x.partsOf[u.id] = u.parts
		for _, p := range u.parts {
			x.refs[p] = append(x.refs[p], u.id)
		}
	}
	if u.name.name != nil {
		x.names[u.id] = u.name
	}
}

// wipe zeroes the names and drops everything.
func (x *index) wipe() {
	for _, n := range x.names {
		n.wipe()
	}
	x.refOf, x.refs, x.names, x.partsOf = nil, nil, nil, nil
}

func wipeUpdates(us []ixUpdate) {
	for _, u := range us {
		u.name.wipe()
	}
}

// The fields the index reads, by kind: the names of beneficiaries, the
// beneficiary of the others.
var ixFields = func() map[domain.Kind][]uint64 {
	num := func(k domain.Kind, name string) uint64 {
		for _, f := range domain.Fields(k) {
			if f.Name == name {
				return f.Num
			}
		}
		panic("store: " + string(k) + " has no field " + name)
	}
	return map[domain.Kind][]uint64{
		domain.KindBeneficiary: {num(domain.KindBeneficiary, "prenom"), num(domain.KindBeneficiary, "nom")},
		domain.KindConsent:     {num(domain.KindConsent, "beneficiaire")},
		domain.KindAssessment:  {num(domain.KindAssessment, "beneficiaire")},
		domain.KindActivity:    {num(domain.KindActivity, "beneficiaire"), num(domain.KindActivity, "participants")},
	}
}()

// ixKinds are the kinds indexed, by name.
var ixKinds = func() map[string]domain.Kind {
	m := map[string]domain.Kind{}
	for k := range ixFields {
		m[string(k)] = k
	}
	return m
}()

// kindOrder is the place of each kind in domain.Kinds.
var kindOrder = func() map[domain.Kind]uint8 {
	m := map[domain.Kind]uint8{}
	for i, k := range domain.Kinds {
		m[k] = uint8(i)
	}
	return m
}()

// ixEntry is the index entry of record id of kind k, from its live values
// of ixFields[k] (nil where absent). ok is false for kinds not indexed.
func ixEntry(k domain.Kind, id ident.ID, deleted bool, vals [][]byte) (u ixUpdate, ok bool) {
	if _, ok := ixFields[k]; !ok {
		return u, false
	}
	u = ixUpdate{id: id}
	if deleted {
		return u, true
	}
	if k == domain.KindBeneficiary {
		prenom, _ := change.Text(vals[0])
		nom, _ := change.Text(vals[1])
		if len(prenom)+len(nom) > 0 {
			u.name = foldNames(prenom, nom)
		}
		return u, true
	}
	if vals[0] != nil {
		// An id is a 16-byte byte string; anything else goes through the
		// decoder of whole records. A value that does not decode leaves
		// no reference: the record does not decode either, and the scan
		// skipped it.
		var ref ident.ID
		if b, ok := change.Bytes(vals[0]); ok && len(b) == len(ref) {
			copy(ref[:], b)
			u.ref = ixRef{ref: ref, order: kindOrder[k]}
		} else if change.Unmarshal(vals[0], &ref) == nil {
			u.ref = ixRef{ref: ref, order: kindOrder[k]}
		}
	}
	if k == domain.KindActivity && len(vals) > 1 && vals[1] != nil {
		// A workshop's followed participants refer to their people too.
		var p domain.Participants
		if change.Unmarshal(vals[1], &p) == nil {
			for _, b := range p.Beneficiaires {
				if !b.IsZero() && b != u.ref.ref && !slices.Contains(u.parts, b) {
					u.parts = append(u.parts, b)
				}
			}
		}
	}
	return u, true
}

// ixEntryOfRow is ixEntry from a stored (decrypted) state.
func ixEntryOfRow(k domain.Kind, id ident.ID, raw []byte, vals [][]byte) ixUpdate {
	nums := ixFields[k]
	deleted, err := merge.PeekFields(raw, nums, vals[:len(nums)])
	if err != nil {
		// The scan skips a record it cannot decode.
		deleted = false
		clear(vals)
	}
	u, _ := ixEntry(k, id, deleted, vals[:len(nums)])
	return u
}

// foldNames folds a name as the search always has: Normalize(prenom+" "+nom)
// and Normalize(nom+" "+prenom), through a scratch buffer it wipes.
func foldNames(prenom, nom []byte) ixName {
	scratch := make([]byte, 0, len(prenom)+1+len(nom))
	scratch = append(append(append(scratch, prenom...), ' '), nom...)
	name := territoire.AppendNormalized(nil, scratch)
	scratch = append(append(append(scratch[:0], nom...), ' '), prenom...)
	rev := territoire.AppendNormalized(nil, scratch)
	clear(scratch)
	if len(name) == 0 {
		return ixName{}
	}
	return ixName{name: name, rev: rev}
}

// ixEntryOfState is ixEntry from a merged state (a write).
func ixEntryOfState(k domain.Kind, id ident.ID, st *merge.State) (ixUpdate, bool) {
	nums, ok := ixFields[k]
	if !ok {
		return ixUpdate{}, false
	}
	var buf [2][]byte
	vals := buf[:len(nums)]
	for i, n := range nums {
		if v := st.Fields[n]; !bytes.Equal(v, change.Null) {
			vals[i] = v
		}
	}
	return ixEntry(k, id, st.IsDeleted(), vals)
}

// ixBuild is a build of the index in progress.
type ixBuild struct {
	cancel  context.CancelFunc
	stopped chan struct{} // closed once the build no longer reads the key
	done    chan struct{} // closed once the build is installed or dropped
	err     error         // why it failed; set before done is closed
	// pending holds the updates of this process's writes committed
	// while the build read the store: applied over its result.
	pending []ixUpdate
}

// indexing reports whether writes must collect index updates. s.mu held.
func (s *Store) indexing() bool { return s.ix != nil || s.ixBuild != nil }

// indexCommitted hands the updates of a committed write to the index, or
// to the build in progress. s.mu held.
func (s *Store) indexCommitted(ctx context.Context, us []ixUpdate) {
	switch {
	case s.ix != nil:
		for _, u := range us {
			s.ix.set(u)
		}
		s.advanceMark(ctx, s.ix)
	case s.ixBuild != nil:
		s.ixBuild.pending = append(s.ixBuild.pending, us...)
	default:
		wipeUpdates(us)
	}
}

// advanceMark moves x's mark past this process's own commits: if no other
// process committed since x matched the store, it matches it still.
func (s *Store) advanceMark(ctx context.Context, x *index) {
	m, err := s.readMark(ctx)
	if err != nil {
		s.log.Warn("reading the store's mark for the lookup index", "err", err)
		return // the next lookup catches up
	}
	if m.version == x.mark.version {
		x.mark = m
	}
}

// stopIndex cancels a build in progress, waiting until it no longer reads
// the key, and wipes the index. s.mu held.
func (s *Store) stopIndex() {
	if b := s.ixBuild; b != nil {
		b.cancel()
		<-b.stopped
		s.ixBuild = nil
		wipeUpdates(b.pending)
		b.pending = nil
	}
	if s.ix != nil {
		s.ix.wipe()
		s.ix = nil
	}
}

// readMark reads, on the writer connection, its PRAGMA data_version — it
// moves when another connection (another process) commits, never for this
// process's own commits, all made on it — with the last seq and the pull
// cursor, in one statement.
func (s *Store) readMark(ctx context.Context) (ixMark, error) {
	var m ixMark
	err := s.w.QueryRowContext(ctx, `SELECT (SELECT data_version FROM pragma_data_version),
		coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0),
		coalesce((SELECT CAST(value AS TEXT) FROM meta WHERE key = ?), '')`,
		metaLastSeq, metaPullCursor).Scan(&m.version, &m.seq, &m.cursor)
	if err != nil {
		return m, fmt.Errorf("reading data_version: %w", err)
	}
	return m, nil
}

// startIndexBuild starts building the index in the background. s.mu held,
// store unlocked.
func (s *Store) startIndexBuild() *ixBuild {
	ctx, cancel := context.WithCancel(context.Background())
	b := &ixBuild{cancel: cancel, stopped: make(chan struct{}), done: make(chan struct{})}
	s.ixBuild = b
	// Read before the build's snapshot: a commit from another process
	// after this moves the version, and the next lookup catches up.
	mark, merr := s.readMark(ctx)
	key := s.key
	go func() {
		defer close(b.done)
		t0 := time.Now()
		var x *index
		err := merr
		if err == nil {
			x, err = s.buildIndex(ctx, key)
		}
		close(b.stopped)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ixBuild != b { // stopped (Lock, another unlock): dropped
			if x != nil {
				x.wipe()
			}
			return
		}
		s.ixBuild = nil
		if err != nil {
			wipeUpdates(b.pending)
			b.pending = nil
			b.err = err
			s.log.Error("building the lookup index failed", "err", err)
			return
		}
		for _, u := range b.pending {
			x.set(u)
		}
		b.pending = nil
		x.mark = mark
		s.advanceMark(ctx, x)
		s.ix = x
		s.log.Info("lookup index built", "records", x.size, "ms", time.Since(t0).Milliseconds())
	}()
	return b
}

// catchUp brings x up to date with what another process committed since
// x.mark (now m), from the change log: the records of every change logged
// since are read again. It reports false, having changed nothing, when
// that is not enough (pulled changes, a log that went back) or costs more
// than a build.
func (s *Store) catchUpIndex(ctx context.Context, x *index, m ixMark) (bool, error) {
	if m.cursor != x.mark.cursor || m.seq < x.mark.seq {
		return false, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT record_id FROM changes WHERE seq > ?`, int64(x.mark.seq))
	if err != nil {
		return false, fmt.Errorf("reading the log: %w", err)
	}
	var ids []ident.ID
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return false, fmt.Errorf("reading the log: %w", err)
		}
		var id ident.ID
		copy(id[:], b)
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("reading the log: %w", err)
	}
	if len(ids) > max(1024, x.size/8) {
		return false, nil // an import: reading them one by one costs more
	}
	var raw []byte
	vals := make([][]byte, 2)
	for _, id := range ids {
		var k domain.Kind
		var body []byte
		err := s.r.QueryRowContext(ctx, `SELECT kind, body FROM records WHERE id = ?`, id[:]).Scan(&k, &body)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", id, err)
		}
		if _, ok := ixFields[k]; !ok {
			continue
		}
		if raw, err = s.key.Open(raw[:0], body, recordAD(k, id)); err != nil {
			return false, fmt.Errorf("decrypting %s %s: %w", k, id, err)
		}
		x.set(ixEntryOfRow(k, id, raw, vals))
		clear(raw)
	}
	x.size += len(ids)
	x.mark = m
	return true, nil
}

// indexLocked returns the index, current with the store, building it
// first if needed. s.mu is held, and released while a build runs.
func (s *Store) indexLocked(ctx context.Context) (*index, error) {
	for waited := false; ; waited = true {
		if s.key == nil {
			return nil, ErrLocked
		}
		if x := s.ix; x != nil {
			if waited {
				return x, nil // built for this call: good enough
			}
			m, err := s.readMark(ctx)
			if err != nil {
				return nil, err
			}
			if m.version == x.mark.version {
				return x, nil
			}
			caught, err := s.catchUpIndex(ctx, x, m)
			if err != nil {
				return nil, err
			}
			if caught {
				return x, nil
			}
			s.log.Info("another process pulled or imported: building the lookup index again")
			s.stopIndex()
		}
		b := s.ixBuild
		if b == nil {
			b = s.startIndexBuild()
		}
		s.mu.Unlock()
		select {
		case <-b.done:
		case <-ctx.Done():
		}
		s.mu.Lock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if b.err != nil {
			return nil, b.err
		}
	}
}

// PrepareIndex builds the lookup index now, if it is not built, and waits
// for it: the first page or search after unlock otherwise does.
func (s *Store) PrepareIndex(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.indexLocked(ctx)
	return err
}

// buildChunk is how many rows the build hands a worker at a time.
const buildChunk = 512

// buildRows is a chunk of rows read for the build; the bodies share one
// buffer, and chunks go back to the reader once decrypted, so that a
// build allocates a few buffers, not a body per record.
type buildRows struct {
	rows  []buildRow
	arena []byte
}

type buildRow struct {
	id         ident.ID
	kind       domain.Kind
	start, end int // the body in arena
}

// buildIndex reads every record on one read connection and decrypts them
// on every core. It uses the key, never s's fields guarded by s.mu.
func (s *Store) buildIndex(ctx context.Context, key *seal.Key) (*index, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(1, runtime.GOMAXPROCS(0))
	chunks := make(chan *buildRows, workers)
	free := make(chan *buildRows, 2*workers+1)
	results := make(chan []ixUpdate, workers)
	errc := make(chan error, workers+1)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw []byte
			vals := make([][]byte, 2)
			for c := range chunks {
				out := make([]ixUpdate, 0, len(c.rows))
				for _, r := range c.rows {
					if ctx.Err() != nil {
						break
					}
					var err error
					if raw, err = key.Open(raw[:0], c.arena[r.start:r.end], recordAD(r.kind, r.id)); err != nil {
						errc <- fmt.Errorf("decrypting %s %s: %w", r.kind, r.id, err)
						cancel() // the reader stops too
						return
					}
					out = append(out, ixEntryOfRow(r.kind, r.id, raw, vals))
					clear(raw) // the names are in out now, in slices the index wipes
				}
				results <- out
				select {
				case free <- c:
				default:
				}
			}
		}()
	}
	go func() {
		defer close(chunks)
		errc <- s.readForIndex(ctx, chunks, free)
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	x := newIndex()
	for us := range results {
		for _, u := range us {
			x.add(u)
		}
		x.size += len(us)
	}
	// Every worker is done; the reader too (it closed chunks).
	close(errc)
	for err := range errc {
		if err != nil {
			x.wipe()
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		x.wipe()
		return nil, err
	}
	return x, nil
}

// readForIndex sends the rows of the indexed kinds, in chunks taken from
// free when there are.
func (s *Store) readForIndex(ctx context.Context, chunks chan<- *buildRows, free <-chan *buildRows) error {
	rows, err := s.r.QueryContext(ctx, `SELECT id, kind, body FROM records`)
	if err != nil {
		return fmt.Errorf("reading records: %w", err)
	}
	defer rows.Close()
	next := func() *buildRows {
		select {
		case c := <-free:
			clear(c.arena) // sealed bytes, but nothing stays behind
			c.rows, c.arena = c.rows[:0], c.arena[:0]
			return c
		default:
			return &buildRows{rows: make([]buildRow, 0, buildChunk), arena: make([]byte, 0, buildChunk*512)}
		}
	}
	send := func(c *buildRows) error {
		select {
		case chunks <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := next()
	for rows.Next() {
		var idb, kb, body sql.RawBytes
		if err := rows.Scan(&idb, &kb, &body); err != nil {
			return fmt.Errorf("reading records: %w", err)
		}
		k, ok := ixKinds[string(kb)] // no string made of kb
		if !ok {
			continue
		}
		r := buildRow{kind: k, start: len(c.arena)}
		copy(r.id[:], idb)
		c.arena = append(c.arena, body...)
		r.end = len(c.arena)
		c.rows = append(c.rows, r)
		if len(c.rows) == buildChunk {
			if err := send(c); err != nil {
				return err
			}
			c = next()
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading records: %w", err)
	}
	if len(c.rows) > 0 {
		return send(c)
	}
	return nil
}

// Related calls fn for each live consent, assessment and activity that
// refers to beneficiary b — what List("", false) gives of them, in the same
// order (kinds in import order, records in id order) — reading only those.
func (s *Store) Related(ctx context.Context, b ident.ID, fn func(Item) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.indexLocked(ctx)
	if err != nil {
		return err
	}
	ids := slices.Clone(x.refs[b])
	slices.SortFunc(ids, func(p, q ident.ID) int {
		if c := int(x.orderOf(p)) - int(x.orderOf(q)); c != 0 {
			return c
		}
		return bytes.Compare(p[:], q[:])
	})
	return s.readCandidates(ctx, ids, func(it Item) bool {
		switch r := it.Record.(type) {
		case *domain.Consent:
			return r.Beneficiaire == b
		case *domain.Assessment:
			return r.Beneficiaire == b
		case *domain.Activity:
			return r.Beneficiaire != nil && *r.Beneficiaire == b || attended(r, b)
		}
		return false
	}, fn)
}

// attended reports whether b is a followed participant of workshop a.
func attended(a *domain.Activity, b ident.ID) bool {
	return a.Type == "collectif" && a.Participants != nil && slices.Contains(a.Participants.Beneficiaires, b)
}

// orderOf is the place of record id's kind in domain.Kinds: the order of a
// person's page.
func (x *index) orderOf(id ident.ID) uint8 {
	if r, ok := x.refOf[id]; ok {
		return r.order
	}
	return kindOrder[domain.KindActivity] // only a workshop's participants have no refOf
}

// SearchNames calls fn for each live beneficiary followed by name whose
// name contains the query, both folded by territoire.Normalize (case and
// accents ignored), as "prenom nom" or "nom prenom"; in id order, as List
// would. A query that folds to nothing finds nobody.
func (s *Store) SearchNames(ctx context.Context, query string, fn func(Item) error) error {
	q := territoire.Normalize(query)
	if q == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.indexLocked(ctx)
	if err != nil {
		return err
	}
	var ids []ident.ID
	qb := []byte(q)
	for id, n := range x.names {
		if bytes.Contains(n.name, qb) || bytes.Contains(n.rev, qb) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(p, q ident.ID) int { return bytes.Compare(p[:], q[:]) })
	return s.readCandidates(ctx, ids, func(it Item) bool {
		b, ok := it.Record.(*domain.Beneficiary)
		return ok && nameMatches(b, q)
	}, fn)
}

// nameMatches is the search's rule: b is followed by name, and its name,
// folded, contains q (already folded), as "prenom nom" or "nom prenom".
func nameMatches(b *domain.Beneficiary, q string) bool {
	if !b.Identified() {
		return false
	}
	return strings.Contains(territoire.Normalize(b.Prenom+" "+b.Nom), q) ||
		strings.Contains(territoire.Normalize(b.Nom+" "+b.Prenom), q)
}

// readCandidates reads, decrypts and decodes the records ids, in that
// order, and calls fn for those live and accepted by keep. Like List, it
// goes past a record that does not decode, and names it after the others.
func (s *Store) readCandidates(ctx context.Context, ids []ident.ID, keep func(Item) bool, fn func(Item) error) error {
	var bad UnreadableError
	for _, id := range ids {
		var k domain.Kind
		var body []byte
		err := s.r.QueryRowContext(ctx, `SELECT kind, body FROM records WHERE id = ?`, id[:]).Scan(&k, &body)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", id, err)
		}
		st, err := s.openState(k, id, body)
		if err != nil {
			return err
		}
		if st.IsDeleted() {
			continue
		}
		it, err := item(k, id, st)
		if err != nil {
			s.log.Warn("record that does not decode skipped", "kind", k, "id", id, "err", err)
			bad.IDs = append(bad.IDs, id)
			continue
		}
		if !keep(it) {
			continue
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	if len(bad.IDs) > 0 {
		return &bad
	}
	return nil
}
