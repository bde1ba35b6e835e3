package syncclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/change"
	"numeribus/internal/wire"
)

// startReader reads frames into s.in until the connection ends.
func (s *session) startReader() {
	if s.in != nil {
		return
	}
	s.in = make(chan frame, 16)
	go func() {
		defer close(s.in)
		for {
			m, n, err := readOne(s.ws)
			s.in <- frame{m, n, err}
			if err != nil {
				return
			}
		}
	}()
}

func (s *session) next(ctx context.Context) (wire.Message, error) {
	t := time.NewTimer(s.c.AnswerTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("%w: no answer from the hub for %v", ErrUnreachable, s.c.AnswerTimeout)
	case f, ok := <-s.in:
		if !ok {
			return nil, fmt.Errorf("%w: connection closed", ErrUnreachable)
		}
		s.rep.BytesReceived += int64(f.n)
		return f.m, f.err
	}
}

type inflight struct {
	batch   uint64
	lastSeq uint64
}

// pushing is where a push stands: what was sent, what awaits its ack.
// The batches sent with an Open (open.go) start it before the Welcome.
type pushing struct {
	from    uint64 // the acknowledged mark it started from
	sent    uint64 // last seq sent
	queue   []inflight
	batchNo uint64
}

// startPush returns the state of a push from the store's acknowledged
// mark, after writing again what the hub refused for want of a consent.
func (s *session) startPush(ctx context.Context) (*pushing, error) {
	_, acked, err := s.c.Store.Seqs(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.resendConsented(ctx); err != nil { // refused while locked
		return nil, err
	}
	return &pushing{from: acked, sent: acked}, nil
}

// fill sends batches through out while the window has room and the
// outbox, up to last, has changes.
func (s *session) fill(ctx context.Context, p *pushing, last uint64, out func(*wire.Push) error) error {
	for len(p.queue) < s.c.Window && p.sent < last {
		b, err := s.nextBatch(ctx, p.batchNo+1, p.sent)
		if err != nil {
			return err
		}
		if len(b.Changes) == 0 {
			break
		}
		if err := out(b); err != nil {
			return err
		}
		p.batchNo++
		s.rep.Pushed += uint64(len(b.Changes))
		p.sent = b.Changes[len(b.Changes)-1].Seq
		p.queue = append(p.queue, inflight{p.batchNo, p.sent})
	}
	return nil
}

// sendPush sends one batch on the connection.
func (s *session) sendPush(b *wire.Push) error {
	n, err := sendDeflated(s.ws, b, s.pushLevel)
	s.rep.BytesSent += int64(n)
	return err
}

// push sends the outbox in batches bounded by bytes and count, keeping up
// to Window batches in flight, and records each ack in the store.
func (s *session) push(ctx context.Context) error {
	if s.rep.PushSkippedSkew || s.rep.PushSkippedDiverged {
		return nil
	}
	st := s.c.Store
	s.startReader()
	p := s.pushed // batches sent with the Open, if taken: this round only
	s.pushed = nil
	if p == nil {
		var err error
		if p, err = s.startPush(ctx); err != nil {
			return err
		}
	}
	for {
		last, _, err := st.Seqs(ctx)
		if err != nil {
			return err
		}
		if err := s.fill(ctx, p, last, s.sendPush); err != nil {
			return err
		}
		if len(p.queue) == 0 {
			if p.sent < last && s.mode != wire.ModeFull {
				s.rep.PushIncomplete = true // changes from before enrollment wait for an unlock
			}
			return nil
		}
		m, err := s.next(ctx)
		if err != nil {
			return err
		}
		if page, ok := m.(*wire.Changes); ok && s.pulling && s.page == nil {
			// The answer to the Pull sent with the Open, which the hub
			// served after the early batches and before those sent
			// since: kept for pull.
			s.page = page
			continue
		}
		ack, ok := m.(*wire.Ack)
		if !ok {
			return fmt.Errorf("hub sent type %d while acks were expected", m.Type())
		}
		if ack.Batch != p.queue[0].batch {
			return fmt.Errorf("ack for batch %d while %d was expected", ack.Batch, p.queue[0].batch)
		}
		if ack.HWM < p.queue[0].lastSeq {
			return fmt.Errorf("hub acked up to %d, batch ended at %d", ack.HWM, p.queue[0].lastSeq)
		}
		// Recorded before the ack that takes them out of the outbox: a
		// crash between the two sends them again, to be refused again,
		// never forgotten.
		if err := s.refused(ctx, ack.Rejected); err != nil {
			return err
		}
		if err := st.Ack(ctx, ack.HWM); err != nil {
			return err
		}
		p.queue = p.queue[1:]
	}
}

// batch is a Push being filled: at most count changes, and at most bytes
// of changes unless the first alone is larger (it is sent alone), with the
// hub keys its sealed changes name. What it takes, the hub's decoder
// takes (TestBatchesDecodeUnderTheHubsLimits).
type batch struct {
	p            *wire.Push
	size         int
	count, bytes int
}

func newBatch(no uint64, count, bytes int) *batch {
	return &batch{p: &wire.Push{Batch: no}, count: count, bytes: bytes}
}

// add appends c if it fits and reports whether it did; keys holds the
// hub key c is sealed with, if it is.
func (b *batch) add(c wire.Change, keys map[uint64][]byte) bool {
	if len(b.p.Changes) >= b.count {
		return false
	}
	sz := wire.EncodedSize(&c)
	if len(b.p.Changes) > 0 && b.size+sz > b.bytes {
		return false
	}
	b.size += sz
	if c.Sealed != nil {
		if b.p.Keys == nil {
			b.p.Keys = map[uint64][]byte{}
		}
		b.p.Keys[c.KeyID] = keys[c.KeyID]
	}
	b.p.Changes = append(b.p.Changes, c)
	return true
}

// nextBatch reads the next batch of the outbox after seq after: in clear
// fields when the store is unlocked, sealed to the hub otherwise. It reads
// one batch's worth of changes, never more, so that a push of any backlog
// holds at most the batch it is sending (and, with an Open, the first
// window's frames).
func (s *session) nextBatch(ctx context.Context, no, after uint64) (*wire.Push, error) {
	b := newBatch(no, s.c.BatchCount, s.c.BatchBytes)
	if s.mode != wire.ModeFull {
		ss, keys, err := s.c.Store.PendingSealed(ctx, after, s.c.BatchCount)
		if err != nil {
			return nil, err
		}
		for _, c := range ss {
			wc := wire.Change{Kind: wire.KindCode(c.Kind), ID: c.ID, Op: c.Op, HLC: c.HLC, Seq: c.Seq, Sealed: c.Body, KeyID: c.KeyID}
			if !b.add(wc, keys) {
				break
			}
		}
		return b.p, nil
	}
	var bad error
	err := s.c.Store.Outbox(ctx, after, s.c.BatchCount, func(c *store.Outgoing) bool {
		wc := wire.Change{Kind: wire.KindCode(c.Kind), ID: c.ID, Op: uint8(c.Op), HLC: uint64(c.HLC), Seq: c.Seq, Fields: c.Fields}
		if wc.Kind == 0 {
			bad = fmt.Errorf("change %d: unknown kind %q", c.Seq, c.Kind)
			return false
		}
		return b.add(wc, nil)
	})
	if err == nil {
		err = bad
	}
	return b.p, err
}

// resendConsented writes again the records the hub refused for want of a
// consent it had not received yet (store.ResendConsented): they join the
// end of the outbox, after the consent, and go out in this round. A
// locked store cannot write them: they wait for a full session.
func (s *session) resendConsented(ctx context.Context) error {
	if s.mode != wire.ModeFull {
		return nil
	}
	resent, err := s.c.Store.ResendConsented(ctx)
	if errors.Is(err, store.ErrLocked) {
		return nil // locked meanwhile: the next full session sends them
	}
	if err != nil {
		return fmt.Errorf("sending again what the hub refused for want of a consent: %w", err)
	}
	for _, seq := range resent {
		s.c.Log.Info("the hub refused a change before receiving the person's consent: sent again", "seq", seq)
	}
	s.rep.Requeued += len(resent)
	s.rep.Rejected = max(s.rep.Rejected-len(resent), 0)
	return nil
}

// answer returns the answer to the Pull sent: the page push kept, or the
// next frame.
func (s *session) answer(ctx context.Context) (wire.Message, error) {
	if p := s.page; p != nil {
		s.page = nil
		return p, nil
	}
	return s.next(ctx)
}

// pullOf returns the Pull of the page after cursor.
func (s *session) pullOf(ss store.SyncState, cursor uint64, tag []byte) *wire.Pull {
	return &wire.Pull{Cursor: cursor, Tag: tag, Own: ss.Recovering, Budget: uint32(s.c.PullBudget), Deflate: s.deflate}
}

// pull asks for the team's changes page by page and applies each page
// with its cursor in one transaction.
func (s *session) pull(ctx context.Context) error {
	st := s.c.Store
	s.startReader()
	ss, err := st.SyncState(ctx)
	if err != nil {
		return err
	}
	cursor, tag, own := ss.PullCursor, ss.PullTag, ss.Recovering
	asked := s.pulling // the Pull sent with the Open, if taken: this round only
	s.pulling = false
	for {
		if !asked {
			n, err := send(s.ws, s.pullOf(ss, cursor, tag))
			if err != nil {
				return err
			}
			s.rep.BytesSent += int64(n)
		}
		asked = false
		m, err := s.answer(ctx)
		if err != nil {
			return err
		}
		page, ok := m.(*wire.Changes)
		if !ok {
			return fmt.Errorf("hub sent type %d while changes were expected", m.Type())
		}
		cs := make([]change.Change, 0, len(page.Changes))
		for i := range page.Changes {
			ch, err := page.Changes[i].ToChange()
			if err != nil {
				return fmt.Errorf("pulled change: %w", err)
			}
			if ch.Device == "" {
				return errors.New("pulled change without its device")
			}
			cs = append(cs, ch)
		}
		if page.Reset {
			// The hub's log no longer holds our cursor (restored from a
			// backup): it starts us again from 0; applying is idempotent.
			s.c.Log.Warn("the hub's log went back (restored?): pulling again from the start", "cursor", cursor, "next", page.Next)
			s.rep.PullReset = true
		} else if page.Next < cursor {
			return fmt.Errorf("hub moved the cursor back from %d to %d", cursor, page.Next)
		}
		if len(cs) > 0 || page.Next != cursor || !bytes.Equal(page.Tag, tag) {
			skipped, err := st.ApplyRemote(ctx, cs, page.Next, page.Tag)
			if err != nil {
				return err
			}
			s.rep.Unreadable += skipped
		}
		s.rep.Pulled += len(cs)
		cursor, tag = page.Next, page.Tag
		if !page.More {
			if own {
				return st.EndPullRecovery(ctx)
			}
			return nil
		}
	}
}

// refused records the changes the hub refused (an Ack's, or a Welcome's
// when their acks were lost), and writes again after their consent the
// persons refused for want of one.
func (s *session) refused(ctx context.Context, rs []wire.Rejection) error {
	if len(rs) == 0 {
		return nil
	}
	for _, r := range rs {
		s.c.Log.Warn("the hub refused a change: kept on this laptop", "seq", r.Seq, "code", r.Code, "reason", r.Reason)
	}
	if err := s.c.Store.Reject(ctx, rs, s.c.Now()); err != nil {
		return err
	}
	s.rep.Rejected += len(rs)
	if slices.ContainsFunc(rs, func(r wire.Rejection) bool { return r.Code == wire.CodeNoConsent }) {
		return s.resendConsented(ctx)
	}
	return nil
}
