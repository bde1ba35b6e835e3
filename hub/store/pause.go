package store

import "time"

// WaitForPause waits until nothing has come on kick for quiet, or for
// most at most, whichever first: what the stores' background work (the
// facts follower, SQLite's checkpoints) waits for before it runs, so
// that it comes between bursts of commits rather than inside them,
// yet never lags more than most behind them. It returns false when stop
// is closed meanwhile.
func WaitForPause(stop, kick <-chan struct{}, quiet, most time.Duration) bool {
	q, limit := time.NewTimer(quiet), time.NewTimer(most)
	defer q.Stop()
	defer limit.Stop()
	for {
		select {
		case <-stop:
			return false
		case <-kick:
			q.Reset(quiet)
		case <-q.C:
			return true
		case <-limit.C:
			return true
		}
	}
}
