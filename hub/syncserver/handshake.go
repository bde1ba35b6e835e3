package syncserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/hub/store"
	"numeribus/internal/wire"
)

// A session opens in one of two ways (docs/PROTOCOL.md): Hello →
// Challenge → Auth → Welcome, two round trips after the upgrade, for
// agents of protocol ≤ 4 and connections without TLS; or, from protocol 5
// over TLS, an Open in the upgrade request, signed over the TLS session's
// exporter, answered by the Welcome at once, with the agent's first
// frames already behind it. Both end in the same checks (verify) and the
// same Welcome (welcome).

// session is what a handshake establishes.
type session struct {
	device       string
	mode         uint8
	proto        uint32
	agentVersion string
	agentTime    int64
	// retention is the tag of the retention policy the agent holds
	// (wire.Open.Retention; nil with a Hello).
	retention []byte
	// acked is the agent's acknowledged mark (wire.Open.Acked), known
	// when knowsAcked: a Hello does not say it.
	acked      uint64
	knowsAcked bool
}

func upgradeMsg(got uint32) string {
	return fmt.Sprintf("protocole %d non pris en charge : ce hub parle les protocoles %d à %d ; mettez à jour l'agent (protocol %d is not supported: upgrade the agent)",
		got, wire.MinProtocol, wire.ProtocolVersion, got)
}

// authenticate runs the challenge handshake of a Hello.
func (c *conn) authenticate(ctx context.Context, h *wire.Hello) bool {
	if h.Proto < wire.MinProtocol || h.Proto > wire.ProtocolVersion {
		c.fail(CloseUpgrade, wire.CodeProtocolTooOld, upgradeMsg(h.Proto))
		return false
	}
	if h.Mode != wire.ModeFull && h.Mode != wire.ModePush {
		c.fail(CloseMalformed, wire.CodeMalformed, fmt.Sprintf("unknown session mode %d", h.Mode))
		return false
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	if err := c.send(&wire.Challenge{Nonce: nonce, HubTime: c.s.opt.Now().UnixMilli()}); err != nil {
		c.closeWith(websocket.CloseNormalClosure, "")
		return false
	}
	m, _, err := c.read(15 * time.Second)
	if err != nil {
		return false
	}
	auth, ok := m.(*wire.Auth)
	if !ok {
		c.fail(CloseMalformed, wire.CodeMalformed, "Auth expected after Challenge")
		return false
	}
	// A signature over another nonce (a replay) or another certificate
	// (a relay through an interceptor) does not verify.
	signed := wire.AuthMessage(nonce, c.s.opt.Fingerprint, h.Device, h.Mode)
	ss := session{device: h.Device, mode: h.Mode, proto: h.Proto, agentVersion: h.AgentVersion, agentTime: h.AgentTime}
	d, ok := c.verify(ctx, ss, signed, auth.Sig)
	if !ok {
		return false
	}
	return c.welcome(ctx, d, ss, false)
}

// exporter returns the TLS session's exporter an Open is signed over
// (RFC 9266 tls-exporter).
func exporter(ts *tls.ConnectionState) ([]byte, error) {
	if ts == nil {
		return nil, errors.New("an Open needs TLS (its signature is bound to the TLS session): use Hello on this connection")
	}
	exp, err := ts.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterSize)
	if err != nil {
		return nil, fmt.Errorf("TLS session without exporter: %w", err)
	}
	return exp, nil
}

// open authenticates the Open, the first frame behind the upgrade
// request over TLS session ts, welcomes the device, and says whether the
// frames sent behind the Open are taken (wire.Open); those not taken are
// dropped as they come (c.drop).
func (c *conn) open(ctx context.Context, o *wire.Open, ts *tls.ConnectionState) bool {
	if o.Proto < wire.OpenProtocol || o.Proto > wire.ProtocolVersion {
		c.fail(CloseUpgrade, wire.CodeProtocolTooOld, upgradeMsg(o.Proto))
		return false
	}
	exp, err := exporter(ts)
	if err != nil {
		c.fail(CloseMalformed, wire.CodeMalformed, err.Error())
		return false
	}
	signed, err := wire.OpenMessage(exp, o)
	if err != nil {
		c.fail(CloseMalformed, wire.CodeMalformed, err.Error())
		return false
	}
	ss := session{device: string(o.Device), mode: o.Mode, proto: o.Proto, agentVersion: o.AgentVersion, agentTime: o.AgentTime,
		retention: o.Retention, acked: o.Acked, knowsAcked: true}
	d, ok := c.verify(ctx, ss, signed, o.Sig)
	if !ok {
		return false
	}
	early, err := c.takesEarly(ctx, d, o)
	if err != nil {
		c.s.log.Error("reading the device's last change", "device", d.ID, "err", err)
		c.fail(CloseInternal, wire.CodeInternal, "internal error")
		return false
	}
	if !early {
		c.drop = int(o.Early)
		c.s.log.Info("frames sent with the open dropped: the agent reconciles first", "device", d.ID,
			"hwm", d.HWM, "agent_acked", o.Acked, "frames", o.Early)
	}
	return c.welcome(ctx, d, ss, early)
}

// takesEarly reports whether the frames sent behind o can be taken as
// they are: the agent knew the hub's mark for it, the same change there,
// and its clock needs no correction — what the agent would otherwise
// learn from the Welcome before cutting its batches.
func (c *conn) takesEarly(ctx context.Context, d store.Device, o *wire.Open) (bool, error) {
	if d.HWM != o.Acked {
		return false, nil
	}
	offset := c.s.opt.Now().UnixMilli() - o.AgentTime
	if abs(offset-o.Offset) > wire.ClockTolerance {
		return false, nil
	}
	if o.Acked == 0 {
		return true, nil
	}
	tag, err := c.s.store.DeviceChangeTag(ctx, d.ID, o.Acked)
	if err != nil {
		return false, err
	}
	return bytes.Equal(tag, o.AckedTag), nil
}

// verify checks sig over signed with the key of the session's device
// and mode, and that the device is not revoked. It answers a refusal
// itself.
func (c *conn) verify(ctx context.Context, ss session, signed, sig []byte) (store.Device, bool) {
	d, err := c.s.store.Device(ctx, ss.device)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNoDevice) {
		c.s.log.Error("reading device", "err", err)
		c.fail(CloseInternal, wire.CodeInternal, "internal error")
		return d, false
	}
	key := d.DeviceKey
	if ss.mode == wire.ModePush {
		key = d.PushKey
	}
	if !known || len(key) != ed25519.PublicKeySize {
		// An unknown device is refused exactly like a bad signature, after
		// the same verification work, so that the answer does not tell
		// whether a device id exists.
		key = unknownDeviceKey
	}
	if !ed25519.Verify(key, signed, sig) || !known {
		c.s.log.Info("authentication failed", "device", ss.device, "known", known)
		c.fail(CloseUnauthorized, wire.CodeUnauthorized, authFailed)
		return d, false
	}
	if d.Revoked() {
		c.fail(CloseRevoked, wire.CodeRevoked, "device revoked")
		return d, false
	}
	return d, true
}

// welcome records the contact and sends the Welcome.
func (c *conn) welcome(ctx context.Context, d store.Device, ss session, early bool) bool {
	now := c.s.opt.Now()
	offset := now.UnixMilli() - ss.agentTime
	c.markSeen(ctx, d.ID, store.Seen{At: now, AgentVersion: ss.agentVersion, ClockOffsetMs: offset})
	c.mu.Lock()
	c.device, c.mode, c.proto, c.hwm = d, ss.mode, ss.proto, d.HWM
	c.mu.Unlock()
	if abs(offset) > 2*60*1000 {
		c.s.log.Warn("device clock off", "device", d.ID, "name", d.Name, "offset_ms", offset)
	}
	c.s.log.Info("device connected", "device", d.ID, "name", d.Name, "mode", ss.mode, "hwm", d.HWM, "early", early)
	w := &wire.Welcome{HWM: d.HWM, HubTime: now.UnixMilli(), ClockOffset: offset, Team: d.Team, Name: d.Name, Early: early}
	if ss.proto >= 2 && d.HWM > 0 {
		var err error
		if w.LastTag, err = c.s.store.DeviceChangeTag(ctx, d.ID, d.HWM); err != nil {
			c.s.log.Error("reading the device's last change", "device", d.ID, "err", err)
			c.fail(CloseInternal, wire.CodeInternal, "internal error")
			return false
		}
	}
	if after := refusalsAfter(ss, d.HWM); d.HWM > after {
		// The agent may lack acks the hub sent (lost in a cut after the
		// commit): it takes the Welcome's mark for them, and must learn
		// their refusals first.
		rs, err := c.s.store.Refusals(ctx, d.ID, after, d.HWM, wire.MaxWelcomeRejected)
		if err != nil {
			c.s.log.Error("reading the device's refused changes", "device", d.ID, "err", err)
			c.fail(CloseInternal, wire.CodeInternal, "internal error")
			return false
		}
		for _, r := range rs {
			w.Rejected = append(w.Rejected, WireRejection(r))
		}
	}
	if ss.proto >= wire.OpenProtocol {
		w.Retention = c.retention(ctx, d.ID)
		if w.Retention != nil && ss.retention != nil && bytes.Equal(wire.RetentionTag(w.Retention), ss.retention) {
			w.Retention, w.RetentionSame = nil, true // the agent holds it
		}
	}
	if err := c.send(w); err != nil {
		c.closeWith(websocket.CloseNormalClosure, "")
		return false
	}
	return true
}

// refusalsAfter returns the seq after which a Welcome of session ss, to a
// device whose mark is hwm, tells the refusals (wire.Welcome.Rejected):
// the agent's own mark when its Open said it, the last
// wire.WelcomeRejectedSpan changes when its Hello did not; hwm (none)
// for agents older than wire.RefusalsProtocol, which refuse the key.
func refusalsAfter(ss session, hwm uint64) uint64 {
	switch {
	case ss.proto < wire.RefusalsProtocol:
		return hwm
	case ss.knowsAcked:
		return ss.acked
	}
	return hwm - min(hwm, wire.WelcomeRejectedSpan)
}

// retention returns the policy a Welcome carries (wire.Welcome.Retention),
// nil when the hub has none to give: the agent then keeps the policy it
// holds, or reads /retention. A failure is logged, never refuses the
// session.
func (c *conn) retention(ctx context.Context, device string) map[string]uint32 {
	if c.s.opt.Retention == nil {
		return nil
	}
	p, err := c.s.opt.Retention(ctx)
	if err != nil {
		c.s.log.Warn("retention policy not read for the welcome", "device", device, "err", err)
		return nil
	}
	out := map[string]uint32{}
	for k, months := range p.Periods() {
		out[k] = uint32(months)
	}
	return out
}

// markSeen records the handshake — contact, agent version, clock offset —
// without making the Welcome wait for the store's writer: it takes its
// turn at the gate in the background, ahead of the connection's first
// batch, which waits for it (c.seen) so that the device's row reads in the
// order things happened. It is bookkeeping: a failure is logged, and
// never refuses the session.
func (c *conn) markSeen(ctx context.Context, id string, seen store.Seen) {
	c.s.wg.Add(1) // Shutdown waits for it before the store closes
	go func() {
		defer c.s.wg.Done()
		defer close(c.seen)
		// c.done: a connection closed meanwhile (shutting down) does not
		// keep Shutdown waiting for its bookkeeping; an agent's own close
		// comes after its last answer, which waited for this (c.seen).
		leave, err := c.s.writes.enter(c.done, c.s.opt.WriteWait)
		if err != nil {
			c.s.log.Warn("contact not recorded", "device", id, "err", err)
			return
		}
		defer leave()
		if err := c.s.store.MarkSeen(ctx, id, seen); err != nil {
			c.s.log.Error("recording contact", "device", id, "err", err)
		}
	}()
}

// authFailed is the one answer to an unknown device and to a bad
// signature.
const authFailed = "unknown device or bad signature: enroll this device again if it was removed from the hub"

// unknownDeviceKey stands in for the key of a device the hub does not
// know, so that its signature costs the same verification. It is the
// zero seed's key, whose private half anyone can derive: what refuses an
// unknown device is the known check beside the verification, never this
// key.
var unknownDeviceKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
