package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The hub's CPU time is half the cost of a run on PostgreSQL: the
// server's backends do the other half, on the same cores. pgServer finds
// the server of a database on this machine (its postmaster's pid, from
// the data directory the server names), so that the report gives its
// CPU time over the run beside the hub's.

// pgServer returns the pid of the postmaster serving url, when it runs on
// this machine and its data directory can be read.
func pgServer(ctx context.Context, url string) (int, error) {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var dir string
	if err := c.QueryRow(ctx, `SELECT setting FROM pg_settings WHERE name = 'data_directory'`).Scan(&dir); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("the PostgreSQL server is not on this machine, or not readable: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// pgCPU measures the CPU time of the server serving url from now to the
// call of the function it returns (nil when it cannot be measured).
func pgCPU(ctx context.Context, url string) func() *float64 {
	pid, err := pgServer(ctx, url)
	if err != nil {
		return func() *float64 { return nil }
	}
	start, err := treeCPU(pid)
	if err != nil {
		return func() *float64 { return nil }
	}
	return func() *float64 {
		end, err := treeCPU(pid)
		if err != nil {
			return nil
		}
		return ptr(secs(max(end-start, time.Duration(0))))
	}
}
