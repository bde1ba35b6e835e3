// Package e2e holds end-to-end tests of the sync: real hubs and agents
// (in-process or as child processes), real SQLite files, real websocket
// connections over loopback, and a fault-injecting TCP proxy. It has no
// code of its own; it sits under internal/ only because the top-level
// layout keeps agent/ and hub/ apart (neither may import the other).
package e2e
