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
	"sync"
	"time"
)

// LogicalBits is the number of low bits of a Timestamp that hold the
// logical counter.
const LogicalBits = 16

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
func (c *Clock) Now() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	phys := FromTime(c.wall().Add(c.offset))
	next := c.last + 1
	if phys > next {
		next = phys
	}
	c.last = next
	return next
}

// Observe merges a timestamp received from another replica, so that the
// next local write orders after it, and returns how far ahead of the local
// (corrected) wall clock the remote timestamp is (negative when behind).
// Remote timestamps far in the future are accepted, never refused: a
// device whose clock is a year ahead must still sync; the caller reports
// the skew.
func (c *Clock) Observe(remote Timestamp) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := c.wall().Add(c.offset)
	if remote > c.last {
		c.last = remote
	}
	return time.Duration(remote.Millis()-wall.UnixMilli()) * time.Millisecond
}

// Last returns the highest timestamp issued or observed, for persisting.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
