// Package merge holds the one merge rule that the agents and the hub
// share, as a pure function of a record's state and a change.
//
// Per field, the value with the greatest stamp wins (HLC, then device id:
// last writer wins, identically everywhere). A delete makes a tombstone
// that no later write revives. An erase strips the personal fields and
// keeps them stripped whatever arrives after, from any device, in any
// order. Because each rule is a max over a total order or a sticky flag,
// applying the same changes in any order, any number of times, gives the
// same state: the property the sync relies on to be idempotent.
package merge

import (
	"bytes"
	"slices"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
)

// State is the merged state of one record, with the stamp of the write
// that set each field.
type State struct {
	Fields  change.Fields
	Clocks  map[uint64]hlc.Stamp
	Deleted hlc.Stamp // zero: live
	Erased  hlc.Stamp // zero: never erased
	Last    hlc.Stamp // greatest stamp applied
}

// NewState returns an empty state.
func NewState() *State { return NewStateCap(0) }

// NewStateCap returns an empty state with room for n fields (a record
// being created: its first change carries all its fields).
func NewStateCap(n int) *State {
	return &State{Fields: make(change.Fields, n), Clocks: make(map[uint64]hlc.Stamp, n)}
}

// IsDeleted reports whether the record is a tombstone.
func (s *State) IsDeleted() bool { return s.Deleted.TS != 0 }

// IsErased reports whether the record's personal fields were erased.
func (s *State) IsErased() bool { return s.Erased.TS != 0 }

// Apply merges c into s and reports whether s changed: a value, or only
// a stamp (a later write of the same value, an earlier delete or erase, a
// greater Last). Callers store the state only when it changed, so a stamp
// must count: a replica that dropped a later stamp of an equal value would
// let a write stamped in between win there and lose everywhere else.
func Apply(s *State, k domain.Kind, c *change.Change) bool {
	st := c.Stamp()
	changed := false
	if s.Last.TS == 0 || st.After(s.Last) {
		s.Last = st
		changed = true
	}
	switch c.Op {
	case change.OpDelete:
		if s.Deleted.TS == 0 || s.Deleted.After(st) {
			s.Deleted = st
			changed = true
		}
	case change.OpErase:
		if s.Erased.TS == 0 || s.Erased.After(st) {
			s.Erased = st
			changed = true
		}
		for _, n := range domain.PersonalFields(k) {
			_, hasValue := s.Fields[n]
			_, hasStamp := s.Clocks[n]
			if hasValue || hasStamp {
				changed = true
			}
			delete(s.Fields, n)
			delete(s.Clocks, n)
		}
	}
	personal := domain.PersonalFields(k)
	for n, v := range c.Fields {
		if n == domain.IDField || (s.IsErased() && slices.Contains(personal, n)) {
			continue
		}
		if cur, ok := s.Clocks[n]; ok && !st.After(cur) {
			continue
		}
		// A new value, or the same value with a later stamp: both change
		// what the next writes of this field are compared with.
		s.Fields[n] = v
		s.Clocks[n] = st
		changed = true
	}
	return changed
}

// Live returns the fields without cleared (null) ones, for decoding.
func (s *State) Live() change.Fields {
	out := make(change.Fields, len(s.Fields))
	for n, v := range s.Fields {
		if !bytes.Equal(v, change.Null) {
			out[n] = v
		}
	}
	return out
}
