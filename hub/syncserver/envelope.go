package syncserver

import (
	"fmt"
	"sync"

	"numeribus/internal/seal"
	"numeribus/internal/wire"
)

// EnvelopeOpener returns the Options.Open function for a hub key: it
// opens change bodies that locked agents sealed to the hub, deriving each
// envelope key once (a cache keyed by device and envelope public key).
func EnvelopeOpener(hk *seal.HubKey) func(device string, keys map[uint64][]byte, c *wire.Change) ([]byte, error) {
	var mu sync.Mutex
	cache := map[string]*seal.Key{}
	return func(device string, keys map[uint64][]byte, c *wire.Change) ([]byte, error) {
		epk, ok := keys[c.KeyID]
		if !ok {
			return nil, fmt.Errorf("sealed body names envelope key %d, absent from the batch", c.KeyID)
		}
		kind, ok := wire.KindOf(c.Kind)
		if !ok {
			return nil, fmt.Errorf("unknown kind %d", c.Kind)
		}
		ck := device + "\x00" + string(epk)
		mu.Lock()
		k := cache[ck]
		if k == nil {
			var err error
			if k, err = hk.Open(epk); err != nil {
				mu.Unlock()
				return nil, err
			}
			if len(cache) > 4096 {
				clear(cache)
			}
			cache[ck] = k
		}
		mu.Unlock()
		return k.Open(nil, c.Sealed, seal.OutboxAD(string(kind), c.ID, c.Seq))
	}
}
