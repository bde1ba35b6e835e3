package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"numeribus/hub/places"
)

// The imported list of mediation places (schema/hub/0007_places.sql),
// behind places.Store.

var _ places.Store = (*Store)(nil)

// ReplacePlaces replaces the list and records the import, in one
// immediate transaction: a failure leaves the previous list whole.
func (s *Store) ReplacePlaces(ctx context.Context, imp places.Import, ps []places.Place) error {
	defer s.hostWrite()()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("replacing places: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM places`); err != nil {
		return fmt.Errorf("replacing places: %w", err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO places(ref, nom, commune, lat, lon) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("replacing places: %w", err)
	}
	defer ins.Close()
	for _, p := range ps {
		var lat, lon sql.NullFloat64
		if p.HasCoords {
			lat, lon = sql.NullFloat64{Float64: p.Lat, Valid: true}, sql.NullFloat64{Float64: p.Lon, Valid: true}
		}
		if _, err := ins.ExecContext(ctx, p.Ref, p.Nom, p.Commune, lat, lon); err != nil {
			return fmt.Errorf("replacing places: place %q: %w", p.Ref, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO place_imports(at, email, file, format, places, skipped) VALUES (?, ?, ?, ?, ?, ?)`,
		imp.At.UnixMilli(), imp.Email, imp.File, string(imp.Format), imp.Places, imp.Skipped); err != nil {
		return fmt.Errorf("replacing places: recording the import: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("replacing places: %w", err)
	}
	s.checkpointed()
	return nil
}

// Places returns the list in ref order.
func (s *Store) Places(ctx context.Context) ([]places.Place, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT ref, nom, commune, lat, lon FROM places ORDER BY ref`)
	if err != nil {
		return nil, fmt.Errorf("reading places: %w", err)
	}
	defer rows.Close()
	var out []places.Place
	for rows.Next() {
		var (
			p        places.Place
			lat, lon sql.NullFloat64
		)
		if err := rows.Scan(&p.Ref, &p.Nom, &p.Commune, &lat, &lon); err != nil {
			return nil, fmt.Errorf("reading places: %w", err)
		}
		p.Lat, p.Lon, p.HasCoords = lat.Float64, lon.Float64, lat.Valid && lon.Valid
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
	err := s.r.QueryRowContext(ctx, `SELECT at, email, file, format, places, skipped FROM place_imports ORDER BY id DESC LIMIT 1`).
		Scan(&at, &imp.Email, &imp.File, &format, &imp.Places, &imp.Skipped)
	if errors.Is(err, sql.ErrNoRows) {
		return imp, false, nil
	}
	if err != nil {
		return imp, false, fmt.Errorf("reading the last import of places: %w", err)
	}
	imp.At, imp.Format = time.UnixMilli(at).UTC(), places.Format(format)
	return imp, true, nil
}
