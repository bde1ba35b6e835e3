// Command agent runs on each mediator laptop: it records activity
// sessions and consented needs assessments in an encrypted local store,
// offline, and (soon) syncs them to the hub. See `agent --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/term"

	"numeribus/agent/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		env.Prompt = func(label string) ([]byte, error) {
			fmt.Fprint(os.Stderr, label)
			defer fmt.Fprintln(os.Stderr)
			return term.ReadPassword(int(os.Stdin.Fd()))
		}
	}
	os.Exit(cli.Main(ctx, os.Args[1:], env))
}
