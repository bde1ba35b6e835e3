package factsql

import (
	"fmt"

	"numeribus/hub/report"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// The details of report.ActivityDetail come from the records' merged
// states, not from the facts: both stores read them here, field by field
// (merge.PeekFields), without decoding whole records — an export of a
// million activities reads a million states.

// DetailBatch is how many ids one details query names: well under
// SQLite's limit of bound parameters, and a short array for PostgreSQL.
const DetailBatch = 500

// Field numbers, looked up once by their JSON names so that a renumbered
// field cannot go unnoticed (the lookup panics at start).
var (
	numPrecisions = fieldNum(domain.KindActivity, "precisions_demarche")
	numArret      = fieldNum(domain.KindActivity, "arret")
	numTitre      = fieldNum(domain.KindActivity, "titre_atelier")
	numLieu       = fieldNum(domain.KindTourStop, "lieu")
	detailNums    = []uint64{numPrecisions, numArret, numTitre}
)

func fieldNum(k domain.Kind, name string) uint64 {
	for _, f := range domain.Fields(k) {
		if f.Name == name {
			if f.Personal {
				panic("factsql: " + string(k) + "." + name + " is personal: no export may read it")
			}
			return f.Num
		}
	}
	panic("factsql: no field " + name + " in " + string(k))
}

// ActivityDetailOf fills d (but its ID, Modified and Lieu) from the stored
// state of an activity and returns the id of its stop (zero for none).
// ok is false for a deleted record or a state that does not decode: the
// activity has no details.
func ActivityDetailOf(state []byte, d *report.ActivityDetail) (arret ident.ID, ok bool, err error) {
	var vals [3][]byte
	deleted, err := merge.PeekFields(state, detailNums, vals[:])
	if err != nil {
		return ident.ID{}, false, fmt.Errorf("reading activity details: %w", err)
	}
	if deleted {
		return ident.ID{}, false, nil
	}
	d.PrecisionsDemarche = text(vals[0])
	d.TitreAtelier = text(vals[2])
	if b, ok := change.Bytes(vals[1]); ok && len(b) == len(arret) {
		copy(arret[:], b)
	}
	return arret, true, nil
}

// StopPlaceOf returns the place name in the stored state of a tour stop
// ("" for a deleted stop).
func StopPlaceOf(state []byte) (string, error) {
	var vals [1][]byte
	deleted, err := merge.PeekFields(state, []uint64{numLieu}, vals[:])
	if err != nil {
		return "", fmt.Errorf("reading a stop's place: %w", err)
	}
	if deleted {
		return "", nil
	}
	return text(vals[0]), nil
}

// text is an encoded text string's value, "" for anything else.
func text(v []byte) string {
	s, _ := change.Text(v)
	return string(s)
}
