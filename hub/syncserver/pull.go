package syncserver

import (
	"numeribus/hub/store"
	"numeribus/internal/wire"
)

// appendWire appends the logged changes ls to out as a Changes reply
// carries them, with their origin device and hub seq.
func appendWire(out []wire.Change, ls []store.Logged) ([]wire.Change, error) {
	for i := range ls {
		wc, err := wire.FromChange(&ls[i].Change)
		if err != nil {
			return out, err
		}
		wc.HubSeq, wc.Device = ls[i].HubSeq, ls[i].Device
		out = append(out, wc)
	}
	return out, nil
}
