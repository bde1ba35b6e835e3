package store

import (
	"context"
	"fmt"
	"os"

	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/sqlitex"
)

// KindCount counts the records of one kind.
type KindCount struct {
	Live    int `json:"live"`
	Deleted int `json:"deleted"`
	Erased  int `json:"erased"`
}

// Status is what can be told about a store without its passphrase: no
// personal data, only counts and sync state.
type Status struct {
	Device        string                     `json:"device_id"`
	Created       string                     `json:"created_at"`
	SchemaVersion int                        `json:"schema_version"`
	Records       map[domain.Kind]*KindCount `json:"records"`
	LastSeq       uint64                     `json:"last_seq"`
	AckedSeq      uint64                     `json:"acked_seq"`
	Pending       uint64                     `json:"pending_changes"`
	Rejected      int                        `json:"rejected_changes"` // refused by the hub (RejectedChanges)
	HLC           string                     `json:"hlc"`
	DBBytes       int64                      `json:"db_bytes"`
	KeySlots      map[string]int             `json:"key_slots"`
}

// Status reads the store's clear metadata. It works while locked.
func (s *Store) Status(ctx context.Context) (Status, error) {
	m, err := s.readMeta(ctx)
	if err != nil {
		return Status{}, err
	}
	st := Status{Device: m.Device, Created: m.Created, LastSeq: m.LastSeq, AckedSeq: m.AckedSeq,
		Pending: m.LastSeq - min(m.AckedSeq, m.LastSeq), HLC: hlc.Timestamp(m.HLC).String(),
		Records: map[domain.Kind]*KindCount{}, KeySlots: map[string]int{}}
	if m.HLC == 0 {
		st.HLC = ""
	}
	if st.SchemaVersion, err = sqlitex.Version(ctx, s.r); err != nil {
		return st, err
	}
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM rejected`).Scan(&st.Rejected); err != nil {
		return st, fmt.Errorf("counting refused changes: %w", err)
	}
	for _, k := range domain.Kinds {
		st.Records[k] = &KindCount{}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT kind, count(*) - sum(deleted), sum(deleted), sum(erased) FROM records GROUP BY kind`)
	if err != nil {
		return st, fmt.Errorf("counting records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k domain.Kind
		var c KindCount
		if err := rows.Scan(&k, &c.Live, &c.Deleted, &c.Erased); err != nil {
			return st, fmt.Errorf("counting records: %w", err)
		}
		st.Records[k] = &c
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	srows, err := s.r.QueryContext(ctx, `SELECT kind, count(*) FROM keyslots GROUP BY kind`)
	if err != nil {
		return st, fmt.Errorf("counting key slots: %w", err)
	}
	defer srows.Close()
	for srows.Next() {
		var k string
		var n int
		if err := srows.Scan(&k, &n); err != nil {
			return st, err
		}
		st.KeySlots[k] = n
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(s.path + suffix); err == nil {
			st.DBBytes += fi.Size()
		}
	}
	return st, srows.Err()
}
