package pgtest

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// StartCluster starts a throwaway cluster like the one the tests get
// (initdb into a temporary directory, the server on a free loopback port,
// the same settings), for a program that is not a test: the load
// generator (tools/load) runs hubs over it. It returns the URL of the
// maintenance database and stop, which stops the server and removes its
// directory; stop may be called more than once (a deferred call and a
// signal handler). The caller must call it, also on error paths: the
// server runs detached from the calling process.
func StartCluster() (url string, stop func(), err error) {
	c, u, err := start()
	if err != nil {
		return "", nil, err
	}
	var once sync.Once
	return u, func() { once.Do(c.stop) }, nil
}

// BinDir returns the directory of PostgreSQL's client programs
// (pg_dump, pg_restore, psql) of the newest version installed, that of
// the throwaway cluster's server, or "" when there is none: a test of
// PostgreSQL's own tools runs them at the server's version.
func BinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_dump")); err == nil {
			return d
		}
	}
	return ""
}
