// Command agent runs on each mediator laptop: it records activity
// sessions and consented needs assessments in an encrypted local store,
// offline, and syncs them to the hub when it can reach it. See `agent --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"numeribus/agent/cli"
)

func main() {
	// SIGTERM: a service manager's stop, and on Windows the console
	// window closed (Go delivers CTRL_CLOSE_EVENT as SIGTERM).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		env.Prompt = func(label string) ([]byte, error) {
			fmt.Fprint(os.Stderr, label)
			defer fmt.Fprintln(os.Stderr)
			return term.ReadPassword(int(os.Stdin.Fd()))
		}
	}
	code := cli.Main(ctx, os.Args[1:], env)
	cli.HoldWindow(code, os.Stdin, os.Stderr)
	os.Exit(code)
}
