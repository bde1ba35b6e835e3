package syncclient

import (
	"context"
	"errors"
	"fmt"
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
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 2 * time.Second
	b.MaxInterval = MaxBackoff
	b.MaxElapsedTime = 0 // never give up: coverage comes back
	b.RandomizationFactor = 0.5
	for {
		err := c.live(ctx, b)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errModeChanged) {
			continue
		}
		if Fatal(err) {
			c.Log.Error("sync stopped", "err", err)
			c.Store.RecordSync(context.Background(), c.Now(), err.Error())
			return err
		}
		wait := b.NextBackOff()
		c.Log.Info("sync will retry", "in", wait.Round(time.Second), "err", err)
		if err != nil {
			c.Store.RecordSync(context.Background(), c.Now(), err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// live runs one connection: a first round, then push on change and pull
// on a timer until the connection fails.
func (c *Client) live(ctx context.Context, b backoff.BackOff) error {
	var rep Report
	s, err := c.connect(ctx, &rep)
	if err != nil {
		return err
	}
	defer s.close()
	step := func() error {
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
		}
		return c.Store.RecordSync(ctx, c.Now(), "")
	}
	if err := step(); err != nil {
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
			return errModeChanged // reconnect in the mode the lock allows
		}
		if err := step(); err != nil {
			return err
		}
	}
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
		case "revoked", "protocol_too_old", "unknown_device", "unauthorized":
			return true
		}
	}
	return false
}
