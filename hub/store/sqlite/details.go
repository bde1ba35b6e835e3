package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"numeribus/hub/report"
	"numeribus/hub/store/factsql"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// ActivityDetails implements report.Source from the records themselves
// (the facts leave these fields out), factsql.DetailBatch ids a query,
// and each stop's place once per call.
func (s *Store) ActivityDetails(ctx context.Context, ids []ident.ID, fn func(*report.ActivityDetail) error) error {
	return s.readOnly(ctx, func(tx *sql.Tx) error {
		places := map[ident.ID]string{}
		var (
			batch []report.ActivityDetail
			stops []ident.ID
		)
		for len(ids) > 0 {
			n := min(len(ids), factsql.DetailBatch)
			args := make([]any, n)
			for i, id := range ids[:n] {
				args[i] = id[:]
			}
			ids = ids[n:]
			rows, err := tx.QueryContext(ctx, `SELECT id, hlc, state FROM records WHERE kind = 'activity' AND deleted = 0
				AND id IN (`+placeholders(n)+`)`, args...)
			if err != nil {
				return fmt.Errorf("reading activity details: %w", err)
			}
			batch, stops = batch[:0], stops[:0]
			var arrets []ident.ID
			for rows.Next() {
				var (
					id, state []byte
					stamp     int64
					d         report.ActivityDetail
				)
				if err := rows.Scan(&id, &stamp, &state); err != nil {
					rows.Close()
					return fmt.Errorf("reading activity details: %w", err)
				}
				arret, ok, err := factsql.ActivityDetailOf(state, &d)
				if err != nil {
					s.log.Warn("activity without details: its state does not decode", "record", ident.ID(id).String(), "err", err)
					continue
				}
				if !ok {
					continue
				}
				copy(d.ID[:], id)
				d.Modified = hlc.Timestamp(stamp).Time()
				batch = append(batch, d)
				arrets = append(arrets, arret)
				if _, seen := places[arret]; !arret.IsZero() && !seen {
					places[arret] = ""
					stops = append(stops, arret)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("reading activity details: %w", err)
			}
			if err := stopPlaces(ctx, tx, stops, places); err != nil {
				return err
			}
			for i := range batch {
				batch[i].Lieu = places[arrets[i]]
				if err := fn(&batch[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// stopPlaces fills places with the place names of the stops ids.
func stopPlaces(ctx context.Context, tx *sql.Tx, ids []ident.ID, places map[ident.ID]string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id[:]
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, state FROM records WHERE kind = 'tourstop' AND id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("reading stops' places: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, state []byte
		if err := rows.Scan(&id, &state); err != nil {
			return fmt.Errorf("reading stops' places: %w", err)
		}
		if lieu, err := factsql.StopPlaceOf(state); err == nil {
			places[ident.ID(id)] = lieu
		}
	}
	return rows.Err()
}
