// Package hlc implements a hybrid logical clock.
//
// Laptops in the vehicles have wall clocks that are wrong, sometimes by a
// year (a dead CMOS battery), and that jump back when someone fixes them.
// Every write still needs a timestamp that (1) never goes backwards on one
// device, (2) is close to real time when the clock is right, so that the
// last writer really wins, and (3) is comparable across devices, with the
// device id breaking ties, so that every replica orders the same changes
// the same way.
//
// A Timestamp packs milliseconds since the Unix epoch in its high 48 bits
// and a logical counter in its low 16 bits. Incrementing the packed value
// therefore carries counter overflow into the millisecond part: the clock
// stays monotonic even after the wall clock jumps back a year and a
// hundred thousand writes happen before it catches up.
package hlc

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// LogicalBits is the number of low bits of a Timestamp that hold the
// logical counter.
const LogicalBits = 16

// MaxAhead is how far ahead of a replica's own (corrected) clock a stamp
// it receives may be. Beyond it, a stamp comes from a broken or hostile
// device: one change stamped 50 years ahead would win every later edit of
// its fields and drag every clock of the team along, so the hub refuses
// it and agents ignore it (docs/PROTOCOL.md, "Clock bounds"). A day is
// far more than honest drift between two corrected clocks (minutes).
const MaxAhead = 24 * time.Hour

// Max is the highest usable Timestamp: stamps are stored as SQL integers,
// signed 64-bit. A clock never goes past it.
const Max Timestamp = 1<<63 - 1

// Timestamp is a hybrid logical clock reading. Zero means "never".
type Timestamp uint64

// FromTime returns the smallest Timestamp at wall time t.
func FromTime(t time.Time) Timestamp {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return Timestamp(uint64(ms) << LogicalBits)
}

// Millis returns the physical part in milliseconds since the Unix epoch.
func (t Timestamp) Millis() int64 { return int64(uint64(t) >> LogicalBits) }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint16 { return uint16(t) }

// Time returns the physical part as a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.Millis()).UTC() }

// String formats the timestamp as RFC 3339 with milliseconds and the
// logical counter, e.g. 2026-11-23T08:30:00.000Z/3.
func (t Timestamp) String() string {
	return fmt.Sprintf("%s/%d", t.Time().Format("2006-01-02T15:04:05.000Z"), t.Logical())
}

// Stamp is a Timestamp with the device that made it: the total order used
// by the merge. Two devices may produce the same Timestamp; the device id
// breaks the tie, identically on every replica.
type Stamp struct {
	TS     Timestamp
	Device string
}

// Compare returns -1, 0 or +1 as a is before, equal to or after b.
func Compare(a, b Stamp) int {
	switch {
	case a.TS < b.TS:
		return -1
	case a.TS > b.TS:
		return 1
	case a.Device < b.Device:
		return -1
	case a.Device > b.Device:
		return 1
	}
	return 0
}

// After reports whether a is strictly after b in the total order.
func (a Stamp) After(b Stamp) bool { return Compare(a, b) > 0 }

// Clock is a hybrid logical clock. It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	wall func() time.Time
	last Timestamp
	// offset corrects the wall clock by what the hub measured at the last
	// connection (hub time minus local time), so that a laptop whose clock
	// is a year off stamps its offline work with real time.
	offset time.Duration
}

// New returns a clock reading wall (time.Now when nil) and starting after
// last, the highest timestamp this device has ever issued or seen (read
// back from the store, so a restart never goes backwards).
func New(wall func() time.Time, last Timestamp) *Clock {
	if wall == nil {
		wall = time.Now
	}
	if last > Max {
		last = 0 // unusable (see Now): start again from the wall clock
	}
	return &Clock{wall: wall, last: last}
}

// SetOffset sets the correction added to the wall clock.
func (c *Clock) SetOffset(d time.Duration) {
	c.mu.Lock()
	c.offset = d
	c.mu.Unlock()
}

// Offset returns the correction added to the wall clock.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Now returns a timestamp strictly greater than every timestamp this clock
// has returned or observed, and at least the (corrected) wall time.
//
// A clock whose last reading has reached Max (a store poisoned before
// stamps were bounded) restarts from the wall clock rather than fail every
// write: the store must stay usable.
func (c *Clock) Now() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	phys := FromTime(c.wall().Add(c.offset))
	if c.last >= Max {
		c.last = 0
	}
	next := c.last + 1
	if phys > next {
		next = phys
	}
	c.last = next
	return next
}

// Bound returns the highest stamp this replica accepts from another: its
// corrected wall time plus MaxAhead.
func (c *Clock) Bound() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bound()
}

func (c *Clock) bound() Timestamp {
	return BoundAt(c.wall().Add(c.offset))
}

// BoundAt returns the highest stamp accepted at wall time t: t plus
// MaxAhead, never beyond Max.
func BoundAt(t time.Time) Timestamp {
	b := FromTime(t.Add(MaxAhead)) | (1<<LogicalBits - 1)
	return min(b, Max)
}

// Observe merges a timestamp received from another replica, so that the
// next local write orders after it, and returns how far ahead of the local
// (corrected) wall clock the remote timestamp is (negative when behind).
// A remote timestamp beyond Bound does not move the clock: callers skip
// the change that carries it (a device with a wrong clock restamps its
// work at its next connection, so honest stamps are never that far).
func (c *Clock) Observe(remote Timestamp) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := c.wall().Add(c.offset)
	if remote > c.last && remote <= c.bound() {
		c.last = remote
	}
	return millis(remote.Millis() - wall.UnixMilli())
}

// millis converts ms to a Duration, saturating instead of overflowing
// (a hostile stamp can be centuries ahead).
func millis(ms int64) time.Duration {
	const limit = int64(math.MaxInt64 / time.Millisecond)
	return time.Duration(max(min(ms, limit), -limit)) * time.Millisecond
}

// Last returns the highest timestamp issued or observed, for persisting.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
