package syncserver

import (
	"context"
	"fmt"

	"numeribus/hub/store"
	"numeribus/internal/wire"
)

// emptyFields is the encoding of an empty field map, what a delete or an
// erase logs: wire.FromChange leaves such fields out, and so does a pull.
const emptyFields = 0xa0

// appendWire appends the logged changes ls to out as a Changes reply
// carries them, with their origin device and hub seq. Their fields go as
// the store holds them (store.Logged.Raw), not decoded and encoded again:
// every path that logs a change stores change.Fields.Encode, the bytes
// wire.EncodeFields would give; wire.Encode still checks each field map
// before the frame leaves.
func appendWire(out []wire.Change, ls []store.Logged) ([]wire.Change, error) {
	for i := range ls {
		l := &ls[i]
		wc := wire.Change{Kind: wire.KindCode(l.Kind), ID: l.ID, Op: uint8(l.Op), HLC: uint64(l.HLC), Seq: l.Seq,
			Device: l.Device, HubSeq: l.HubSeq}
		if wc.Kind == 0 {
			return out, fmt.Errorf("change %d: unknown kind %q", l.HubSeq, l.Kind)
		}
		if len(l.Raw) != 1 || l.Raw[0] != emptyFields {
			wc.Fields = wire.RawCBOR(l.Raw)
		}
		out = append(out, wc)
	}
	return out, nil
}

// Page reads the page of team's changes after cursor, except those of
// device exclude, up to about budget bytes of fields, as a Changes reply
// carries them, with the tag of its next cursor: what a pull serves, and
// what a bundle for a laptop out of coverage holds (hub/transfer).
func Page(ctx context.Context, st store.Store, team, exclude string, cursor uint64, budget int) (*wire.Changes, error) {
	ls, next, more, err := st.ChangesSince(ctx, team, exclude, cursor, budget)
	if err != nil {
		return nil, fmt.Errorf("reading changes: %w", err)
	}
	out := &wire.Changes{Next: next, More: more, Changes: make([]wire.Change, 0, len(ls))}
	if out.Tag, err = st.LogTag(ctx, next); err != nil {
		return nil, fmt.Errorf("reading a log tag: %w", err)
	}
	if out.Changes, err = appendWire(out.Changes, ls); err != nil {
		return nil, fmt.Errorf("encoding a change: %w", err)
	}
	return out, nil
}
