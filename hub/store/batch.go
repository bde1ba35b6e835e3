package store

import (
	"errors"
	"fmt"
	"math"

	"numeribus/internal/change"
	"numeribus/internal/merge"
)

// The rules of ApplyBatch that are not SQL, shared by every backend so
// that they cannot drift apart: which changes of a batch are new, which
// are malformed, and how one merges into its record's state.

// NewChanges returns the changes of a batch to apply — above the device's
// mark hwm, without gap, well formed — as copies (the caller's are not
// modified), and the mark they end at. A gap gives ErrGap, a malformed
// change an error naming it: the whole batch is refused.
func NewChanges(deviceID string, hwm uint64, changes []change.Change) ([]change.Change, uint64, error) {
	start := hwm
	todo := make([]change.Change, 0, len(changes))
	for i := range changes {
		c := &changes[i]
		if c.Seq <= hwm {
			continue
		}
		if c.Seq != hwm+1 {
			return nil, start, fmt.Errorf("%w: device %s sent change %d after %d", ErrGap, deviceID, c.Seq, hwm)
		}
		if err := CheckChange(c); err != nil {
			return nil, start, fmt.Errorf("device %s, change %d: %w", deviceID, c.Seq, err)
		}
		hwm = c.Seq
		todo = append(todo, *c)
	}
	return todo, hwm, nil
}

// CheckChange refuses what no agent sends: the batch fails rather than
// losing a change silently.
func CheckChange(c *change.Change) error {
	switch {
	case !c.Kind.Valid():
		return fmt.Errorf("unknown kind %q", c.Kind)
	case !c.Op.Valid():
		return fmt.Errorf("unknown operation %d", c.Op)
	case c.ID.IsZero():
		return errors.New("zero record id")
	case c.HLC == 0:
		return errors.New("zero stamp")
	case c.HLC > math.MaxInt64 || c.Seq > math.MaxInt64:
		return errors.New("stamp or sequence number out of range")
	}
	return nil
}

// MergeOne merges c, made by deviceID, into st and returns the fields to
// log: none of the personal ones once the record is erased (the log keeps
// no personal field of an erased record). erases says c erased it: the
// record's earlier changes are to be scrubbed.
func MergeOne(st *merge.State, c *change.Change, deviceID string) (logged change.Fields, erases bool) {
	c.Device = deviceID // the merge's tie-break: who really made it
	merge.Apply(st, c.Kind, c)
	logged = c.Fields
	if st.IsErased() {
		logged = change.WithoutPersonal(c.Kind, c.Fields)
	}
	return logged, c.Op == change.OpErase
}
