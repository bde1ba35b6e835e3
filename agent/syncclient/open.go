package syncclient

import (
	"compress/flate"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
	"numeribus/internal/wsearly"
)

// A sync in three round trips (protocol 5, docs/PROTOCOL.md): TCP, TLS,
// and one exchange. The agent signs an Open over the TLS session's
// exporter and writes it right behind the upgrade request, its first
// batches and its Pull behind it, before any answer; the hub
// answers the upgrade, the Welcome, the acks and the first page in one
// flight. The hub takes those frames only if the agent's view of its own
// history was right (wire.Open); otherwise it drops them and the session
// goes on as after a Hello.

// SlowHandshake is the time of the TCP and TLS handshakes beyond which a
// link is slow enough for compression to pay: two round trips of 50 ms,
// a mobile network, where the frames of a LAN or loopback take < 1 ms.
const SlowHandshake = 100 * time.Millisecond

// errNoOpen says the hub did not take an Open (a hub older than protocol
// 5): the TLS session was set up, the upgrade was not.
var errNoOpen = errors.New("the hub did not answer the Open")

// opens reports whether to open sessions to target with an Open: over
// TLS, unless this hub answered a Hello after refusing one less than
// helloFor ago.
func (c *Client) opens(target string) bool {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "wss" {
		return false
	}
	at := c.hello.Load()
	return at == 0 || c.Now().Sub(time.UnixMilli(at)) >= helloFor
}

// helloFor is how long a client keeps to Hello with a hub that refused an
// Open. An older hub (gorilla's upgrader) closes a connection whose
// request has frames behind it without answering, as a cut at the edge
// of coverage does: taken for good, one such cut left a long-running
// agent on Hello — seven round trips a sync — until it restarted. An
// older hub costs one refused Open an hour.
const helloFor = time.Hour

// tlsConfig pins the hub's certificate and keeps session tickets, so that
// a returning agent resumes its TLS session without receiving the
// certificate again (tickets.go).
func (c *Client) tlsConfig(fingerprint []byte) *tls.Config {
	cfg := tlspin.PinnedConfig(fingerprint)
	cfg.ClientSessionCache = c.sessions(fingerprint)
	return cfg
}

// open dials target, sends the Open with the first frames, and reads the
// Welcome.
func (s *session) open(ctx context.Context, target string, fp []byte, key ed25519.PrivateKey) error {
	c := s.c
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("hub address %q: %w", target, err)
	}
	start := time.Now()
	tc, err := c.dialTLS(ctx, u, fp)
	if err != nil {
		return err
	}
	// TCP and TLS took two round trips: over a slow link, pages are
	// asked compressed and pushes compressed at the best level; on a
	// fast one pushes at the fastest (wire.Deflated).
	s.deflate = time.Since(start) >= SlowHandshake
	s.pushLevel = flate.BestSpeed
	if s.deflate {
		s.pushLevel = flate.BestCompression
	}
	o, frames, err := s.early(ctx)
	if err != nil {
		tc.Close()
		return err
	}
	cs := tc.ConnectionState()
	exporter, err := cs.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterSize)
	if err != nil {
		tc.Close()
		return fmt.Errorf("%w: %v", errNoOpen, err)
	}
	signed, err := wire.OpenMessage(exporter, o)
	if err != nil {
		tc.Close()
		return err
	}
	o.Sig = ed25519.Sign(key, signed)
	of, err := wire.Encode(o)
	if err != nil {
		tc.Close()
		return err
	}
	// The Open goes first behind the request, the frames it announces
	// behind it: one write, one flight.
	ec := &wsearly.Conn{Conn: tc, Early: append([][]byte{of}, frames...)}
	d := websocket.Dialer{
		HandshakeTimeout: c.HandshakeTimeout,
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  64 << 10,
		NetDialContext:   func(context.Context, string, string) (net.Conn, error) { return ec, nil },
	}
	plain := *u
	plain.Scheme = "ws" // TLS is already up, underneath
	// No User-Agent (Go's default, 32 bytes): every byte of the request
	// is on the way of the sync's third round trip.
	ws, resp, err := d.DialContext(ctx, plain.String(), http.Header{"User-Agent": {""}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		tc.Close()
		return fmt.Errorf("%w: %v", errNoOpen, err)
	}
	if resp.Header.Get(wire.OpenHeader) == "" {
		// An older hub upgraded without reading an Open: it waits for
		// a Hello, and refuses the Open as a first frame.
		ws.Close()
		return fmt.Errorf("%w: the upgrade's answer does not acknowledge it", errNoOpen)
	}
	s.ws = ws
	ws.SetReadLimit(wire.MaxFrame)
	s.rep.BytesSent += int64(ec.SentEarly())
	ws.SetReadDeadline(time.Now().Add(c.HandshakeTimeout))
	if s.welcome, err = s.readWelcome(); err != nil {
		ws.Close()
		return err
	}
	if !s.welcome.Early {
		s.forgetEarly() // dropped by the hub: reconcile, then send again
	}
	s.rep.Opened, s.rep.EarlyTaken, s.rep.Resumed, s.rep.Deflated = true, s.welcome.Early, cs.DidResume, s.deflate
	return nil
}

// forgetEarly forgets the frames sent with an Open that the hub did not
// take.
func (s *session) forgetEarly() {
	if s.pushed != nil {
		s.rep.Pushed -= s.pushed.sent - s.pushed.from
	}
	s.pushed, s.pulling = nil, false
}

// early returns the Open, unsigned, and the frames to send behind it: the
// first window of batches of the outbox and, unlocked, the Pull.
func (s *session) early(ctx context.Context) (*wire.Open, [][]byte, error) {
	c, st := s.c, s.c.Store
	p, err := s.startPush(ctx)
	if err != nil {
		return nil, nil, err
	}
	o := &wire.Open{Proto: wire.ProtocolVersion, AgentVersion: c.Version, Device: wire.DeviceBytes(st.Device()),
		AgentTime: c.Now().UnixMilli(), Mode: s.mode, Acked: p.sent, Offset: st.ClockOffset().Milliseconds()}
	if p.sent > 0 {
		// No tag (a store that lost its change there) makes the hub
		// drop the early frames: it then says what it holds.
		if o.AckedTag, err = st.ChangeTag(ctx, p.sent); err != nil {
			c.Log.Warn("no tag for the acknowledged mark: the hub will say what it holds", "seq", p.sent, "err", err)
			o.AckedTag = nil
		}
	}
	if o.Retention, err = retentionTag(ctx, st); err != nil {
		c.Log.Warn("retention policy not read: the hub sends its own", "err", err)
	}
	last, _, err := st.Seqs(ctx)
	if err != nil {
		return nil, nil, err
	}
	var frames [][]byte
	add := func(m wire.Message) error {
		b, err := encodeFrame(m, s.pushLevel)
		if err != nil {
			return err
		}
		frames = append(frames, b)
		return nil
	}
	if err := s.fill(ctx, p, last, func(b *wire.Push) error { return add(b) }); err != nil {
		return nil, nil, err
	}
	s.pushed = p
	if s.mode == wire.ModeFull && !st.Locked() {
		ss, err := st.SyncState(ctx)
		if err != nil {
			return nil, nil, err
		}
		if err := add(s.pullOf(ss, ss.PullCursor, ss.PullTag)); err != nil {
			return nil, nil, err
		}
		s.pulling = true
	}
	o.Early = uint32(len(frames))
	return o, frames, nil
}

// dialTLS opens the TCP connection and the TLS session (TLS 1.3: the
// exporter binds the Open to this session alone), checking the pin.
func (c *Client) dialTLS(ctx context.Context, u *url.URL, fp []byte) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.HandshakeTimeout)
	defer cancel()
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	cfg := c.tlsConfig(fp)
	cfg.MinVersion = tls.VersionTLS13
	cfg.ServerName = host
	// Resuming a session, X25519 alone: the session's secret keeps the
	// keys out of a quantum computer's reach (tickets.go).
	resume := c.sessions(fp).resumable(host)
	if resume {
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	tc, err := c.handshake(ctx, net.JoinHostPort(host, port), cfg)
	if err != nil || !resume || tc.ConnectionState().DidResume {
		return tc, err
	}
	// The hub did not take the session: this handshake had no ML-KEM.
	// Nothing was sent on it; shake hands again with the default.
	tc.Close()
	c.Log.Info("the hub did not resume the TLS session: full handshake")
	cfg.CurvePreferences = nil
	return c.handshake(ctx, net.JoinHostPort(host, port), cfg)
}

// handshake opens a TCP connection to addr and a TLS session over it.
func (c *Client) handshake(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		var mm *tlspin.MismatchError
		if errors.As(err, &mm) {
			return nil, mm
		}
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return tc, nil
}
