package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/wire"
)

// ChangesSince returns, in hub order, the changes of team after cursor
// not made by excludeDevice, up to about maxBytes (store.Store). Hub seqs
// are given in commit order (logChanges): what this reads is a prefix of
// the log, and a change committed later has a larger number.
func (s *Store) ChangesSince(ctx context.Context, team, excludeDevice string, cursor uint64, maxBytes int) (cs []store.Logged, next uint64, more bool, err error) {
	if cursor > 1<<63-1 {
		return nil, cursor, false, fmt.Errorf("cursor %d out of range", cursor)
	}
	// The excluded device by its number, found in the same statement (one
	// round trip a page); 0, never a device, when unknown. Rows carry
	// their device's number, turned into its id from memory: a join per
	// row with devices was a good part of the server's time when a
	// thousand agents pull their team's log.
	limit := s.pageRows(maxBytes)
	rows, err := s.pool.Query(ctx, `SELECT c.hseq, c.kind, c.record_id, c.op, c.hlc, c.device, c.dseq, c.fields
		FROM changes c
		WHERE c.team = $1 AND c.hseq > $2 AND c.device <> coalesce((SELECT num FROM devices WHERE id = $3), 0)
		ORDER BY c.hseq LIMIT $4`, team, int64(cursor), excludeDevice, limit)
	if err != nil {
		return nil, cursor, false, fmt.Errorf("reading changes: %w", err)
	}
	dr := &deviceRows{Rows: rows, s: s}
	cs, next, more, err = store.ScanPage(dr, cursor, maxBytes)
	rows.Close()
	if err != nil {
		return nil, cursor, false, err
	}
	// Cut by the limit before the page was full: more may remain.
	more = more || dr.n == limit
	s.learnRowSize(cs)
	// Devices not yet in memory, looked up once the page's connection is
	// free: a look-up while its rows are open would take a second
	// connection from the pool, and a pool of pages waiting for one
	// would never end.
	for i := range cs {
		if num, ok := strings.CutPrefix(cs[i].Device, unknownDevice); ok {
			n, _ := strconv.ParseInt(num, 10, 64)
			if cs[i].Device, err = s.deviceID(ctx, n); err != nil {
				return nil, cursor, false, err
			}
		}
	}
	return cs, next, more, nil
}

// pageRows is the LIMIT of a page's query for maxBytes: the rows of the
// average size lately seen that fill it, and a quarter more. PostgreSQL
// sends every row up to the LIMIT, and the rows a full page leaves are
// read and thrown away: with store.PageLimit's bound (every change at
// its smallest: 10,001 rows for 1 MiB where about 4,000 fit) a thousand
// agents pulling read 80 % more rows than they took. A page cut by the
// LIMIT before it is full says more remain, and the next one goes on.
func (s *Store) pageRows(maxBytes int) int {
	avg := max(s.rowBytes.Load(), 64)
	return min(maxBytes/int(avg+store.ChangeOverhead)*5/4+2, store.PageLimit(maxBytes))
}

// learnRowSize moves the average size of a change's fields toward those
// of page cs.
func (s *Store) learnRowSize(cs []store.Logged) {
	if len(cs) < 16 {
		return
	}
	sum := 0
	for i := range cs {
		sum += len(cs[i].Raw)
	}
	avg := int64(sum / len(cs))
	if old := s.rowBytes.Load(); old > 0 {
		avg = (3*old + avg) / 4
	}
	s.rowBytes.Store(avg)
}

// unknownDevice prefixes, in a page being read, the number of a device
// whose id is not yet in memory (never the start of an id: a UUID).
const unknownDevice = "#"

// deviceRows reads a page's rows for store.ScanPage, its sixth column a
// device's number given as its id when in memory, else as unknownDevice
// and the number.
type deviceRows struct {
	pgx.Rows
	s *Store
	n int // rows read
}

func (r *deviceRows) Scan(dest ...any) error {
	if len(dest) != 8 {
		return fmt.Errorf("reading changes: unexpected columns")
	}
	id, ok := dest[5].(*string)
	if !ok {
		return fmt.Errorf("reading changes: unexpected columns")
	}
	var num int64
	dest[5] = &num
	r.n++
	err := r.Rows.Scan(dest...)
	dest[5] = id
	if err != nil {
		return err
	}
	if known, ok := r.s.deviceIDs.Load(num); ok {
		*id = known.(string)
	} else {
		*id = unknownDevice + strconv.FormatInt(num, 10)
	}
	return nil
}

// deviceID returns the id of device num, from memory after the first
// time.
func (s *Store) deviceID(ctx context.Context, num int64) (string, error) {
	if id, ok := s.deviceIDs.Load(num); ok {
		return id.(string), nil
	}
	var id string
	if err := s.pool.QueryRow(ctx, `SELECT id FROM devices WHERE num = $1`, num).Scan(&id); err != nil {
		return "", fmt.Errorf("reading device %d: %w", num, err)
	}
	s.deviceIDs.Store(num, id)
	return id, nil
}

// Stats returns consolidated counts, in one repeatable-read transaction
// so that they agree with each other.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	st := store.Stats{
		Records:  map[domain.Kind]int{},
		ByTeam:   map[string]map[domain.Kind]int{},
		ByDevice: map[string]map[domain.Kind]int{},
	}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT r.kind, r.team, d.name, count(*)
			FROM records r JOIN devices d ON d.num = r.origin
			WHERE NOT r.deleted GROUP BY r.kind, r.team, d.name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		if err := store.CountRecords(rows, &st); err != nil {
			return err
		}
		var changes int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM devices WHERE `+notHubSQL+`)`).
			Scan(&changes, &st.Devices); err != nil {
			return err
		}
		st.Changes = uint64(changes)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("reading stats: %w", err)
	}
	return st, nil
}

// ErrNoRecord is returned by Record for an id the hub does not have.
var ErrNoRecord = errors.New("record not found")

// Record returns the kind, team and merged state of a record (tombstones
// included), or ErrNoRecord. It implements storetest.Inspector.
func (s *Store) Record(ctx context.Context, id ident.ID) (domain.Kind, string, *merge.State, error) {
	var (
		k, team string
		state   []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT kind, team, state FROM records WHERE id = $1`, id[:]).Scan(&k, &team, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil, fmt.Errorf("%w: %s", ErrNoRecord, id)
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("reading record %s: %w", id, err)
	}
	st, err := merge.Unmarshal(state)
	if err != nil {
		return "", "", nil, fmt.Errorf("record %s: %w", id, err)
	}
	return domain.Kind(k), team, st, nil
}

// DeviceChangeTag returns wire.ChangeTag of the change the device logged,
// or the hub refused, with seq, or nil when the hub holds none.
func (s *Store) DeviceChangeTag(ctx context.Context, deviceID string, seq uint64) ([]byte, error) {
	var (
		h  int64
		id []byte
		op int16
	)
	err := s.pool.QueryRow(ctx, `SELECT c.hlc, c.record_id, c.op FROM changes c JOIN devices d ON d.num = c.device
		WHERE d.id = $1 AND c.dseq = $2
		UNION ALL SELECT r.hlc, r.record_id, r.op FROM rejected r JOIN devices d ON d.num = r.device
		WHERE d.id = $1 AND r.dseq = $2`, deviceID, int64(seq)).Scan(&h, &id, &op)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading change %d of device %s: %w", seq, deviceID, err)
	}
	var rid ident.ID
	copy(rid[:], id)
	return wire.ChangeTag(seq, uint64(h), rid, uint8(op)), nil
}

// LogTag returns the chained tag of the hub log entry hubSeq
// (store.LogChain), or nil when the log holds none.
func (s *Store) LogTag(ctx context.Context, hubSeq uint64) ([]byte, error) {
	return s.chain.Tag(ctx, hubSeq)
}

// scanLog reads the entries of the log with from < hub seq <= to, in
// order. Hub seqs are given in commit order: below a seq a caller saw,
// the log is final.
func (s *Store) scanLog(ctx context.Context, from, to uint64, fn func(store.LogEntry) error) error {
	rows, err := s.pool.Query(ctx, `SELECT c.hseq, d.id, c.dseq, c.hlc, c.record_id, c.op FROM changes c JOIN devices d ON d.num = c.device
		WHERE c.hseq > $1 AND c.hseq <= $2 ORDER BY c.hseq`, int64(from), int64(to))
	if err != nil {
		return err
	}
	defer rows.Close()
	return store.ScanLog(rows, fn)
}
