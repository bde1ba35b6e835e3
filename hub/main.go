// Command hub is the Numéribus Sync central server: it enrolls laptops,
// accepts their change sets over wss, merges them, and serves statistics.
// See `hub --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"numeribus/hub/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Main(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
}
