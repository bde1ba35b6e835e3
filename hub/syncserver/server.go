// Package syncserver is the hub's end of the sync protocol
// (schema/sync.cddl, docs/PROTOCOL.md): it enrolls devices, authenticates
// them by a signature over a fresh nonce bound to the TLS certificate,
// applies their change batches through the store's merge, and serves the
// changes of their team back.
//
// Each connection is owned by one goroutine that handles its frames and
// writes the replies, in order. Once the device is authenticated, a second
// goroutine, the connection's only reader, reads the next frames, decodes
// them and converts their changes while the first applies the current
// batch: the agent keeps several batches in flight, and decoding them
// need not wait for the store. What the reader finds wrong is reported by
// the owner in its turn, after the replies to the frames before it.
// Keepalive pings go through WriteControl, which gorilla/websocket allows
// concurrently. Every way a connection ends goes through one close path
// that sends a close code and a reason.
package syncserver

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/hub/store"
	"numeribus/internal/apperr"
	"numeribus/internal/retention"
	"numeribus/internal/wire"
)

// Close codes (RFC 6455 private range 4000–4999), mirrored by the agent:
// those of internal/apperr's one table.
var (
	CloseMalformed    = apperr.Invalid.Close()  // 4400
	CloseUnauthorized = apperr.Auth.Close()     // 4401
	CloseRevoked      = apperr.Refused.Close()  // 4403
	CloseTooLarge     = apperr.TooLarge.Close() // 4413
	CloseUpgrade      = apperr.Upgrade.Close()  // 4426
	CloseInternal     = apperr.Internal.Close() // 4500
)

// Options tune a server.
type Options struct {
	Logger *slog.Logger
	// Fingerprint is the SHA-256 of the hub's TLS certificate, bound into
	// every authentication signature (nil with --insecure).
	Fingerprint []byte
	// HubKey is the hub's X25519 public key given to enrolling agents.
	HubKey []byte
	// Open opens bodies sealed to the hub (nil: sealed bodies refused).
	Open func(device string, keys map[uint64][]byte, c *wire.Change) ([]byte, error)
	Now  func() time.Time
	// PingEvery is the keepalive period (default 20 s); a peer silent for
	// three periods is dropped.
	PingEvery time.Duration
	// MaxPull caps the bytes of one Changes reply (default 1 MiB).
	MaxPull int
	// ContactEvery is how often the contacts heard on open connections
	// (pongs, rounds) are written, all devices at once (default 1 min,
	// contacts.go).
	ContactEvery time.Duration
	// Writers is how many connections may write to the store at once
	// (default 2: SQLite has one writer, the second prepares its batch);
	// Readers how many may serve a pull page at once (default 4, the
	// read pool). The others wait their turn in arrival order (admit.go).
	Writers, Readers int
	// WriteWait and ReadWait bound a batch's and a pull's wait for their
	// turn (default 90 s, within the agent's two minutes for an answer):
	// beyond, the agent is told to come back later. Shorter, a burst of
	// a thousand agents that one SQLite writer drains in seconds was
	// sent away in waves that lasted minutes.
	WriteWait, ReadWait time.Duration
	// Retention returns the hub's retention policy, sent in the Welcome
	// of protocol 5 sessions (wire.Welcome.Retention), so that an agent
	// reads it without a second connection to /retention (nil: not sent).
	Retention func(context.Context) (retention.Policy, error)
}

// Server serves /sync.
type Server struct {
	store store.Store
	opt   Options
	log   *slog.Logger
	up    websocket.Upgrader

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup

	contacts contacts // heard on open connections, not yet written

	writes, reads *gate // admission to the store (admit.go)
	// decoding bounds the pushes decoded and waiting for the store: a
	// thousand agents pushing at once each held a decoded batch (~300 KB
	// of Go values for 200 changes); the others wait as bytes in the
	// kernel's socket buffers.
	decoding  *gate
	draining  chan struct{} // closed by Shutdown
	drainOnce sync.Once
}

// New returns a server on st.
func New(st store.Store, opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.PingEvery == 0 {
		opt.PingEvery = 20 * time.Second
	}
	if opt.MaxPull == 0 {
		opt.MaxPull = 1 << 20
	}
	if opt.ContactEvery == 0 {
		opt.ContactEvery = time.Minute
	}
	opt.Writers, opt.Readers = cmp.Or(opt.Writers, 2), cmp.Or(opt.Readers, 4)
	opt.WriteWait, opt.ReadWait = cmp.Or(opt.WriteWait, 90*time.Second), cmp.Or(opt.ReadWait, 90*time.Second)
	return &Server{
		store: st, opt: opt, log: opt.Logger, conns: map[*conn]struct{}{},
		writes: newGate(opt.Writers), reads: newGate(opt.Readers), decoding: newGate(decodingSlots),
		draining: make(chan struct{}),
		up: websocket.Upgrader{
			// Frames are read through NextReader into pooled buffers
			// (frameBufs), so the read buffer only needs to hold frame
			// headers; write buffers come from a pool and are held only
			// while a reply is written. A thousand idle connections then
			// hold 4 KiB each instead of 128.
			ReadBufferSize: 4 << 10, WriteBufferSize: 32 << 10, WriteBufferPool: &writeBufs,
			// No permessage-deflate: the read limit would count compressed
			// bytes (TECH-NOTES), and sealed bodies do not compress.
			EnableCompression: false,
			// Agents are not browsers; no Origin check applies.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
}

// ServeHTTP upgrades to a websocket and runs the protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Says this hub reads an Open: an agent answered without it knows it
	// talks to a hub older than protocol 5, and falls back. Older agents
	// ignore it.
	answer := http.Header{wire.OpenHeader: {strconv.Itoa(wire.ProtocolVersion)}}
	ed := &earlyData{ResponseWriter: w}
	ws, err := s.up.Upgrade(ed, r, answer)
	if err != nil {
		s.log.Info("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := &conn{s: s, ws: ws, remote: r.RemoteAddr, done: make(chan struct{}), seen: make(chan struct{}),
		held: ed.held, drained: ed.drained}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	c.run(r.Context(), r.TLS)
}

// WatchRevocations closes live connections of revoked devices, checking
// the store every period (revocation happens in another process, `hub
// revoke`, or through another instance) with one query for all the
// connections (watchRevocations). It returns when ctx ends.
func (s *Server) WatchRevocations(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	s.watchRevocations(ctx, t.C)
}

// decodingSlots is how many pushes may wait decoded for the store: enough
// to keep the writers busy while the next batches decode.
const decodingSlots = 32

// writeBufs is the pool of the connections' write buffers.
var writeBufs sync.Pool

// Shutdown drains the connections: each finishes the frames it has
// already read — a batch being applied is acked — then closes with a
// "going away" close, which agents take as a reason to reconnect (to
// another instance behind a load balancer). Those still busy when ctx
// ends are closed at once: whatever they had not acked is sent again by
// their agent. It then writes the contacts the connections noted.
func (s *Server) Shutdown(ctx context.Context) {
	s.drainOnce.Do(func() { close(s.draining) })
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.closeWith(websocket.CloseGoingAway, "hub shutting down")
		}
		s.mu.Unlock()
		<-done
	}
	s.flushContacts(context.Background())
}

// conn is one agent connection.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	remote string

	// wmu serialises data frames: the connection's goroutine replies
	// while the revocation watcher may send an Error.
	wmu sync.Mutex

	mu     sync.Mutex
	device store.Device
	mode   uint8
	proto  uint32 // the agent's protocol version (Hello.Proto)
	// hwm is the device's high-water mark as this connection last moved
	// it (owner goroutine only): changes at or below it are retries.
	hwm    uint64
	closed bool
	done   chan struct{}
	// seen is closed once the handshake's bookkeeping is written (or
	// given up): the connection's writes come after it (markSeen).
	seen chan struct{}
	// drop is how many of the next frames, sent with the Open, are
	// dropped (owner goroutine only).
	drop int
	// held holds the connection's writes while the frames that came
	// with the upgrade request are answered; drained is closed once the
	// reader has handed them all over (early.go). Both nil without early
	// bytes; drained is set to nil once held is released (owner only).
	held    *heldConn
	drained <-chan struct{}
}

// release sends what the connection holds (early.go): its answers to the
// frames that came with the request, in one write.
func (c *conn) release() {
	if c.held == nil {
		return
	}
	c.releaseHeld()
	c.drained = nil
}

// releaseHeld is release for the reader: it sends what the connection
// holds and leaves drained to the owner (held is safe to release from
// any goroutine, and twice).
func (c *conn) releaseHeld() {
	if c.held == nil {
		return
	}
	if err := c.held.release(); err != nil {
		c.s.log.Info("connection lost while replying", "device", c.deviceID(), "err", err)
	}
}

func (c *conn) deviceID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device.ID
}

// closeWith sends a close frame with code and reason, then closes.
func (c *conn) closeWith(code int, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	if len(reason) > 120 {
		reason = reason[:120]
	}
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	c.ws.Close()
}

// fail sends an Error message then closes with code.
func (c *conn) fail(code int, errCode, msg string) {
	c.s.log.Info("sync connection refused or ended", "remote", c.remote, "device", c.deviceID(), "code", errCode, "reason", msg)
	c.failWith(code, &wire.Error{Code: errCode, Message: msg})
}

// failWith sends e then closes with code.
func (c *conn) failWith(code int, e *wire.Error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		if b, err := wire.Encode(e); err == nil {
			c.wmu.Lock()
			c.ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
			c.ws.WriteMessage(websocket.BinaryMessage, b)
			c.wmu.Unlock()
		}
	}
	c.closeWith(code, e.Code+": "+e.Message)
}

func (c *conn) send(m wire.Message) error { return c.sendDeflated(m, false) }

// sendDeflated sends m, compressed when deflate is set and that makes it
// smaller (wire.Deflated: a Pull that asks for it, over a slow link).
func (c *conn) sendDeflated(m wire.Message, deflate bool) error {
	b, err := wire.Encode(m)
	if err != nil {
		return &encodeError{fmt.Errorf("encoding %T: %w", m, err)}
	}
	if deflate {
		if b, err = wire.Deflate(b); err != nil {
			return &encodeError{err}
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// readAhead is how many frames the reader may hold decoded beyond the one
// being handled: enough to cover the agent's window of batches in flight.
const readAhead = 3

// frameBufs holds the buffers frames are read into: decoding copies what
// it keeps, so a buffer serves the next frame, of any connection, as soon
// as its frame is decoded (an idle connection holds none). Buffers grown
// beyond keepFrame by a rare big frame are left to the collector (pushes
// are cut at 256 KiB by the agent).
var frameBufs = sync.Pool{New: func() any { return new([]byte) }}

const keepFrame = 1 << 20

// frame is one message read from the peer, ready to handle, or how the
// connection ends at this point of the stream.
type frame struct {
	m    wire.Message
	size int // bytes of the frame
	// release frees the decoding slot a Push holds until it is applied
	// (Server.decoding); nil for other frames.
	release func()
	// batch is a Push's changes, converted, with those the hub refuses
	// (in seq order) and what the consent rules read of their records
	// (empty for other frames).
	batch pushed

	// The end of the connection, when m is nil: lost (closed by the
	// peer, a timeout, or by this side), or an error to report.
	lost      bool
	peerClose int  // the code of the peer's close frame, to echo (lost)
	overLimit bool // a frame over wire.MaxFrame
	code      int
	errCode   string
	msg       string
	err       error
}

// end reports f's error to the peer, or closes a lost connection,
// echoing the peer's close frame if it sent one.
func (c *conn) end(f *frame) {
	switch {
	case f.peerClose != 0:
		c.closeWith(f.peerClose, "")
	case f.lost:
		c.closeWith(websocket.CloseNormalClosure, "")
	default:
		if f.overLimit {
			// What gorilla/websocket does at its read limit, which is
			// not set (run): done here, in the frame's turn.
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, ""), time.Now().Add(time.Second))
		}
		c.fail(f.code, f.errCode, f.msg)
	}
}

func failed(code int, errCode, msg string, err error) frame {
	if err == nil {
		err = errors.New(msg)
	}
	return frame{code: code, errCode: errCode, msg: msg, err: err}
}

// next reads and decodes the next frame, waiting at most timeout for it
// (pongs extend the wait). It reports nothing to the peer.
func (c *conn) next(timeout time.Duration) frame { return c.nextFrame(timeout, false) }

// nextFrame is next; with slot, a Push waits for a decoding slot before
// it is read past its head and decoded (Server.decoding), and the frame
// holds it. Waiting before the body is read leaves it in the socket's
// buffers, not in the hub's memory: a thousand agents pushing at once
// each held their read batch (~45 KB) while the writer worked through
// them.
func (c *conn) nextFrame(timeout time.Duration, slot bool) frame {
	c.ws.SetReadDeadline(time.Now().Add(timeout))
	typ, r, err := c.ws.NextReader()
	var (
		b       []byte
		release func()
	)
	if err == nil {
		buf := frameBufs.Get().(*[]byte)
		defer func() {
			if cap(b) <= keepFrame {
				*buf = b[:0]
				frameBufs.Put(buf)
			}
		}()
		var head [3]byte
		n, herr := io.ReadFull(r, head[:])
		b = append((*buf)[:0], head[:n]...)
		switch {
		case herr == io.EOF || herr == io.ErrUnexpectedEOF:
			// A frame shorter than a head: decoding says what is wrong.
		case herr != nil:
			err = herr
		default:
			if slot && holdsChanges(b) {
				leave, ok := c.s.decoding.tryEnter()
				if !ok {
					// A wait for the hub's load: what the connection
					// holds — the upgrade's answer, the Welcome —
					// leaves now rather than after it (early.go).
					c.releaseHeld()
					var gerr error
					if leave, gerr = c.s.decoding.enter(c.done, time.Hour); gerr != nil {
						return frame{lost: true, err: gerr}
					}
				}
				release = leave
				c.ws.SetReadDeadline(time.Now().Add(timeout)) // the wait is not the peer's
			}
			b, err = readAll(r, b, wire.MaxFrame)
		}
	}
	if err != nil {
		if release != nil {
			release()
		}
		// errOverLimit, or gorilla's for a length overflowing int64.
		if errors.Is(err, errOverLimit) || errors.Is(err, websocket.ErrReadLimit) {
			f := failed(CloseTooLarge, wire.CodeTooLarge, fmt.Sprintf("frame over %d bytes", wire.MaxFrame), err)
			f.overLimit = errors.Is(err, errOverLimit)
			return f
		}
		f := frame{lost: true, err: err}
		if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
			f.peerClose = ce.Code
		}
		return f
	}
	if typ != websocket.BinaryMessage {
		if release != nil {
			release()
		}
		return failed(CloseMalformed, wire.CodeMalformed, "text frame: one binary CBOR frame expected", nil)
	}
	m, err := wire.Decode(b)
	if err != nil {
		if release != nil {
			release()
		}
		code, ec := CloseMalformed, wire.CodeMalformed
		if errors.Is(err, wire.ErrTooLarge) {
			code, ec = CloseTooLarge, wire.CodeTooLarge
		}
		return failed(code, ec, err.Error(), err)
	}
	return frame{m: m, size: len(b), release: release}
}

// holdsChanges reports whether frame b is a Push, or compressed (then
// most likely one): what takes memory once decoded.
func holdsChanges(b []byte) bool {
	return len(b) >= 3 && b[1] == 0x00 && (b[2] == byte(wire.TypePush) || b[2] == byte(wire.TypeDeflated))
}

var errOverLimit = errors.New("frame over the limit")

// readAll appends what r holds to b, growing it as needed, and fails with
// errOverLimit once it has read more than limit bytes.
func readAll(r io.Reader, b []byte, limit int) ([]byte, error) {
	if cap(b) == 0 {
		b = make([]byte, 0, 4096)
	}
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(cap(b), limit+1-len(b))) // doubles, up to limit+1
		}
		n, err := r.Read(b[len(b):min(cap(b), limit+1)])
		b = b[:len(b)+n]
		if len(b) > limit {
			return b, errOverLimit
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// read returns the next message, or an error already reported to the peer.
func (c *conn) read(timeout time.Duration) (wire.Message, int, error) {
	f := c.next(timeout)
	if f.m == nil {
		c.end(&f)
		return nil, 0, f.err
	}
	return f.m, f.size, nil
}

// reader reads frames into out, converting the changes of pushes, until
// the connection ends (its last frame says how) or stop is closed. It is
// the connection's only reader once started.
func (c *conn) reader(ctx context.Context, out chan<- frame, stop <-chan struct{}) {
	for {
		f := c.nextFrame(3*c.s.opt.PingEvery, true)
		if p, ok := f.m.(*wire.Push); ok {
			b, bad := c.convert(ctx, p)
			if bad != nil {
				f = *bad
			}
			f.batch = b
		}
		select {
		case out <- f:
		case <-stop:
			if f.release != nil {
				f.release()
			}
			return
		}
		if f.m == nil {
			return
		}
	}
}

// convert returns the changes of p as the store takes them, with those
// the hub refuses one by one, or the frame that ends the connection when
// the whole batch is refused (ConvertPush, intake.go).
func (c *conn) convert(ctx context.Context, p *wire.Push) (pushed, *frame) {
	b, bad := convertPush(c.s.opt.Open, c.device.ID, c.proto, p, c.s.opt.Now())
	if bad != nil {
		f := failed(CloseMalformed, bad.Code, bad.Msg, bad.Err)
		return pushed{}, &f
	}
	if pr, ok := c.s.store.(store.Preparer); ok && len(b.rejected) == 0 {
		// The store's part that needs no database, here beside the
		// writer rather than in the batch's turn (store.Preparer).
		b.prep = pr.PrepareBatch(c.device.ID, c.device.Team, b.cs)
	}
	// Likewise the consent look-up, used in the turn if no consent was
	// written meanwhile (store.ConsentVersioner).
	b.consents = readConsentsAhead(ctx, c.s.store, c.device.Team, c.proto, c.s.opt.Now(), &b)
	return b, nil
}

// run serves the connection over TLS session ts (nil without TLS): its
// handshake, then its frames.
func (c *conn) run(ctx context.Context, ts *tls.ConnectionState) {
	// The request's context ends only when ServeHTTP returns (a hijacked
	// connection is no longer watched by net/http), so nothing cancels
	// the store's work meanwhile; without a Done channel, the SQLite
	// driver and database/sql skip a watcher goroutine per statement and
	// transaction (and a progress handler polling for cancellation).
	ctx = context.WithoutCancel(ctx)
	// Frames are limited to wire.MaxFrame by next, not by gorilla, which
	// would send its close (1009) from the reader, ahead of the replies
	// to the frames read before.
	c.ws.SetReadLimit(0)
	c.ws.SetPongHandler(func(string) error {
		c.ws.SetReadDeadline(time.Now().Add(3 * c.s.opt.PingEvery))
		c.noteContact()
		return nil
	})
	// The peer's close frame is answered in its turn, after the replies
	// to the frames read before it (end), not by the reader as soon as
	// it reads it: gorilla would then refuse those replies.
	c.ws.SetCloseHandler(func(int, string) error { return nil })
	if !c.handshake(ctx, ts) {
		return
	}
	go c.keepalive()
	in := make(chan frame, readAhead)
	stop := make(chan struct{})
	var reading sync.WaitGroup
	reading.Go(func() { c.reader(ctx, in, stop) })
	defer func() {
		// Every return below has closed the connection, which ends a
		// read in progress; stop ends a reader waiting to hand a frame.
		c.closeWith(websocket.CloseNormalClosure, "")
		close(stop)
		reading.Wait()
		for { // frames read but never handled give their slots back
			select {
			case f := <-in:
				if f.release != nil {
					f.release()
				}
				continue
			default:
			}
			break
		}
	}()
	for {
		var f frame
		select {
		case f = <-in:
		default:
			// Nothing to answer at once: once the frames that came with
			// the request are all answered (drained, nothing in), what
			// is held leaves (a nil drained never fires).
			select {
			case f = <-in:
			case <-c.drained:
				select {
				case f = <-in: // handed over just before: answered first
				default:
					c.release()
					continue
				}
			case <-c.s.draining:
				c.drain(ctx, in)
				return
			}
		}
		if !c.handle(ctx, &f) {
			return
		}
	}
}

// handle answers one frame; false when the connection ended.
func (c *conn) handle(ctx context.Context, f *frame) bool {
	if f.release != nil {
		defer f.release()
	}
	select {
	case <-c.done: // closed meanwhile (revoked, shutting down)
		return false
	default:
	}
	if f.m == nil {
		c.end(f)
		return false
	}
	if c.drop > 0 {
		// Sent with the Open before the agent knew the hub's mark, and
		// not taken (open): the agent sends them again.
		c.drop--
		return true
	}
	switch m := f.m.(type) {
	case *wire.Push:
		return c.push(ctx, m, f.batch, f.size)
	case *wire.Pull:
		leave, err := c.s.reads.enter(c.done, c.s.opt.ReadWait)
		if err != nil {
			return c.busy(err)
		}
		defer leave()
		return c.pull(ctx, m)
	default:
		c.fail(CloseMalformed, wire.CodeMalformed, fmt.Sprintf("unexpected message type %d", m.Type()))
		return false
	}
}

// drain answers the frames the reader has already handed over — the
// agent's batches in flight — then closes with "going away" (Shutdown).
func (c *conn) drain(ctx context.Context, in <-chan frame) {
	for {
		select {
		case f := <-in:
			if !c.handle(ctx, &f) {
				return
			}
		default:
			c.closeWith(websocket.CloseGoingAway, "hub shutting down")
			return
		}
	}
}

// busy tells the agent to come back later when err is a refusal of the
// gate (errBusy), with how long to wait; errGone needs no answer.
func (c *conn) busy(err error) bool {
	var b *errBusy
	if !errors.As(err, &b) {
		return false
	}
	secs := int(b.retry / time.Second)
	e := &wire.Error{Code: wire.CodeBusy, Message: fmt.Sprintf("occupé, réessayez dans %d s", secs)}
	if c.proto >= 4 {
		e.RetryAfter = uint32(b.retry / time.Millisecond)
	}
	c.s.log.Info("hub busy: agent told to come back", "device", c.deviceID(), "retry", b.retry)
	c.failWith(websocket.CloseTryAgainLater, e)
	return false
}

// handshake authenticates the connection; false when it ended.
func (c *conn) handshake(ctx context.Context, ts *tls.ConnectionState) bool {
	first, _, err := c.read(15 * time.Second)
	if err != nil {
		return false
	}
	if _, ok := first.(*wire.Open); !ok {
		c.release() // a Hello or an Enroll waits for each answer
	}
	switch m := first.(type) {
	case *wire.Enroll:
		c.enroll(ctx, m)
		return false
	case *wire.Hello:
		return c.authenticate(ctx, m)
	case *wire.Open:
		return c.open(ctx, m, ts)
	}
	c.fail(CloseMalformed, wire.CodeMalformed, fmt.Sprintf("first message must be Open, Hello or Enroll, got type %d", first.Type()))
	return false
}

func (c *conn) keepalive() {
	t := time.NewTicker(c.s.opt.PingEvery)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
				return
			}
		}
	}
}

// TokenHash is how enrollment tokens are stored.
func TokenHash(token []byte) [32]byte { return sha256.Sum256(token) }

func (c *conn) enroll(ctx context.Context, m *wire.Enroll) {
	if m.Proto < wire.MinProtocol || m.Proto > wire.ProtocolVersion {
		c.fail(CloseUpgrade, wire.CodeProtocolTooOld, upgradeMsg(m.Proto))
		return
	}
	if len(m.DeviceKey) != ed25519.PublicKeySize || len(m.PushKey) != ed25519.PublicKeySize || m.Device == "" {
		c.fail(CloseMalformed, wire.CodeMalformed, "enrollment needs a device id and two Ed25519 public keys")
		return
	}
	d, err := c.s.store.Enroll(ctx, TokenHash(m.Token), store.Device{
		ID: m.Device, DeviceKey: m.DeviceKey, PushKey: m.PushKey, AgentVersion: m.AgentVersion,
	}, c.s.opt.Now())
	if err != nil {
		code := wire.CodeBadToken
		switch {
		case errors.Is(err, store.ErrTokenUsed):
			code = wire.CodeTokenUsed
		case errors.Is(err, store.ErrTokenExpired):
			code = wire.CodeTokenExpired
		case errors.Is(err, store.ErrBadToken), errors.Is(err, store.ErrNameTaken):
		default:
			c.s.log.Error("enrollment failed", "err", err)
			c.fail(CloseInternal, wire.CodeInternal, "internal error")
			return
		}
		c.fail(CloseUnauthorized, code, err.Error())
		return
	}
	c.s.log.Info("device enrolled", "device", d.ID, "name", d.Name, "team", d.Team)
	if err := c.send(&wire.Enrolled{Name: d.Name, Team: d.Team, HubKey: c.s.opt.HubKey}); err == nil {
		c.closeWith(websocket.CloseNormalClosure, "enrolled")
	}
}

// push applies the changes of p, converted by the reader, records those
// it refuses (the reader's, and those without a consent, checked now that
// the batches before are applied), and acks them.
func (c *conn) push(ctx context.Context, p *wire.Push, b pushed, size int) bool {
	<-c.seen // the handshake's bookkeeping first (authenticate)
	leave, err := c.s.writes.enter(c.done, c.s.opt.WriteWait)
	if err != nil {
		return c.busy(err)
	}
	defer leave()
	out, err := applyPush(ctx, c.s.store, c.device, c.proto, c.hwm, b, size, c.s.opt.Now(), nil)
	leave() // the store's part is done: the ack is written outside the gate
	if errors.Is(err, store.ErrGap) {
		c.fail(CloseMalformed, wire.CodeOutOfOrder, err.Error())
		return false
	}
	if errors.Is(err, store.ErrConsentsMoved) {
		// Consents written without pause beside the batch (consentAttempts
		// times): the agent comes back once they are.
		c.s.log.Warn("batch put off: consents written meanwhile", "device", c.device.ID, "batch", p.Batch)
		return c.busy(&errBusy{retry: time.Second})
	}
	if err != nil {
		c.s.log.Error("applying batch", "device", c.device.ID, "batch", p.Batch, "err", err)
		c.fail(CloseInternal, wire.CodeInternal, "internal error")
		return false
	}
	hwm, applied, rejected := out.HWM, out.Applied, out.Rejected
	c.hwm = max(c.hwm, hwm)
	ack := &wire.Ack{Batch: p.Batch, HWM: hwm, Applied: uint32(applied)}
	for _, r := range rejected {
		c.s.log.Warn("change refused", "device", c.device.ID, "seq", r.Seq, "kind", r.Kind, "code", r.Code, "reason", r.Reason)
		ack.Rejected = append(ack.Rejected, WireRejection(r))
	}
	c.noteContact()
	c.s.log.Debug("batch applied", "device", c.device.ID, "batch", p.Batch, "changes", len(b.cs), "applied", applied,
		"rejected", len(rejected), "hwm", hwm, "bytes", size)
	return c.reply(ack)
}

// reply sends m; a failure ends the connection through the close path.
func (c *conn) reply(m wire.Message) bool { return c.replyDeflated(m, false) }

// replyDeflated is reply, compressed when deflate is set (sendDeflated).
func (c *conn) replyDeflated(m wire.Message, deflate bool) bool {
	err := c.sendDeflated(m, deflate)
	if err == nil {
		return true
	}
	var ee *encodeError
	if errors.As(err, &ee) {
		c.s.log.Error("encoding a reply", "device", c.deviceID(), "err", err)
		c.fail(CloseInternal, wire.CodeInternal, "internal error")
		return false
	}
	c.s.log.Info("connection lost while replying", "device", c.deviceID(), "err", err)
	c.closeWith(websocket.CloseNormalClosure, "")
	return false
}

func (c *conn) pull(ctx context.Context, p *wire.Pull) bool {
	if c.mode != wire.ModeFull {
		c.fail(CloseRevoked, wire.CodeForbidden, "pull needs a full session (unlocked agent)")
		return false
	}
	budget := int(p.Budget)
	if budget <= 0 || budget > c.s.opt.MaxPull {
		budget = c.s.opt.MaxPull
	}
	cursor, reset, err := c.checkCursor(ctx, p)
	if err != nil {
		c.s.log.Error("checking a pull cursor", "device", c.device.ID, "err", err)
		c.fail(CloseInternal, wire.CodeInternal, "internal error")
		return false
	}
	exclude := c.device.ID
	if p.Own {
		exclude = "" // recovery: the agent lost some of its own changes
	}
	out, err := Page(ctx, c.s.store, c.device.Team, exclude, cursor, budget)
	if err != nil {
		c.s.log.Error("reading a pull page", "device", c.device.ID, "err", err)
		c.fail(CloseInternal, wire.CodeInternal, "internal error")
		return false
	}
	out.Reset = reset
	more := out.More
	if c.proto < 2 {
		out.Tag = nil // a version 1 agent decodes no tag
	}
	c.noteContact()
	at := c.s.opt.Now()
	if !c.replyDeflated(out, p.Deflate && c.proto >= wire.OpenProtocol) {
		return false
	}
	if !more {
		// Recorded once the page is on its way, not before: the agent's
		// last answer of a round waits for no store write (nor for the
		// handshake's bookkeeping, queued behind other agents' batches on
		// a busy hub). It is bookkeeping for the dashboard: a failure is
		// logged. The time is the page's.
		<-c.seen
		if err := c.s.store.MarkSynced(ctx, c.device.ID, at); err != nil {
			c.s.log.Error("recording sync", "device", c.device.ID, "err", err)
		}
	}
	return true
}

// checkCursor returns the cursor to serve p from. A version 2 agent's
// cursor comes with the tag of the log entry it points at: when this hub's
// log holds no such entry, or another change there (the hub was restored
// from a backup, then logged new work at those numbers), the pull starts
// again from 0 and the reply says so (reset). Applying changes is
// idempotent, so the agent loses nothing and gets the changes it had
// missed. A version 1 agent sends no tag and is served as before.
func (c *conn) checkCursor(ctx context.Context, p *wire.Pull) (cursor uint64, reset bool, err error) {
	if c.proto < 2 || p.Cursor == 0 {
		return p.Cursor, false, nil
	}
	tag, err := c.s.store.LogTag(ctx, p.Cursor)
	if err != nil {
		return 0, false, err
	}
	if tag != nil && bytes.Equal(tag, p.Tag) {
		return p.Cursor, false, nil
	}
	c.s.log.Warn("pull cursor not in this hub's log (hub restored?): starting the device again from 0",
		"device", c.device.ID, "cursor", p.Cursor)
	return 0, true, nil
}

// encodeError marks a reply that could not be encoded (a bug, not a
// network failure).
type encodeError struct{ err error }

func (e *encodeError) Error() string { return e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }
