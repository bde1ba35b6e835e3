package plan

import (
	"fmt"

	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// Rows is a query's result as the hub's stores give it (*sql.Rows,
// pgx.Rows): what ScanStored and CountMade read, the stores keeping
// their SQL.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanStored reads tour stop records from rows of (id, team, state,
// fromHub: whether the record's origin is the hub's own device).
func ScanStored(rows Rows) ([]Stored, error) {
	var out []Stored
	for rows.Next() {
		var (
			idb, state []byte
			team       string
			fromHub    bool
		)
		if err := rows.Scan(&idb, &team, &state, &fromHub); err != nil {
			return nil, fmt.Errorf("reading tour stops: %w", err)
		}
		var id ident.ID
		if len(idb) != len(id) {
			return nil, fmt.Errorf("record id of %d bytes", len(idb))
		}
		copy(id[:], idb)
		st, err := DecodeStored(id, team, state, fromHub)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading tour stops: %w", err)
	}
	return out, nil
}

// CountAt counts, from rows of live activities (id, state), those whose
// arret is one of stops, by stop: MarkMade's counts.
func CountAt(rows Rows, stops []Stop) (map[ident.ID]int, error) {
	want := make(map[ident.ID]bool, len(stops))
	for i := range stops {
		want[stops[i].ID] = true
	}
	counts := map[ident.ID]int{}
	for rows.Next() {
		var idb, state []byte
		if err := rows.Scan(&idb, &state); err != nil {
			return nil, fmt.Errorf("reading activities at stops: %w", err)
		}
		st, err := merge.Unmarshal(state)
		if err != nil {
			return nil, fmt.Errorf("activity %x: %w", idb, err)
		}
		stop, ok, err := Arret(st)
		if err != nil {
			return nil, fmt.Errorf("activity %x: %w", idb, err)
		}
		if ok && want[stop] {
			counts[stop]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading activities at stops: %w", err)
	}
	return counts, nil
}
