package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"numeribus/hub/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// ChangesSince returns, in hub order, the changes of team after cursor
// not made by excludeDevice, up to about maxBytes of fields plus
// store.ChangeOverhead bytes per change, and always at least one when any.
func (s *Store) ChangesSince(ctx context.Context, team, excludeDevice string, cursor uint64, maxBytes int) (cs []store.Logged, next uint64, more bool, err error) {
	if cursor > 1<<63-1 {
		return nil, cursor, false, fmt.Errorf("cursor %d out of range", cursor)
	}
	// The excluded device as its internal number; 0 (never a device)
	// when unknown, which excludes nothing.
	var exclude int64
	err = s.sr.QueryRowContext(ctx, `SELECT num FROM devices WHERE id = ?`, excludeDevice).Scan(&exclude)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, cursor, false, fmt.Errorf("reading changes: %w", err)
	}
	limit := store.PageLimit(maxBytes) // one row more than fits: more remain
	rows, err := s.sr.QueryContext(ctx, `SELECT c.hseq, c.kind, c.record_id, c.op, c.hlc, d.id, c.dseq, c.fields
		FROM changes c JOIN devices d ON d.num = c.device
		WHERE c.team = ? AND c.hseq > ? AND c.device != ?
		ORDER BY c.hseq LIMIT ?`, team, int64(cursor), exclude, limit)
	if err != nil {
		return nil, cursor, false, fmt.Errorf("reading changes: %w", err)
	}
	defer rows.Close()
	return store.ScanPage(rows, cursor, maxBytes)
}

// Stats returns consolidated counts: live (not deleted) records by kind,
// by team and by origin device name (records planned at the hub under
// HubDeviceName); every logged change; every device ever enrolled,
// revoked ones included, not the hub's own row (plan.go).
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	st := store.Stats{
		Records:  map[domain.Kind]int{},
		ByTeam:   map[string]map[domain.Kind]int{},
		ByDevice: map[string]map[domain.Kind]int{},
	}
	// One read transaction, so the counts agree with each other.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, fmt.Errorf("reading stats: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT r.kind, r.team, d.name, count(*)
		FROM records r JOIN devices d ON d.num = r.origin
		WHERE r.deleted = 0 GROUP BY r.kind, r.team, d.name`)
	if err != nil {
		return st, fmt.Errorf("reading stats: %w", err)
	}
	defer rows.Close()
	if err := store.CountRecords(rows, &st); err != nil {
		return st, fmt.Errorf("reading stats: %w", err)
	}
	var changes int64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM devices WHERE `+notHubSQL+`)`).Scan(&changes, &st.Devices); err != nil {
		return st, fmt.Errorf("reading stats: %w", err)
	}
	st.Changes = uint64(changes)
	return st, nil
}

// ErrNoRecord is returned by Record for an id the hub does not have.
var ErrNoRecord = errors.New("record not found")

// Record returns the kind, team and merged state of a record (tombstones
// included), or ErrNoRecord. It implements storetest.Inspector.
func (s *Store) Record(ctx context.Context, id ident.ID) (domain.Kind, string, *merge.State, error) {
	var (
		k     domain.Kind
		team  string
		state []byte
	)
	err := s.r.QueryRowContext(ctx, `SELECT kind, team, state FROM records WHERE id = ?`, id[:]).Scan(&k, &team, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil, fmt.Errorf("%w: %s", ErrNoRecord, id)
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("reading record %s: %w", id, err)
	}
	st, err := merge.Unmarshal(state)
	if err != nil {
		return "", "", nil, fmt.Errorf("record %s: %w", id, err)
	}
	return k, team, st, nil
}
