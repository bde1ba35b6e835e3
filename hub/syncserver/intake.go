package syncserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/wire"
)

// The one path of a device's batch into the store, whether it came over
// the websocket (conn.push) or on a USB stick (hub/transfer, `hub
// import`): the same refusals one by one, the same consent check, the
// same partial taking of a person without consent, the same runs between
// refused changes. A change a bundle carries is thus taken, refused or
// skipped as a retry exactly as if its device had pushed it, and a bundle
// and a live sync of the same changes, in either order, end in the same
// state.

// Opener opens a change body sealed to the hub (Options.Open,
// EnvelopeOpener).
type Opener = func(device string, keys map[uint64][]byte, c *wire.Change) ([]byte, error)

// BatchError refuses a whole batch: a change that is not even well formed
// as a change (kind, id, stamp, sealed body) is a broken or hostile
// sender, not one bad record.
type BatchError struct {
	Code string // a wire error code (wire.CodeMalformed, or a refusal's for an agent of protocol < 3)
	Msg  string
	Err  error
}

func (e *BatchError) Error() string { return e.Msg }
func (e *BatchError) Unwrap() error { return e.Err }

// ConvertPush returns the changes of p, made by device, as the store
// takes them, opening sealed bodies with open, with those the hub refuses
// one by one (see refusal), or the error that refuses the whole batch.
// proto is the device's protocol version: before 3, an agent decodes no
// refusal, and its batch is refused whole.
func ConvertPush(open Opener, device string, proto uint32, p *wire.Push, now time.Time) ([]change.Change, []store.Rejected, *BatchError) {
	b, bad := convertPush(open, device, proto, p, now)
	return b.cs, b.rejected, bad
}

// pushed is a Push converted: its changes, those the hub refuses one by
// one, and what the consent rules read of each change's record (facts,
// aligned with cs), taken from the record the checks decoded: decoding
// is most of a change's cost at the hub, and it happens here, in the
// connection's reader, beside the store's writer, not in the writer's
// turn. facts is nil when unknown (a bundle's batches): the consent rules
// then decode what they read.
type pushed struct {
	cs       []change.Change
	rejected []store.Rejected
	facts    []consentFact
	// prep is cs prepared for the store (store.Preparer) in the reader,
	// nil when the store cannot or the batch has refusals already.
	prep store.Prepared
	// grants are what its consent changes give if new (grantsOf), read
	// in the reader; nil for a bundle's batches.
	grants *consentGrants
	// consents is its consent look-up made in the reader
	// (readConsentsAhead), nil when none was.
	consents *consentRead
}

func convertPush(open Opener, device string, proto uint32, p *wire.Push, now time.Time) (pushed, *BatchError) {
	b := pushed{cs: make([]change.Change, 0, len(p.Changes)), facts: make([]consentFact, 0, len(p.Changes))}
	for i := range p.Changes {
		wc := &p.Changes[i]
		if len(wc.Sealed) > 0 {
			if open == nil {
				return pushed{}, &BatchError{Code: wire.CodeMalformed, Msg: "sealed change bodies are not accepted by this hub"}
			}
			fields, err := open(device, p.Keys, wc)
			if err != nil {
				return pushed{}, &BatchError{Code: wire.CodeMalformed, Msg: fmt.Sprintf("change %d: %v", wc.Seq, err), Err: err}
			}
			wc.Fields, wc.Sealed, wc.KeyID = fields, nil, 0
		}
		ch, err := wc.ToChange()
		if err != nil {
			return pushed{}, &BatchError{Code: wire.CodeMalformed, Msg: fmt.Sprintf("change %d: %v", wc.Seq, err), Err: err}
		}
		ch.Device = device
		// The store logs the fields as they came when they are what it
		// would encode (change.Encoded checks it), not encoded again.
		ch.SetEncoded(wc.Fields)
		r, rec := refusal(&ch, now)
		if r != nil {
			if proto < 3 {
				// An older agent decodes no Ack.Rejected: its batch is
				// refused whole, as before.
				return pushed{}, &BatchError{Code: r.Code, Msg: fmt.Sprintf("change %d: %s", r.Seq, r.Reason)}
			}
			b.rejected = append(b.rejected, *r)
		}
		b.cs = append(b.cs, ch)
		if r != nil {
			b.facts = append(b.facts, consentFact{}) // refused: the consent rules skip it
		} else {
			b.facts = append(b.facts, consentFactOf(&ch, rec))
		}
	}
	b.grants = grantsOf(b.cs, b.rejected)
	return b, nil
}

// refusal returns why the hub refuses ch, or nil when it takes it, with
// the record ch's fields decode to when it takes it (nil when ch sets no
// field). The team's laptops would store a record they cannot open; a
// stamp far ahead would win every later edit of its fields and drag the
// team's clocks along (hlc.MaxAhead). Reasons name fields, never their
// values.
func refusal(ch *change.Change, now time.Time) (*store.Rejected, domain.Record) {
	if bound := hlc.BoundAt(now); ch.HLC > bound {
		r := &store.Rejected{Seq: ch.Seq, HLC: ch.HLC, Kind: ch.Kind, ID: ch.ID, Op: ch.Op, At: now}
		ahead := ch.HLC.Time().Sub(now).Round(time.Second)
		r.Code = wire.CodeClockAhead
		r.Reason = fmt.Sprintf("stamped %s, %v ahead of the hub's clock (tolerance %v)",
			ch.HLC.Time().Format(time.RFC3339), ahead, hlc.MaxAhead)
		return r, nil
	}
	rec, err := ch.Check()
	if err != nil {
		r := &store.Rejected{Seq: ch.Seq, HLC: ch.HLC, Kind: ch.Kind, ID: ch.ID, Op: ch.Op, At: now}
		r.Code = wire.CodeInvalid
		r.Reason = "invalid record content: " + err.Error()
		if len(r.Reason) > wire.MaxReason {
			// Cut on a character: the wire refuses invalid UTF-8.
			r.Reason = strings.ToValidUTF8(r.Reason[:wire.MaxReason], "")
		}
		return r, nil
	}
	return nil, rec
}

// Outcome is what a batch did at the store.
type Outcome struct {
	HWM     uint64 // the device's high-water mark after the batch
	Applied int    // changes newly applied (not retries)
	// Rejected are the changes refused, in seq order, those taken in
	// part (a person's change without its identifying fields) included.
	Rejected []store.Rejected
}

// ApplyPush applies a batch of device d, converted by ConvertPush with
// the refusals it found: it adds those without a consent (consentRefusals;
// hwm is the device's mark as the caller last knew it: changes at or
// below it are retries, not checked again), takes what needs no consent
// of a person's refused change (withoutIdentity), and applies the rest in
// runs between the refused changes (applyRuns). size is the batch's bytes,
// for the device's counters. An error wrapping store.ErrGap says the batch
// does not follow the device's mark.
//
// delivered are the consent changes (not refused) that the same delivery
// carries in its other batches: a bundle is one delivery, whose parts
// the hub holds all at once, so a person's consent counts wherever it is
// in it, as it counts anywhere in a live batch; a live push passes nil.
// Without this, a laptop's first bundle had every person cut from their
// consent by a part boundary refused (941 of 2,595 in a 5,000-activity
// seed), waiting for the next trip of the stick.
func ApplyPush(ctx context.Context, st store.Store, d store.Device, proto uint32, hwm uint64,
	cs []change.Change, rejected []store.Rejected, size int, now time.Time, delivered []change.Change) (Outcome, error) {
	return applyPush(ctx, st, d, proto, hwm, pushed{cs: cs, rejected: rejected}, size, now, delivered)
}

// consentAttempts bounds the times in a row a batch's consent rules are
// read again, nothing applied, because a consent was written between
// their read and the batch's transaction (store.ErrConsentsMoved): once
// is the rare case, three in a row consents written without pause; the
// batch then fails, and its agent sends it again later.
const consentAttempts = 3

// applyPush is ApplyPush of a converted push, with what its conversion
// read of its records. When a consent was written between the consent
// rules' read and the batch's transaction (store.ErrConsentsMoved), the
// rules are read again from the device's mark as it then stands; what
// the cut attempt committed (refusals recorded, runs applied) is told
// with the rest.
func applyPush(ctx context.Context, st store.Store, d store.Device, proto uint32, hwm uint64,
	b pushed, size int, now time.Time, delivered []change.Change) (Outcome, error) {
	var done Outcome // what attempts cut by a consent written committed
	for stalled := 0; ; {
		out, err := applyOnce(ctx, st, d, proto, hwm, b, size, now, delivered)
		// Bounded by attempts that applied nothing: one that applied runs
		// (a pinned consent the batch itself changed in an earlier run)
		// goes on from there.
		if out.HWM > hwm {
			stalled = 0
		} else {
			stalled++
		}
		if errors.Is(err, store.ErrConsentsMoved) && stalled < consentAttempts {
			for _, r := range out.Rejected {
				if r.Seq > hwm && r.Seq <= out.HWM {
					done.Rejected = append(done.Rejected, r)
				}
			}
			done.Applied += out.Applied
			if out.HWM > hwm {
				hwm, size = out.HWM, 0 // the bytes are counted once
			}
			b.consents = nil // read before the write: it no longer holds
			continue
		}
		out.Applied += done.Applied
		// A change refused as it was read is refused again by every
		// attempt: told once.
		out.Rejected = append(done.Rejected, out.Rejected...)
		slices.SortStableFunc(out.Rejected, func(a, b store.Rejected) int { return cmpSeq(a.Seq, b.Seq) })
		out.Rejected = slices.CompactFunc(out.Rejected, func(a, b store.Rejected) bool { return a.Seq == b.Seq })
		return out, err
	}
}

// applyOnce applies b once: its consent rules, then the batch whole as
// prepared or in runs between its refused changes. The Outcome of a
// failed attempt has the mark reached and the refusals it decided.
func applyOnce(ctx context.Context, st store.Store, d store.Device, proto uint32, hwm uint64,
	b pushed, size int, now time.Time, delivered []change.Change) (Outcome, error) {
	cs := b.cs
	rejected, basis, err := consentRefusals(ctx, st, d.Team, proto, hwm, now, cs, b.facts, b.rejected, delivered, b.grants, b.consents)
	if err != nil {
		return Outcome{}, fmt.Errorf("checking consents: %w", err)
	}
	if len(rejected) > 0 {
		// withoutIdentity edits the changes it takes in part: b's stay
		// as they came, for another attempt.
		cs = slices.Clone(cs)
	}
	rejected, partial := withoutIdentity(cs, rejected)
	out := Outcome{Rejected: append(rejected, partial...)}
	// Recorded before their runs, as Reject records the others: a
	// Welcome tells them to an agent whose ack was lost.
	if err := st.NoteRefused(ctx, d.ID, partial); err != nil {
		return out, err
	}
	apply := func(cs []change.Change, p store.Prepared, size int) (uint64, int, error) {
		return basis.apply(ctx, st, d.ID, cs, p, size)
	}
	if _, ok := st.(store.Preparer); ok && b.prep != nil && len(rejected) == 0 && len(partial) == 0 {
		// No refusal: the batch goes whole, as prepared.
		out.HWM, out.Applied, err = apply(cs, b.prep, size)
	} else {
		out.HWM, out.Applied, err = applyRuns(ctx, st, d.ID, cs, rejected, size, apply)
	}
	slices.SortFunc(out.Rejected, func(a, b store.Rejected) int { return cmpSeq(a.Seq, b.Seq) })
	return out, err
}

// WireRejection is r as an Ack (or a receipt) tells it to the device.
func WireRejection(r store.Rejected) wire.Rejection {
	wr := wire.Rejection{Seq: r.Seq, Code: r.Code, Reason: r.Reason}
	if r.Code == wire.CodeClockAhead {
		wr.Ahead = uint64(max(r.HLC.Time().Sub(r.At).Milliseconds(), 0))
	}
	return wr
}

// withoutIdentity takes, of a person's change refused for want of a
// consent, what needs none: its identifying fields are dropped, the
// others applied, and the refusal is still told to the device (partial),
// which keeps it, and sends the person again once its consent has reached
// the hub. Refusing the whole change left its sender apart from its team
// for good on the other fields (a gender edited while another laptop
// withdrew the consent: TestJepsenConverge). An assessment needs its
// consent whole.
func withoutIdentity(cs []change.Change, rejected []store.Rejected) (refused, partial []store.Rejected) {
	refused = rejected[:0:0]
	for _, r := range rejected {
		i := slices.IndexFunc(cs, func(c change.Change) bool { return c.Seq == r.Seq })
		if r.Code != wire.CodeNoConsent || i < 0 || cs[i].Kind != domain.KindBeneficiary || cs[i].Op != change.OpUpsert {
			refused = append(refused, r)
			continue
		}
		rest := change.WithoutPersonal(cs[i].Kind, cs[i].Fields)
		if len(rest) == 0 {
			refused = append(refused, r)
			continue
		}
		cs[i].Fields = rest
		if r.Reason += "; its other fields were taken"; len(r.Reason) > wire.MaxReason {
			r.Reason = strings.ToValidUTF8(r.Reason[:wire.MaxReason], "")
		}
		partial = append(partial, r)
	}
	return refused, partial
}

// applyRuns applies cs in runs between the refused changes, each refused
// one recorded in its turn so that the device's mark moves without gap. A
// batch without refusals is one transaction, as always; each run is
// idempotent, so a crash between two leaves a retry to finish the work.
// apply applies one run (p, when not nil, is the batch's preparation).
func applyRuns(ctx context.Context, st store.Store, device string, cs []change.Change, rejected []store.Rejected, size int,
	apply func(cs []change.Change, p store.Prepared, size int) (uint64, int, error)) (hwm uint64, applied int, err error) {
	if len(rejected) == 0 {
		return apply(cs, nil, size)
	}
	start := 0
	for i := 0; i <= len(cs); i++ {
		refused := i < len(cs) && len(rejected) > 0 && cs[i].Seq == rejected[0].Seq
		if i < len(cs) && !refused {
			continue
		}
		if i > start {
			var n int
			if hwm, n, err = apply(cs[start:i], nil, size); err != nil {
				return hwm, applied, err
			}
			applied, size = applied+n, 0
		}
		if refused {
			if hwm, err = st.Reject(ctx, device, rejected[:1]); err != nil {
				return hwm, applied, err
			}
			rejected = rejected[1:]
		}
		start = i + 1
	}
	return hwm, applied, nil
}
