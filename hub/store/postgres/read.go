package postgres

import (
	"context"
	"errors"
	"fmt"

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
	// round trip a page); 0, never a device, when unknown.
	limit := store.PageLimit(maxBytes)
	rows, err := s.pool.Query(ctx, `SELECT c.hseq, c.kind, c.record_id, c.op, c.hlc, d.id, c.dseq, c.fields
		FROM changes c JOIN devices d ON d.num = c.device
		WHERE c.team = $1 AND c.hseq > $2 AND c.device <> coalesce((SELECT num FROM devices WHERE id = $3), 0)
		ORDER BY c.hseq LIMIT $4`, team, int64(cursor), excludeDevice, limit)
	if err != nil {
		return nil, cursor, false, fmt.Errorf("reading changes: %w", err)
	}
	defer rows.Close()
	return store.ScanPage(rows, cursor, maxBytes)
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
