// Package syncclient is the agent's end of the sync protocol: enrollment,
// one sync round (`agent sync`), and the background loop of `agent serve`
// that reconnects with jittered exponential backoff and keeps the
// connection open while online.
//
// A round pushes the outbox in byte-bounded batches with several in flight
// (so a 600 ms round trip does not dominate), marks the outbox acked as the
// hub's acks come back, then pulls the team's changes page by page, each
// page applied in one transaction with its cursor. A connection cut at any
// byte resumes from what the store says, and the hub ignores what it
// already has: nothing is lost, nothing is applied twice.
package syncclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/agent/store"
	"numeribus/internal/apperr"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// Defaults of a Client.
const (
	DefaultBatchBytes = 256 << 10
	DefaultBatchCount = 2000
	DefaultWindow     = 4
	DefaultPullBudget = 512 << 10
	// SkewThreshold is the clock offset beyond which the agent's unsent
	// changes are restamped (network delay stays far below it).
	SkewThreshold = wire.ClockTolerance * time.Millisecond
)

// Client syncs one agent store with its hub.
type Client struct {
	Store   *store.Store
	Log     *slog.Logger
	Version string // agent version sent in Hello
	// URL overrides the enrolled hub URL (tests route through a proxy).
	URL string
	// Insecure allows a ws:// hub (loopback only, for demos and tests).
	Insecure   bool
	Now        func() time.Time
	BatchBytes int
	BatchCount int
	Window     int
	PullBudget int
	// HandshakeTimeout bounds dialing and each handshake step.
	HandshakeTimeout time.Duration
	// AnswerTimeout bounds the wait for an ack or a page: a hub silent
	// that long is taken for a cut connection (the next round resumes).
	AnswerTimeout time.Duration
	// Synced, if set, is called after each round that went through; it
	// must not block (agent serve's updater checks for a release then).
	Synced func()

	init    sync.Once
	tickets tls.ClientSessionCache // TLS resumption: no certificate again on each sync (tickets.go)
	saved   sync.Map               // when each session in tickets was saved
	// unsaved holds the sessions (key → encoded, nil to forget) TLS
	// handed over during a round, for the store after the round's data
	// (bookkeeping.go).
	unsaved sync.Map
	// hello is when a hub last refused an Open and then answered a Hello
	// (Unix ms; 0: never): a hub older than protocol 5 — or a cut just
	// before the upgrade's answer, which looks the same from here, hence
	// helloFor (open.go).
	hello   atomic.Int64
	kick    chan chan error // SyncNow → the running loop
	running atomic.Bool     // Run is active: SyncNow goes through it
	alive   liveness        // Run's connection, for the UI (liveness.go)
	// reading says a read of the retention policy runs, policyTried
	// when this process last started one (Unix ms; retention.go).
	reading     atomic.Bool
	policyTried atomic.Int64
}

// defaults fills unset options once: Run and SyncNow may start together.
func (c *Client) defaults() { c.init.Do(c.setDefaults) }

func (c *Client) setDefaults() {
	c.kick = make(chan chan error)
	c.tickets = tls.NewLRUClientSessionCache(4)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchCount == 0 {
		c.BatchCount = DefaultBatchCount
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	c.Window = min(c.Window, wire.MaxWindow)
	// Whatever the options say, a batch stays within what the hub's
	// decoder takes: a frame over the wire's limits is never sent.
	c.BatchCount = min(c.BatchCount, wire.MaxChanges)
	c.BatchBytes = min(c.BatchBytes, wire.MaxFrame/2)
	if c.PullBudget == 0 {
		c.PullBudget = DefaultPullBudget
	}
	if c.AnswerTimeout == 0 {
		c.AnswerTimeout = 2 * time.Minute
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 15 * time.Second
	}
}

// RemoteError is an error the hub sent (wire.Error), or a close code.
type RemoteError struct {
	Code    string
	Message string
	// RetryAfter is, when the hub is busy (wire.CodeBusy), how long it
	// asked to wait before connecting again (0: not said).
	RetryAfter time.Duration
}

func (e *RemoteError) Error() string { return fmt.Sprintf("hub refused: %s: %s", e.Code, e.Message) }

// Busy reports whether err is a busy hub's answer, and how long it asked
// to wait (0 when it did not say).
func Busy(err error) (time.Duration, bool) {
	var re *RemoteError
	if errors.As(err, &re) && re.Code == wire.CodeBusy {
		return re.RetryAfter, true
	}
	return 0, false
}

// ErrUnreachable wraps dial failures: no coverage, hub down.
var ErrUnreachable = apperr.New(apperr.Unreachable, "hub unreachable")

// Report says what a round did.
type Report struct {
	Pushed, Acked   uint64 // changes sent this round; last acked seq
	Pulled          int    // changes applied from the hub
	ClockOffset     time.Duration
	Restamped       int
	Mode            uint8
	BytesSent       int64
	BytesReceived   int64
	PendingAfter    uint64
	PullSkipped     bool // locked: pull waits for the next unlock
	PushSkippedSkew bool // locked with a wrong clock: push waits too
	PushIncomplete  bool // locked: changes from before enrollment wait for an unlock
	// Recovery after one side went back in time (docs/PROTOCOL.md).
	Renumbered          int    // changes renumbered after the hub's mark (this store went back)
	Resent              uint64 // acknowledged changes sent again (the hub went back)
	PullReset           bool   // the hub's log went back: pulled again from the start
	PushSkippedDiverged bool   // locked, and the store went back: push waits for an unlock
	Unreadable          int    // pulled changes that did not decode or were stamped beyond the bound, skipped (see store.ApplyRemote)
	Rejected            int    // changes the hub refused this round, kept on the laptop (store.RejectedChanges)
	// Requeued counts changes the hub refused for want of a consent that
	// it had not received yet, written again after it (store.ResendConsented).
	Requeued int
	// How the session opened (docs/PROTOCOL.md): with an Open (protocol
	// 5), its early frames taken by the hub, and a resumed TLS session
	// (no certificate sent again).
	Opened, EarlyTaken, Resumed bool
	// Deflated: the link was slow, frames went compressed both ways.
	Deflated bool
	// RetentionSame: the hub's retention policy is the one held, and its
	// Welcome left it out.
	RetentionSame bool
	// Purged counts the records whose expired personal data this round's
	// purge erased (retention.go); their erasures were pushed.
	Purged int
	// Sent is the time from the round's start to the hub's ack of the
	// last change pushed (connection, push): when the work is safe at
	// the hub, and the laptop may leave coverage. The pull and the
	// retention purge follow.
	Sent time.Duration
}

// session is one authenticated connection.
type session struct {
	c       *Client
	ws      *websocket.Conn
	mode    uint8
	welcome *wire.Welcome
	in      chan frame
	rep     *Report
	// pushed and pulling are the batches and the Pull sent with an Open
	// and taken by the hub (open.go): push and pull go on from them.
	pushed  *pushing
	pulling bool
	page    *wire.Changes // the answer to that Pull, arrived during the push
	// deflate asks for compressed pages, and compresses pushes at the
	// best level: the link is slow, and the hub speaks protocol 5
	// (open.go).
	deflate bool
	// pushLevel is how pushes are compressed: flate.BestSpeed on a fast
	// link to a hub of protocol 5, the best level on a slow one, 0 (not
	// at all) with an older hub (wire.Deflated).
	pushLevel int
}

type frame struct {
	m   wire.Message
	n   int
	err error
}

func dialURL(raw string, insecure bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("hub address %q: %w", raw, err)
	}
	if u.Scheme == "ws" && !insecure {
		return "", fmt.Errorf("hub address %q is not encrypted (ws://): allowed only with --insecure", raw)
	}
	return u.String(), nil
}

func (c *Client) dial(ctx context.Context, rawURL string, fingerprint []byte) (*websocket.Conn, error) {
	u, err := dialURL(rawURL, c.Insecure)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{
		HandshakeTimeout:  c.HandshakeTimeout,
		ReadBufferSize:    64 << 10,
		WriteBufferSize:   64 << 10,
		EnableCompression: false,
		TLSClientConfig:   c.tlsConfig(fingerprint),
	}
	ws, resp, err := d.DialContext(ctx, u, http.Header{})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		var mm *tlspin.MismatchError
		if errors.As(err, &mm) {
			return nil, mm
		}
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	ws.SetReadLimit(wire.MaxFrame)
	return ws, nil
}

func send(ws *websocket.Conn, m wire.Message) (int, error) { return sendDeflated(ws, m, 0) }

// sendDeflated sends m, compressed at level (a flate level; 0: not) when
// that makes it smaller (a hub of protocol 5: wire.Deflated).
func sendDeflated(ws *websocket.Conn, m wire.Message, level int) (int, error) {
	b, err := encodeFrame(m, level)
	if err != nil {
		return 0, err
	}
	ws.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		return 0, fmt.Errorf("%w: sending: %v", ErrUnreachable, err)
	}
	return len(b), nil
}

// encodeFrame encodes m, compressed at level (0: not) when that makes it
// smaller.
func encodeFrame(m wire.Message, level int) ([]byte, error) {
	b, err := wire.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", m, err)
	}
	if level != 0 {
		return wire.DeflateAt(b, level)
	}
	return b, nil
}

// readOne reads and decodes one frame, turning an Error message or a
// close frame into a *RemoteError.
func readOne(ws *websocket.Conn) (wire.Message, int, error) {
	typ, b, err := ws.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code >= 4000 {
			code, msg, _ := cut(ce.Text)
			return nil, 0, &RemoteError{Code: code, Message: msg}
		}
		return nil, 0, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if typ != websocket.BinaryMessage {
		return nil, 0, errors.New("hub sent a text frame")
	}
	m, err := wire.Decode(b)
	if err != nil {
		return nil, 0, fmt.Errorf("hub sent a bad frame: %w", err)
	}
	if e, ok := m.(*wire.Error); ok {
		return nil, len(b), &RemoteError{Code: e.Code, Message: e.Message, RetryAfter: time.Duration(e.RetryAfter) * time.Millisecond}
	}
	return m, len(b), nil
}

func cut(s string) (string, string, bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == ':' && s[i+1] == ' ' {
			return s[:i], s[i+2:], true
		}
	}
	return s, s, false
}

// connect dials and authenticates: a full session when the store is
// unlocked, push-only otherwise.
func (c *Client) connect(ctx context.Context, rep *Report) (*session, error) {
	c.defaults()
	h, err := c.Store.Hub(ctx)
	if err != nil {
		return nil, err
	}
	target := h.URL
	if c.URL != "" {
		target = c.URL
	}
	mode := uint8(wire.ModeFull)
	var key ed25519.PrivateKey
	if c.Store.Locked() {
		mode, key = wire.ModePush, h.PushKey
	} else if key, err = c.Store.DeviceKey(ctx); err != nil {
		return nil, err
	}
	s := &session{c: c, mode: mode, rep: rep}
	if c.opens(target) {
		err := s.open(ctx, target, h.CertFingerprint, key)
		if !errors.Is(err, errNoOpen) {
			if err != nil {
				return nil, err
			}
			s.done(s.welcome)
			return s, nil
		}
		c.Log.Info("the hub did not take an Open: opening with Hello", "err", err)
		s.forgetEarly()
		s.deflate, s.pushLevel = false, 0 // the hub may not read compressed frames
		defer func() {
			if s.welcome != nil {
				c.hello.Store(c.Now().UnixMilli()) // a hub older than protocol 5, most likely
			}
		}()
	}
	if err := s.hello(ctx, target, h.CertFingerprint, key); err != nil {
		return nil, err
	}
	s.done(s.welcome)
	return s, nil
}

// hello opens the session with the challenge handshake (protocols 1–4,
// and hubs without TLS).
func (s *session) hello(ctx context.Context, target string, fp []byte, key ed25519.PrivateKey) error {
	c, rep, mode := s.c, s.rep, s.mode
	ws, err := c.dial(ctx, target, fp)
	if err != nil {
		return err
	}
	s.ws = ws
	ok := false
	defer func() {
		if !ok {
			ws.Close()
		}
	}()
	ws.SetReadDeadline(time.Now().Add(c.HandshakeTimeout))
	device := c.Store.Device()
	n, err := send(ws, &wire.Hello{Proto: wire.ProtocolVersion, AgentVersion: c.Version, Device: device,
		AgentTime: c.Now().UnixMilli(), Mode: mode})
	if err != nil {
		return err
	}
	rep.BytesSent += int64(n)
	m, n, err := readOne(ws)
	if err != nil {
		return err
	}
	rep.BytesReceived += int64(n)
	ch, isCh := m.(*wire.Challenge)
	if !isCh {
		return fmt.Errorf("hub sent type %d instead of a challenge", m.Type())
	}
	if len(fp) == 0 {
		fp = nil
	}
	sig := ed25519.Sign(key, wire.AuthMessage(ch.Nonce, fp, device, mode))
	if n, err = send(ws, &wire.Auth{Sig: sig}); err != nil {
		return err
	}
	rep.BytesSent += int64(n)
	if s.welcome, err = s.readWelcome(); err != nil {
		return err
	}
	ok = true
	return nil
}

// readWelcome reads the hub's Welcome.
func (s *session) readWelcome() (*wire.Welcome, error) {
	m, n, err := readOne(s.ws)
	if err != nil {
		return nil, err
	}
	s.rep.BytesReceived += int64(n)
	w, isW := m.(*wire.Welcome)
	if !isW {
		return nil, fmt.Errorf("hub sent type %d instead of a welcome", m.Type())
	}
	return w, nil
}

// done readies an opened session: what the report says of it, and the
// liveness of an idle connection.
func (s *session) done(w *wire.Welcome) {
	ws, rep := s.ws, s.rep
	rep.Mode = s.mode
	rep.ClockOffset = time.Duration(w.ClockOffset) * time.Millisecond
	// The contact is recorded after the round's data (bookkeeping.go).
	// The hub pings every 20 s: a connection silent for a minute is dead
	// (a tunnel, a dead zone) even if TCP has not noticed.
	ws.SetReadDeadline(time.Now().Add(time.Minute))
	ws.SetPingHandler(func(data string) error {
		ws.SetReadDeadline(time.Now().Add(time.Minute))
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
}

// align compares this device's change numbers with the hub's, from the
// welcome's high-water mark H and the hub's tag of its change H:
//
//   - the store holds change H, with the same tag: the usual case; the
//     outbox is acked up to H (an ack lost in a cut). If H is below what
//     the store had acked, the hub went back (restored from a backup): the
//     acknowledged mark goes back to H and the changes after it go out
//     again.
//   - the store has no change H, or another one there: the store went back
//     in time (restored copy, lost WAL tail) and reused numbers the hub had
//     seen for new work. Its changes after its own acknowledged mark are
//     renumbered after H, so they reach the hub, and the next pulls fetch
//     back this device's changes that the store lost.
//
// Nothing is lost and nothing doubled: re-sent changes the hub already
// holds merge to the same state (docs/PROTOCOL.md).
func (s *session) align(ctx context.Context) error {
	st := s.c.Store
	last, acked, err := st.Seqs(ctx)
	if err != nil {
		return err
	}
	h := s.welcome.HWM
	var mine []byte
	if h > 0 && h <= last {
		if mine, err = st.ChangeTag(ctx, h); err != nil {
			return err
		}
	}
	forked := h > last || (h > 0 && s.welcome.LastTag != nil && !bytes.Equal(mine, s.welcome.LastTag))
	switch {
	case forked:
		return s.renumber(ctx, last, acked, h)
	case h < acked:
		s.c.Log.Warn("the hub lacks changes it had acknowledged (restored from a backup?): sending them again", "hwm", h, "acked", acked)
		s.rep.Resent = acked - h
		return st.Rewind(ctx, h)
	case h > acked:
		// The acks of changes up to h were lost (a cut after the hub
		// committed): their refusals come with the Welcome, recorded
		// before the ack as an Ack's are.
		var rs []wire.Rejection
		for _, r := range s.welcome.Rejected {
			if r.Seq > acked && r.Seq <= h {
				rs = append(rs, r)
			}
		}
		if err := s.refused(ctx, rs); err != nil {
			return err
		}
		return st.Ack(ctx, h)
	}
	return nil
}

// renumber moves the store's unacknowledged changes after the hub's mark h.
// When the store's own mark is above h too (both sides went back), nothing
// below is known to match, and every change is sent again.
func (s *session) renumber(ctx context.Context, last, acked, h uint64) error {
	if s.mode != wire.ModeFull {
		// Bodies are sealed to their numbers: renumbering waits for an
		// unlock, and so does the push (it would be taken for a retry).
		s.c.Log.Warn("this store went back in time: sending waits for an unlock", "hwm", h, "last", last)
		s.rep.PushSkippedDiverged = true
		return nil
	}
	from := acked
	if from >= h {
		from = 0
	}
	n, err := s.c.Store.Renumber(ctx, from, h)
	if err != nil {
		return fmt.Errorf("renumbering changes after a restore: %w", err)
	}
	s.c.Log.Warn("this store went back in time (restored copy, damaged journal?): its changes are renumbered after the hub's and its lost changes pulled back",
		"hwm", h, "last", last, "acked", acked, "renumbered", n)
	s.rep.Renumbered = n
	return nil
}

// Sync runs one full round: push everything pending, then pull
// everything new (pull only when unlocked). It records the outcome in the
// store for `agent status`.
func (c *Client) Sync(ctx context.Context) (Report, error) {
	c.defaults()
	var rep Report
	err := c.round(ctx, &rep)
	msg := ""
	if err != nil {
		msg = err.Error()
	} else if c.Synced != nil {
		c.Synced()
	}
	c.noted("round outcome", c.Store.RecordSync(ctx, c.Now(), msg))
	return rep, err
}

func (c *Client) round(ctx context.Context, rep *Report) error {
	start := time.Now()
	s, err := c.connect(ctx, rep)
	if err != nil {
		return err
	}
	defer s.close()
	defer c.recordContact(ctx, s)
	pr := s.policy(ctx) // from the Welcome, or read beside the round
	if err := s.reconcile(ctx); err != nil {
		return err
	}
	if err := s.push(ctx); err != nil {
		return err
	}
	rep.Sent = time.Since(start)
	if s.mode == wire.ModeFull {
		if err := s.pull(ctx); err != nil {
			// The push went through (a full disk, a cut while pulling):
			// the report says what the hub holds, the error what failed.
			if last, acked, serr := c.Store.Seqs(ctx); serr == nil {
				rep.Acked, rep.PendingAfter = acked, last-acked
			}
			return fmt.Errorf("changes sent, but receiving the team's changes failed: %w", err)
		}
		if err := s.retention(ctx, pr); err != nil {
			return err
		}
	} else {
		rep.PullSkipped = true
	}
	last, acked, err := c.Store.Seqs(ctx)
	rep.Acked, rep.PendingAfter = acked, last-acked
	return err
}

func (s *session) close() {
	s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	s.ws.Close()
}

// reconcile brings the outbox in line with what the hub holds (its ack
// may have been lost in a cut; either side may have gone back in time)
// and corrects a wrong clock.
func (s *session) reconcile(ctx context.Context) error {
	if err := s.align(ctx); err != nil {
		return err
	}
	st := s.c.Store
	offset := time.Duration(s.welcome.ClockOffset) * time.Millisecond
	// Early batches taken by the hub were checked against its clock
	// already (wire.ClockTolerance): restamping now would change changes
	// it holds.
	if d := offset - st.ClockOffset(); !s.welcome.Early && (d > SkewThreshold || d < -SkewThreshold) {
		if s.mode != wire.ModeFull {
			// The stamps are sealed: correcting them waits for an unlock.
			s.rep.PushSkippedSkew = true
			return nil
		}
		n, err := st.RestampPending(ctx, offset)
		if err != nil {
			return fmt.Errorf("correcting the clock: %w", err)
		}
		s.rep.Restamped = n
		s.c.Log.Warn("clock corrected", "offset_ms", offset.Milliseconds(), "restamped", n)
	}
	return nil
}
