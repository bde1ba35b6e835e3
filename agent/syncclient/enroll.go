package syncclient

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/enrollcode"
	"numeribus/internal/wire"
)

// Enroll registers this agent with the hub named by an enrollment code:
// it pins the hub's certificate, sends the device's two public keys with
// the single-use token, and records the hub in the store (unlocked: the
// device key is sealed with the data key).
func (c *Client) Enroll(ctx context.Context, code string) (store.Hub, error) {
	c.defaults()
	ec, err := enrollcode.Decode(code)
	if err != nil {
		return store.Hub{}, err
	}
	// The expiry in the code is not checked here: the laptop's clock may
	// be wrong (that is what enrollment will reveal); the hub decides.
	if _, err := c.Store.Hub(ctx); err == nil {
		return store.Hub{}, fmt.Errorf("this agent is already enrolled")
	}
	if c.Store.Locked() {
		return store.Hub{}, store.ErrLocked
	}
	devPub, devKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.Hub{}, err
	}
	pushPub, pushKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.Hub{}, err
	}
	target := ec.URL
	if c.URL != "" {
		target = c.URL
	}
	ws, err := c.dial(ctx, target, ec.Fingerprint)
	if err != nil {
		return store.Hub{}, err
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(c.HandshakeTimeout))
	if _, err := send(ws, &wire.Enroll{Proto: wire.ProtocolVersion, Token: ec.Token, Device: c.Store.Device(),
		DeviceKey: devPub, PushKey: pushPub, AgentVersion: c.Version}); err != nil {
		return store.Hub{}, err
	}
	m, _, err := readOne(ws)
	if err != nil {
		return store.Hub{}, err
	}
	ok, isOK := m.(*wire.Enrolled)
	if !isOK {
		return store.Hub{}, fmt.Errorf("hub sent type %d instead of an enrollment answer", m.Type())
	}
	h := store.Hub{URL: ec.URL, CertFingerprint: ec.Fingerprint, HubKey: ok.HubKey, DeviceName: ok.Name,
		Team: ok.Team, PushKey: pushKey}
	if err := c.Store.Enroll(ctx, h, devKey); err != nil {
		return store.Hub{}, err
	}
	return h, nil
}
