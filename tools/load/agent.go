package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"numeribus/internal/wire"
)

// Retry bounds of a simulated agent: the agent's own loop backs off from
// 2 s to 3 min, far too slow to finish a run; these keep the load on
// while bounding it.
const (
	maxConnectFails = 12 // consecutive failed connections before giving up
	answerTimeout   = 2 * time.Minute
	firstBackoff    = 250 * time.Millisecond
	maxBackoff      = 5 * time.Second
)

// agent is one simulated laptop: its keys, its changes, and what the hub
// told it. One goroutine owns it at a time.
type agent struct {
	i     int
	id    string // device id
	name  string
	team  int
	key   ed25519.PrivateKey
	token []byte

	changes []wire.Change // seq 1..N, in order
	hwm     uint64        // highest seq the hub acked
	sess    *session

	// Pull state: cursor and tag as the agent keeps them, and what came.
	cursor  uint64
	tag     []byte
	pulled  int
	lastSeq map[string]uint64 // per teammate, the last seq received
	odd     []string          // what came that should not have: twice, out of order, foreign (the first few)
	odds    int               // how many

	acks     []time.Duration // each batch: sent → acked
	slow     []slowAck       // the batches acked after a second or more
	rejected int             // changes the hub refused

	release, lastAck   time.Time // release: the barrier, or its arrival
	pushEnd            time.Time
	pullStart, pullEnd time.Time
	pushed, pulledAll  bool
	pushErr, pullErr   error
	hwmWentBack        bool // a Welcome's mark below what was acked: acked changes lost
	dropLast           bool // test: leave out the last batch

	// idle
	openAtEnd bool  // its connection was still open at the end
	closedErr error // why it was closed, if it was
}

// fleet is what the agents of a run share.
type fleet struct {
	cfg   config
	hubs  []*hubProc
	teams map[string]int // device id → team, for the pull checks

	connectErrors, busy, cuts atomic.Int64
	ackedBatches              atomic.Int64
	onAck                     func(acked int64) // two: kills a hub midway
	logf                      func(format string, args ...any)
}

// pick returns a live hub at random: each connection chooses again, as
// behind a load balancer that stops sending to a dead instance.
func (f *fleet) pick() *hubProc {
	var live []*hubProc
	for _, h := range f.hubs {
		if !h.dead.Load() {
			live = append(live, h)
		}
	}
	if len(live) == 0 {
		return f.hubs[rand.IntN(len(f.hubs))] // all dead: fail on the dial
	}
	return live[rand.IntN(len(live))]
}

// jitter spreads d by ×0.5–1.5, as the agent's backoff does.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// connect opens a session on a hub chosen at random, retrying: a busy
// answer waits the time the hub asked, plus jitter; any other failure
// counts as a connect error and backs off, up to maxConnectFails in a
// row. A refusal that no retry changes (revoked, unauthorized, too old)
// ends at once.
func (a *agent) connect(ctx context.Context, f *fleet) (*session, error) {
	fails := 0
	for {
		s, err := open(ctx, f.pick(), a)
		if err == nil {
			a.adopt(s.welcome)
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: deadline while connecting: %w", a.name, err)
		}
		if re, ok := isBusy(err); ok {
			f.busy.Add(1)
			if err := sleep(ctx, re.RetryAfter+jitter(re.RetryAfter/2+firstBackoff)); err != nil {
				return nil, err
			}
			continue
		}
		f.connectErrors.Add(1)
		if re, ok := errors.AsType[*remoteError](err); ok && re.Code != wire.CodeInternal {
			return nil, fmt.Errorf("%s: refused: %w", a.name, err)
		}
		if fails++; fails >= maxConnectFails {
			return nil, fmt.Errorf("%s: %d connections failed in a row: %w", a.name, fails, err)
		}
		if err := sleep(ctx, jitter(min(firstBackoff<<(fails-1), maxBackoff))); err != nil {
			return nil, err
		}
	}
}

// adopt takes the hub's mark from a Welcome: what it holds was acked,
// even if the ack was lost in a cut (seqs at or below it are never sent
// again). A mark below what the hub acked before means it lost acked
// changes: an exactly-once failure, noted, and the changes go again.
func (a *agent) adopt(w *wire.Welcome) {
	if w.HWM < a.hwm {
		a.hwmWentBack = true
	}
	a.hwm = w.HWM
}

// session returns the agent's open session, or opens one.
func (a *agent) session(ctx context.Context, f *fleet) (*session, error) {
	if a.sess != nil {
		select {
		case <-a.sess.ended:
			f.cuts.Add(1) // closed while the agent waited between push and pull
			a.drop()
		default:
			return a.sess, nil
		}
	}
	s, err := a.connect(ctx, f)
	if err != nil {
		return nil, err
	}
	a.sess = s
	return s, nil
}

// drop closes the agent's session, if any.
func (a *agent) drop() {
	if a.sess != nil {
		a.sess.close()
		a.sess = nil
	}
}

// retry handles err ending a session: it returns nil when the agent
// should connect again (after waiting), or the error that ends it.
func (a *agent) retry(ctx context.Context, f *fleet, err error) error {
	a.drop()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: deadline: %w", a.name, err)
	}
	if re, ok := isBusy(err); ok {
		f.busy.Add(1)
		return sleep(ctx, re.RetryAfter+jitter(re.RetryAfter/2+firstBackoff))
	}
	if errors.Is(err, errLost) {
		f.cuts.Add(1)
		return sleep(ctx, jitter(firstBackoff))
	}
	return fmt.Errorf("%s: %w", a.name, err)
}

// push sends every change the hub lacks, reconnecting after a busy
// answer or a cut, from the mark of each Welcome.
func (a *agent) push(ctx context.Context, f *fleet) error {
	for {
		s, err := a.session(ctx, f)
		if err != nil {
			return err
		}
		err = a.pushOn(s, f)
		if err == nil {
			return nil
		}
		if err := a.retry(ctx, f, err); err != nil {
			return err
		}
	}
}

// slowAck is a batch that waited a second or more for its ack: when it
// left says what the hub was doing then (the report lists the slowest).
type slowAck struct {
	sent time.Time
	wait time.Duration
}

type inflight struct {
	batch, last uint64
	sent        time.Time
}

// pushOn is the agent's push window: batches cut by count and bytes,
// up to window of them in flight, each ack checked against the head of
// the queue.
func (a *agent) pushOn(s *session, f *fleet) error {
	sent := a.hwm
	var queue []inflight
	var no uint64
	n := uint64(len(a.changes))
	for {
		for len(queue) < f.cfg.window && sent < n {
			p := cutBatch(no+1, a.changes[sent:], f.cfg.batchCount, f.cfg.batchBytes)
			last := p.Changes[len(p.Changes)-1].Seq
			if a.dropLast && last == n {
				sent = n // the bug under test: the last batch never leaves
				break
			}
			if err := s.send(p); err != nil {
				return err
			}
			no++
			queue = append(queue, inflight{no, last, time.Now()})
			sent = last
		}
		if len(queue) == 0 {
			return nil
		}
		m, err := s.next(answerTimeout)
		if err != nil {
			return err
		}
		ack, ok := m.(*wire.Ack)
		if !ok {
			return fmt.Errorf("hub sent %v while acks were expected", m.Type())
		}
		if ack.Batch != queue[0].batch || ack.HWM < queue[0].last {
			return fmt.Errorf("ack of batch %d up to %d, expected batch %d up to %d", ack.Batch, ack.HWM, queue[0].batch, queue[0].last)
		}
		now := time.Now()
		a.acks = append(a.acks, now.Sub(queue[0].sent))
		if d := now.Sub(queue[0].sent); d >= time.Second {
			a.slow = append(a.slow, slowAck{queue[0].sent, d})
		}
		a.lastAck = now
		a.rejected += len(ack.Rejected)
		a.hwm = max(a.hwm, ack.HWM)
		queue = queue[1:]
		if acked := f.ackedBatches.Add(1); f.onAck != nil {
			f.onAck(acked)
		}
	}
}

// cutBatch takes the next batch off cs as the agent cuts it
// (syncclient.cutBatch): at most count changes, at most bytes of them
// unless the first alone is larger.
func cutBatch(no uint64, cs []wire.Change, count, bytes int) *wire.Push {
	p := &wire.Push{Batch: no}
	size := 0
	for i := range cs {
		if len(p.Changes) >= count {
			break
		}
		sz := wire.EncodedSize(&cs[i])
		if len(p.Changes) > 0 && size+sz > bytes {
			break
		}
		size += sz
		p.Changes = append(p.Changes, cs[i])
	}
	return p
}

// pull asks for the team's changes page by page until the hub says there
// are no more, reconnecting after a busy answer or a cut from the last
// page's cursor, as the agent does (a page and its cursor go together).
func (a *agent) pull(ctx context.Context, f *fleet) error {
	for {
		s, err := a.session(ctx, f)
		if err != nil {
			return err
		}
		err = a.pullOn(s, f)
		if err == nil {
			return nil
		}
		if err := a.retry(ctx, f, err); err != nil {
			return err
		}
	}
}

func (a *agent) pullOn(s *session, f *fleet) error {
	for {
		if err := s.send(&wire.Pull{Cursor: a.cursor, Tag: a.tag, Budget: uint32(f.cfg.pullBudget)}); err != nil {
			return err
		}
		m, err := s.next(answerTimeout)
		if err != nil {
			return err
		}
		page, ok := m.(*wire.Changes)
		if !ok {
			return fmt.Errorf("hub sent %v while changes were expected", m.Type())
		}
		if page.Reset || page.Next < a.cursor {
			a.note("pull cursor %d reset to %d (reset %v): the hub's log went back", a.cursor, page.Next, page.Reset)
		}
		for i := range page.Changes {
			a.take(f, &page.Changes[i])
		}
		a.cursor, a.tag = page.Next, page.Tag
		if !page.More {
			return nil
		}
	}
}

// take counts a pulled change and checks it: from a teammate, not from
// this agent, and each teammate's changes once and in their order (the
// hub logs a device's changes in seq order).
func (a *agent) take(f *fleet, c *wire.Change) {
	a.pulled++
	team, ok := f.teams[c.Device]
	switch {
	case c.Device == a.id:
		a.note("pulled its own change %d", c.Seq)
		return
	case !ok || team != a.team:
		a.note("pulled a change of device %s, not of its team", c.Device)
		return
	}
	if last := a.lastSeq[c.Device]; c.Seq != last+1 {
		a.note("pulled change %d of %s after %d: twice or out of order", c.Seq, c.Device, last)
	}
	a.lastSeq[c.Device] = max(a.lastSeq[c.Device], c.Seq)
}

// note records an anomaly, keeping the first few.
func (a *agent) note(format string, args ...any) {
	a.odds++
	if len(a.odd) < 5 {
		a.odd = append(a.odd, fmt.Sprintf(format, args...))
	}
}
