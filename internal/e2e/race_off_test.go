//go:build !race

package e2e

// raceOn: the race detector slows everything about ten times; the
// heaviest loads are sized down under it.
const raceOn = false
