// Package diskspace reports the room left on the disk that holds a
// directory, so that the agent refuses new work before the disk is full
// rather than failing midway (agent/store, "Low disk").
package diskspace

import (
	"errors"
	"strconv"
	"strings"
)

// Space is the room of one file system, in bytes.
type Space struct {
	// Avail is what an unprivileged program may still write.
	Avail uint64
	// Total is the file system's size.
	Total uint64
}

// ErrUnsupported: this system has no way known here to ask.
var ErrUnsupported = errors.New("free disk space unknown on this system")

// Free returns the room of the file system holding dir.
func Free(dir string) (Space, error) { return free(dir) }

// Format writes a size the French way, for messages about room and
// files: « 850 o », « 52 Mo », « 1,5 Go » (units of 1 024, as the
// laptop's file explorer counts them).
func Format(n uint64) string {
	one := func(v float64, unit string) string {
		s := strconv.FormatFloat(v, 'f', 1, 64)
		s = strings.TrimSuffix(s, ".0")
		return strings.Replace(s, ".", ",", 1) + " " + unit
	}
	switch {
	case n >= 1<<30:
		return one(float64(n)/(1<<30), "Go")
	case n >= 1<<20:
		return one(float64(n)/(1<<20), "Mo")
	case n >= 1<<10:
		return one(float64(n)/(1<<10), "ko")
	}
	return strconv.FormatUint(n, 10) + " o"
}
