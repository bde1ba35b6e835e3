package store

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/diskspace"
)

// Low disk. A laptop out of coverage for weeks fills up; SQLite then
// fails a write midway with SQLITE_FULL and rolls it back, and the
// mediator learns it at the worst moment, with the person in front of
// them. So the store refuses new records while the disk is nearly full,
// before it begins a transaction (nothing half-written), with a message
// that says how much room is left; and it says when the disk is getting
// low, for the UI's banner, before that. Erasures, withdrawals, deletions
// and the sync's bookkeeping are never refused: they write little, and
// an erasure must never wait for room.
const (
	// MinFreeBytes: below this much room, new records are refused.
	MinFreeBytes = 64 << 20
	// LowFreeBytes and LowFreePercent: below either, the disk is low
	// and the UI says so, while records are still taken.
	LowFreeBytes   = 256 << 20
	LowFreePercent = 2
	// diskEvery is how long a measure of the room serves: saves come
	// in bursts (an import, a page's several records) and every page
	// shows the state.
	diskEvery = 5 * time.Second
)

// DiskState is the room on the store's disk as last measured.
type DiskState struct {
	// Known is false when the room could not be measured: then nothing
	// is refused.
	Known        bool
	Avail, Total uint64
	// Low: the disk is getting full (below LowFreeBytes or
	// LowFreePercent); Refusing: new records are refused (below
	// MinFreeBytes).
	Low, Refusing bool
}

// ErrDiskLow is what a refused save wraps (errors.Is); the error itself
// is a *DiskLowError that says how much room is left.
var ErrDiskLow = apperr.New(apperr.State, "not enough room left on the disk")

// DiskLowError refuses a save for want of room: nothing was written.
type DiskLowError struct{ Avail uint64 }

func (e *DiskLowError) Error() string {
	return fmt.Sprintf("%v: %d bytes free, at least %d needed; nothing was written", ErrDiskLow, e.Avail, MinFreeBytes)
}

// Is makes errors.Is(err, ErrDiskLow) true.
func (e *DiskLowError) Is(target error) bool { return target == ErrDiskLow }

// ErrorCode: the store is not in a state to take records (apperr).
func (e *DiskLowError) ErrorCode() apperr.Code { return apperr.State }

// diskWatch caches the last measure of the room.
type diskWatch struct {
	mu    sync.Mutex
	at    time.Time
	state DiskState
}

// Disk returns the room on the store's disk, measured at most every few
// seconds. It needs no passphrase.
func (s *Store) Disk() DiskState {
	s.disk.mu.Lock()
	defer s.disk.mu.Unlock()
	now := s.opts.Wall()
	if d := now.Sub(s.disk.at); !s.disk.at.IsZero() && d >= 0 && d < diskEvery {
		return s.disk.state
	}
	s.disk.at = now
	sp, err := s.opts.FreeSpace(s.dir)
	if err != nil {
		if !errors.Is(err, diskspace.ErrUnsupported) {
			s.log.Warn("free disk space unknown", "err", err)
		}
		s.disk.state = DiskState{}
		return s.disk.state
	}
	s.disk.state = diskState(sp)
	return s.disk.state
}

func diskState(sp diskspace.Space) DiskState {
	return DiskState{Known: true, Avail: sp.Avail, Total: sp.Total,
		Low:      sp.Avail < LowFreeBytes || sp.Avail < sp.Total/100*LowFreePercent,
		Refusing: sp.Avail < MinFreeBytes}
}

// roomForRecords refuses new records while the disk is nearly full.
func (s *Store) roomForRecords() error {
	if d := s.Disk(); d.Refusing {
		s.log.Warn("records refused: disk nearly full", "avail", d.Avail)
		return &DiskLowError{Avail: d.Avail}
	}
	return nil
}
