package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// factsListener is the application_name of the follower's listening
// connection, as pg_stat_activity shows it.
const factsListener = "numeribus facts listener"

// factsRelisten is the first pause before listening again after the
// connection was lost; it doubles up to the poll period.
const factsRelisten = 100 * time.Millisecond

// listen keeps a connection of its own listening to logChannel until ctx
// ends, and wakes the follower at each notification and each time it
// starts listening: what committed while nobody listened went unannounced.
// A lost connection is logged once, then its recovery.
func (f *facts) listen(ctx context.Context) {
	pause, lost := factsRelisten, false
	listening := func() {
		if lost {
			f.s.log.Info("facts follower listening for commits again")
		}
		pause, lost = factsRelisten, false
	}
	for again := false; ; again = true {
		err := f.listenOnce(ctx, again, listening)
		if ctx.Err() != nil {
			return
		}
		if !lost {
			f.s.log.Warn("facts follower not listening for commits: catching up every poll until it listens again",
				"poll", f.opt.poll, "err", err)
			lost = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, f.opt.poll)
	}
}

// listenOnce connects, listens, calls listening and wakes the follower,
// then wakes it at each notification until the connection fails. again is
// true for every connection after the first.
func (f *facts) listenOnce(ctx context.Context, again bool, listening func()) error {
	if again && f.opt.relisten != nil {
		f.opt.relisten()
	}
	cfg := f.s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = factsListener
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to listen: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+logChannel); err != nil {
		return fmt.Errorf("listening to %s: %w", logChannel, err)
	}
	f.listens.Add(1)
	listening()
	f.wakeUp()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("waiting for commits: %w", err)
		}
		f.notified.Add(1)
		f.wakeUp()
	}
}
