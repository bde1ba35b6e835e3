package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// openState decrypts and decodes a record body. The caller holds a key.
func (s *Store) openState(k domain.Kind, id ident.ID, body []byte) (*merge.State, error) {
	raw, err := s.key.Open(nil, body, recordAD(k, id))
	if err != nil {
		return nil, fmt.Errorf("decrypting %s %s: %w", k, id, err)
	}
	return merge.Unmarshal(raw)
}

// scanKind calls fn for every record of kind k (tombstones included), in
// id order. The caller holds s.mu or otherwise guarantees the key.
func (s *Store) scanKind(ctx context.Context, q querier, k domain.Kind, fn func(ident.ID, *merge.State) error) error {
	rows, err := q.QueryContext(ctx, `SELECT id, body FROM records WHERE kind = ? ORDER BY id`, string(k))
	if err != nil {
		return fmt.Errorf("listing %s: %w", k, err)
	}
	defer rows.Close()
	for rows.Next() {
		var idb, body []byte
		if err := rows.Scan(&idb, &body); err != nil {
			return fmt.Errorf("listing %s: %w", k, err)
		}
		var id ident.ID
		copy(id[:], idb)
		st, err := s.openState(k, id, body)
		if err != nil {
			return err
		}
		if err := fn(id, st); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Item is a decrypted record with its sync state.
type Item struct {
	Record  domain.Record
	Deleted bool
	Erased  bool
	State   *merge.State
}

// Get returns the record id.
func (s *Store) Get(ctx context.Context, id ident.ID) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return Item{}, ErrLocked
	}
	var k domain.Kind
	var body []byte
	err := s.r.QueryRowContext(ctx, `SELECT kind, body FROM records WHERE id = ?`, id[:]).Scan(&k, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Item{}, fmt.Errorf("reading %s: %w", id, err)
	}
	st, err := s.openState(k, id, body)
	if err != nil {
		return Item{}, err
	}
	return item(k, id, st)
}

func item(k domain.Kind, id ident.ID, st *merge.State) (Item, error) {
	r, err := change.Decode(k, id, st.Live())
	if err != nil {
		return Item{}, err
	}
	return Item{Record: r, Deleted: st.IsDeleted(), Erased: st.IsErased(), State: st}, nil
}

// List calls fn for each live record of kind k (every kind when k is
// empty), kinds in import order and records in id (creation) order.
// With tombstones true, deleted records are included.
func (s *Store) List(ctx context.Context, k domain.Kind, tombstones bool, fn func(Item) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return ErrLocked
	}
	kinds := domain.Kinds
	if k != "" {
		kinds = []domain.Kind{k}
	}
	var bad UnreadableError
	for _, k := range kinds {
		err := s.scanKind(ctx, s.r, k, func(id ident.ID, st *merge.State) error {
			if st.IsDeleted() && !tombstones {
				return nil
			}
			it, err := item(k, id, st)
			if err != nil {
				s.log.Warn("record that does not decode skipped", "kind", k, "id", id, "err", err)
				bad.IDs = append(bad.IDs, id)
				return nil
			}
			return fn(it)
		})
		if err != nil {
			return err
		}
	}
	if len(bad.IDs) > 0 {
		return &bad
	}
	return nil
}

// UnreadableError is what List returns, after listing every other record,
// when some stored records do not decode (written by a newer or faulty
// agent): one such record must not hide the others.
type UnreadableError struct{ IDs []ident.ID }

func (e *UnreadableError) Error() string {
	ids := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		ids[i] = id.String()
	}
	return fmt.Sprintf("%d enregistrement(s) illisible(s) ignoré(s) : %s", len(e.IDs), strings.Join(ids, ", "))
}

// ListRecent calls fn for the live records of kind k made at or after
// since, in id order: ids are UUIDv7, their first 48 bits the time they
// were made, so the range is read by the primary key, not by a scan of the
// year before (today's workshops, for a person's page).
func (s *Store) ListRecent(ctx context.Context, k domain.Kind, since time.Time, fn func(Item) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return ErrLocked
	}
	var from ident.ID
	ms := since.UnixMilli()
	for i := 5; i >= 0; i-- {
		from[i] = byte(ms)
		ms >>= 8
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, body FROM records WHERE kind = ? AND id >= ? AND deleted = 0 ORDER BY id`, string(k), from[:])
	if err != nil {
		return fmt.Errorf("listing recent %s: %w", k, err)
	}
	defer rows.Close()
	for rows.Next() {
		var idb, body []byte
		if err := rows.Scan(&idb, &body); err != nil {
			return fmt.Errorf("listing recent %s: %w", k, err)
		}
		var id ident.ID
		copy(id[:], idb)
		st, err := s.openState(k, id, body)
		if err != nil {
			return err
		}
		it, err := item(k, id, st)
		if err != nil {
			s.log.Warn("record that does not decode skipped", "kind", k, "id", id, "err", err)
			continue
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	return rows.Err()
}
