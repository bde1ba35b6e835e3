// Package places reads the national lists of digital mediation places
// that a coordinator downloads and imports at the hub (issue #15), so
// that the map can show the communes far from any fixed place: the
// white zones where the bus should go next.
//
// Two formats are read, each as published by its producer:
//
//   - data·inclusion's « structures » schema (gip-inclusion/data-inclusion-schema),
//     as CSV or JSON (an array of structures, or an object whose "items"
//     or "data" holds one): fields source, id, nom, commune, code_postal,
//     code_insee, longitude, latitude;
//   - the « standard des lieux de médiation numérique » (LaMednum/standard-mediation-num),
//     as CSV: fields id, pivot, nom, commune, code_postal, code_insee,
//     latitude, longitude.
//
// Only what the map needs is kept: an id, the name, the commune's INSEE
// code and the coordinates when the file has them. The hub never fetches
// a list itself: the coordinator gives the file. Parse reads it whole
// before anything is stored, and the store replaces the list in one
// transaction, so a wrong file changes nothing.
package places

import (
	"context"
	"time"
)

// Place is one fixed mediation place.
type Place struct {
	// Ref is the place's id in its file ("source:id" for data·inclusion).
	Ref     string `json:"ref"`
	Nom     string `json:"nom"`
	Commune string `json:"commune"` // current INSEE code
	// Lat and Lon are in degrees (WGS84) when HasCoords; otherwise the
	// map places the place at its commune's centroid.
	Lat       float64 `json:"lat,omitempty"`
	Lon       float64 `json:"lon,omitempty"`
	HasCoords bool    `json:"has_coords"`
}

// Format is the kind of file a list came from.
type Format string

// The formats Parse reads.
const (
	DataInclusionCSV  Format = "data_inclusion_csv"
	DataInclusionJSON Format = "data_inclusion_json"
	LieuxCSV          Format = "lieux_mediation_numerique_csv"
)

// Label is the format's French name.
func (f Format) Label() string {
	switch f {
	case DataInclusionCSV:
		return "structures data·inclusion (CSV)"
	case DataInclusionJSON:
		return "structures data·inclusion (JSON)"
	case LieuxCSV:
		return "lieux de médiation numérique (CSV)"
	}
	return string(f)
}

// Import describes the list in place: who imported which file, when.
type Import struct {
	At      time.Time `json:"at"`
	Email   string    `json:"email"`
	File    string    `json:"file"`
	Format  Format    `json:"format"`
	Places  int       `json:"places"`
	Skipped int       `json:"skipped"` // lines left out: no commune found
}

// Store keeps the imported list (the hub's SQLite and PostgreSQL stores;
// placestest is the suite both pass).
type Store interface {
	// ReplacePlaces replaces the whole list with ps and records imp, in
	// one transaction: the list is national and each import is the list
	// as downloaded, so places closed since go with the old list.
	ReplacePlaces(ctx context.Context, imp Import, ps []Place) error
	// Places returns the list, in Ref order.
	Places(ctx context.Context) ([]Place, error)
	// LastImport returns the import of the list in place; ok is false
	// before any.
	LastImport(ctx context.Context) (imp Import, ok bool, err error)
}
