package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/places"
)

// The imported list of mediation places (schema/hubpg/0002_places.sql),
// behind places.Store.

var _ places.Store = (*Store)(nil)

// ReplacePlaces replaces the list and records the import in one
// transaction; the list is copied in (COPY), tens of thousands of rows.
// Two instances importing at once: the later commit's list stays whole
// (the DELETE of the second waits for the first's rows, then removes them).
func (s *Store) ReplacePlaces(ctx context.Context, imp places.Import, ps []places.Place) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One import at a time: the second waits, then replaces.
		if _, err := tx.Exec(ctx, `LOCK TABLE places IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM places`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"places"}, []string{"ref", "nom", "commune", "lat", "lon"},
			pgx.CopyFromSlice(len(ps), func(i int) ([]any, error) {
				p := ps[i]
				if !p.HasCoords {
					return []any{p.Ref, p.Nom, p.Commune, nil, nil}, nil
				}
				return []any{p.Ref, p.Nom, p.Commune, p.Lat, p.Lon}, nil
			})); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO place_imports(at, email, file, format, places, skipped) VALUES ($1, $2, $3, $4, $5, $6)`,
			imp.At.UnixMilli(), imp.Email, imp.File, string(imp.Format), imp.Places, imp.Skipped)
		return err
	})
	if err != nil {
		return fmt.Errorf("replacing places: %w", err)
	}
	return nil
}

// Places returns the list in ref order.
func (s *Store) Places(ctx context.Context) ([]places.Place, error) {
	rows, err := s.pool.Query(ctx, `SELECT ref, nom, commune, lat, lon FROM places ORDER BY ref COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("reading places: %w", err)
	}
	defer rows.Close()
	var out []places.Place
	for rows.Next() {
		var (
			p        places.Place
			lat, lon *float64
		)
		if err := rows.Scan(&p.Ref, &p.Nom, &p.Commune, &lat, &lon); err != nil {
			return nil, fmt.Errorf("reading places: %w", err)
		}
		if lat != nil && lon != nil {
			p.Lat, p.Lon, p.HasCoords = *lat, *lon, true
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading places: %w", err)
	}
	return out, nil
}

// LastImport returns the latest import.
func (s *Store) LastImport(ctx context.Context) (places.Import, bool, error) {
	var (
		imp    places.Import
		at     int64
		format string
	)
	err := s.pool.QueryRow(ctx, `SELECT at, email, file, format, places, skipped FROM place_imports ORDER BY id DESC LIMIT 1`).
		Scan(&at, &imp.Email, &imp.File, &format, &imp.Places, &imp.Skipped)
	if errors.Is(err, pgx.ErrNoRows) {
		return imp, false, nil
	}
	if err != nil {
		return imp, false, fmt.Errorf("reading the last import of places: %w", err)
	}
	imp.At, imp.Format = time.UnixMilli(at).UTC(), places.Format(format)
	return imp, true, nil
}
