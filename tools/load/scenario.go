package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// phases are the walls a scenario measured.
type phases struct {
	push, pull time.Duration
	// revocation: idle only (how long after `hub revoke` returned the
	// hub closed the revoked agent's connection), and the command's own
	// time; -1 when the connection was not closed.
	revocation, revokeCmd time.Duration
	idleRSSMiB            float64
	connect               time.Duration // idle: all connections open
	peakAfterPush         []float64     // each hub's VmHWM (MiB) when the pushes ended
}

// burst releases every agent at the same instant (a barrier): each
// connects and pushes; once every push is done, all pull at once, each
// on its connection if the hub kept it. two is the same over two hubs,
// one of which f.onAck kills midway.
func burst(ctx context.Context, f *fleet, agents []*agent) phases {
	release, pullGate := make(chan struct{}), make(chan struct{})
	var pushing, pulling sync.WaitGroup
	pushing.Add(len(agents))
	pulling.Add(len(agents))
	for _, a := range agents {
		go func() {
			defer pulling.Done()
			<-release
			actx, cancel := context.WithTimeout(ctx, f.cfg.agentTimeout)
			defer cancel()
			a.release = time.Now()
			a.pushErr = a.push(actx, f)
			a.pushed, a.pushEnd = a.pushErr == nil, time.Now()
			pushing.Done()
			<-pullGate
			a.pullStart = time.Now()
			a.pullErr = a.pull(actx, f)
			a.pulledAll, a.pullEnd = a.pullErr == nil, time.Now()
			a.drop()
		}()
	}
	t0 := time.Now()
	close(release)
	pushing.Wait()
	var p phases
	p.push = time.Since(t0)
	for _, h := range f.hubs {
		peak, _, _ := h.figures()
		p.peakAfterPush = append(p.peakAfterPush, peak)
	}
	f.logf("pushes done in %.1f s; pulling", p.push.Seconds())
	t1 := time.Now()
	close(pullGate)
	pulling.Wait()
	p.pull = time.Since(t1)
	return p
}

// morning spreads the agents' arrivals uniformly over cfg.spread; each
// connects, pushes, pulls and leaves, as laptops starting their day.
// The agents that came early pulled before the others pushed: once all
// are done, each pulls again from its cursor (not measured), so that the
// check sees everything its teammates sent.
func morning(ctx context.Context, f *fleet, agents []*agent) phases {
	var wg sync.WaitGroup
	t0 := time.Now()
	var pushEnd, pullEnd time.Time
	var mu sync.Mutex
	for i, a := range agents {
		at := t0.Add(time.Duration(int64(f.cfg.spread) * int64(i) / int64(len(agents))))
		wg.Go(func() {
			if sleep(ctx, time.Until(at)) != nil {
				a.pushErr = ctx.Err()
				return
			}
			actx, cancel := context.WithTimeout(ctx, f.cfg.agentTimeout)
			defer cancel()
			a.release = time.Now()
			a.pushErr = a.push(actx, f)
			a.pushed, a.pushEnd = a.pushErr == nil, time.Now()
			if a.pushed {
				a.pullStart = time.Now()
				a.pullErr = a.pull(actx, f)
				a.pullEnd = time.Now()
			}
			a.drop()
			mu.Lock()
			pushEnd, pullEnd = later(pushEnd, a.pushEnd), later(pullEnd, a.pullEnd)
			mu.Unlock()
		})
	}
	wg.Wait()
	p := phases{push: pushEnd.Sub(t0), pull: pullEnd.Sub(t0)}
	f.logf("every agent came, pushed and pulled; pulling again what the later ones sent")
	catchUp(ctx, f, agents)
	return p
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// catchUp has every agent whose push went through pull again from its
// cursor until the hub has nothing more.
func catchUp(ctx context.Context, f *fleet, agents []*agent) {
	forEach(ctx, agents, func(ctx context.Context, a *agent) error {
		if !a.pushed || a.pullErr != nil {
			return nil
		}
		actx, cancel := context.WithTimeout(ctx, f.cfg.agentTimeout)
		defer cancel()
		a.pullErr = a.pull(actx, f)
		a.pulledAll = a.pullErr == nil
		a.drop()
		return nil
	})
}

// idle opens a connection per agent and leaves it open (Welcome, then
// nothing but the answers to the hub's pings) for cfg.hold, while the
// hub's memory is sampled; then revokes one device with the real
// `hub revoke` and measures how long the hub takes to close that
// agent's connection. Every other connection must still be open.
func idle(ctx context.Context, f *fleet, agents []*agent, revoke func(context.Context, string) error) (phases, error) {
	var p phases
	t0 := time.Now()
	err := forEach(ctx, agents, func(ctx context.Context, a *agent) error {
		// The connections live beyond this call: their deadline is the
		// run's, not the setup's.
		s, err := a.connect(context.WithoutCancel(ctx), f)
		if err != nil {
			return err
		}
		a.sess = s
		return nil
	})
	p.connect = time.Since(t0)
	if err != nil {
		return p, fmt.Errorf("opening the idle connections: %w", err)
	}
	f.logf("%d connections open in %.1f s; holding them %v", len(agents), p.connect.Seconds(), f.cfg.hold)
	if err := sleep(ctx, f.cfg.hold); err != nil {
		return p, err
	}
	_, p.idleRSSMiB, _ = f.hubs[0].figures()
	target := agents[0]
	r0 := time.Now()
	if err := revoke(ctx, target.name); err != nil {
		return p, err
	}
	revoked := time.Now()
	p.revokeCmd = revoked.Sub(r0)
	p.revocation = -1
	select {
	case <-target.sess.ended:
		p.revocation = target.sess.endAt.Sub(revoked)
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
		return p, ctx.Err()
	}
	// The hub checks revocations every second: one more round, in case
	// it cut another device by mistake.
	sleep(ctx, 1500*time.Millisecond)
	for _, a := range agents {
		select {
		case <-a.sess.ended:
			a.closedErr = a.sess.endErr
		default:
			a.openAtEnd = true
		}
		a.drop()
	}
	return p, nil
}
