package syncclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"

	"numeribus/agent/store"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// Loop options.
const (
	// PullEvery is how often a live connection asks for the team's news.
	PullEvery = 30 * time.Second
	// MaxBackoff caps the wait between attempts when the hub is out of reach.
	MaxBackoff = 3 * time.Minute
)

// Run keeps the agent in sync until ctx ends: it connects, runs a round,
// then keeps the connection open — pushing each new record within moments
// and pulling every PullEvery — and reconnects after a failure with
// jittered exponential backoff (reset after a success). Errors that
// retrying cannot fix (revoked device, certificate mismatch, protocol too
// old) stop it.
func (c *Client) Run(ctx context.Context) error {
	c.defaults()
	c.running.Store(true)
	defer c.running.Store(false)
	var asked chan error // a SyncNow waiting for the next attempt
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 2 * time.Second
	b.MaxInterval = MaxBackoff
	b.MaxElapsedTime = 0 // never give up: coverage comes back
	b.RandomizationFactor = 0.5
	b.Reset() // NewExponentialBackOff started from its own 500 ms
	for {
		c.purgeOffline(ctx) // out of coverage too: the erasures wait in the outbox
		err := c.live(ctx, b, asked)
		asked = nil
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errModeChanged) {
			continue
		}
		if Fatal(err) {
			c.Log.Error("sync stopped", "err", err)
			c.noted("round outcome", c.Store.RecordSync(context.Background(), c.Now(), err.Error()))
			return err
		}
		wait := b.NextBackOff()
		if after, busy := Busy(err); busy && after > 0 {
			wait = busyWait(after, rand.Float64())
		}
		c.Log.Info("sync will retry", "in", wait.Round(time.Second), "err", err)
		if err != nil {
			c.noted("round outcome", c.Store.RecordSync(context.Background(), c.Now(), err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		case asked = <-c.kick: // "Synchroniser maintenant": try at once
		}
	}
}

// SyncNow runs a round as soon as possible and returns its outcome. While
// Run is active it asks the loop — which then syncs on its open
// connection, or stops waiting out its backoff and dials at once — so
// that the device never has two sessions with the hub at the same time.
// Otherwise it runs Sync.
func (c *Client) SyncNow(ctx context.Context) error {
	c.defaults()
	if !c.running.Load() {
		_, err := c.Sync(ctx)
		return err
	}
	reply := make(chan error, 1)
	select {
	case c.kick <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// live runs one connection: a first round, then push on change and pull
// on a timer until the connection fails.
// asked, when not nil, receives the outcome of the first round.
func (c *Client) live(ctx context.Context, b backoff.BackOff, asked chan error) error {
	answer := func(err error) {
		if asked != nil {
			asked <- err // buffered
			asked = nil
		}
	}
	var rep Report
	s, err := c.connect(ctx, &rep)
	if err != nil {
		answer(err)
		return err
	}
	defer s.close()
	c.alive.connected(c.Now())
	defer c.alive.disconnected()
	c.watchPings(s)
	step := func() error {
		pr := c.readPolicy(ctx) // beside the step: most steps find it read lately
		if err := s.reconcile(ctx); err != nil {
			return err
		}
		if err := s.push(ctx); err != nil {
			return err
		}
		if s.mode == wire.ModeFull && !c.Store.Locked() {
			if err := s.pull(ctx); err != nil {
				return err
			}
			if err := s.retention(ctx, pr); err != nil {
				return err
			}
		}
		// Bookkeeping, after the data: it fails nothing (bookkeeping.go).
		c.noted("last contact", c.heardRound(ctx, s))
		c.noted("round outcome", c.Store.RecordSync(ctx, c.Now(), ""))
		if c.Synced != nil {
			c.Synced()
		}
		return nil
	}
	err = step()
	answer(err)
	if err != nil {
		c.recordContact(ctx, s) // the handshake went through, not the round
		return err
	}
	b.Reset()
	c.Log.Info("synced", "pushed", rep.Pushed, "pulled", rep.Pulled)
	t := time.NewTicker(PullEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Store.Changed():
		case <-t.C:
		case asked = <-c.kick:
		case f, ok := <-s.in:
			// Between rounds the hub speaks only to end the connection
			// (revocation, shutdown).
			if !ok {
				return fmt.Errorf("%w: connection closed", ErrUnreachable)
			}
			if f.err != nil {
				return f.err
			}
			return fmt.Errorf("hub sent type %d between rounds", f.m.Type())
		}
		if c.Store.Locked() != (s.mode != wire.ModeFull) {
			if asked != nil {
				// The next connection answers, in the mode the lock allows.
				go func(r chan error) {
					select {
					case c.kick <- r:
					case <-ctx.Done():
						r <- ctx.Err()
					}
				}(asked)
			}
			return errModeChanged // reconnect in the mode the lock allows
		}
		err := step()
		answer(err)
		if err != nil {
			return err
		}
	}
}

// busyWait is how long to wait when a busy hub asked for after: that
// long, plus up to half again at random (u in [0, 1)), so that agents
// refused together do not all come back together. The backoff is left
// as it is: a busy hub is reachable.
func busyWait(after time.Duration, u float64) time.Duration {
	return after + time.Duration(u*float64(after)/2)
}

var errModeChanged = errors.New("lock state changed: reconnecting")

// Fatal reports whether retrying cannot help.
func Fatal(err error) bool {
	var re *RemoteError
	var mm *tlspin.MismatchError
	switch {
	case err == nil:
		return false
	case errors.As(err, &mm), errors.Is(err, store.ErrNotEnrolled):
		return true
	case errors.As(err, &re):
		switch re.Code {
		case "revoked", "protocol_too_old", "unknown_device", "unauthorized", "bad_token", "token_used", "token_expired":
			return true
		}
	}
	return false
}
