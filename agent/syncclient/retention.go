package syncclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/retention"
	"numeribus/internal/tlspin"
	"numeribus/internal/wire"
)

// Retention (docs/SECURITY.md): the hub sets how long personal data is
// kept. A hub of protocol 5 gives the periods in its Welcome
// (wire.Welcome.Retention), inside the session the agent authenticated
// over TLS pinned to the certificate of its enrollment, so that only its
// hub can shorten or lengthen them. An older hub serves them at
// retention.Path, on the address and the certificate of its sync
// endpoint: the agent reads them there, at most hourly, on a connection
// of its own beside the round (a second TCP and TLS handshake, which a
// slow link cannot afford: hence the Welcome). Either way the agent
// records them after a round that went through and purges what they say
// is due, with the erasure's machinery: the purge's erase changes are
// then pushed in the same session. A hub that gives neither leaves the
// agent on the policy it holds (the defaults at first).
//
// An agent out of coverage still purges: Run checks at every turn of its
// loop (when its clock can be trusted: purgeOffline), and the erasures
// wait in the outbox for the next connection.

// PolicyEvery is how often the policy is read again.
const PolicyEvery = time.Hour

// maxPolicyBytes bounds the policy's answer: a few kinds and numbers.
const maxPolicyBytes = 16 << 10

// policyURL returns where the hub whose sync endpoint is target serves
// its policy: https for wss, http for ws (loopback demos and tests).
func policyURL(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("hub address %q: %w", target, err)
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	case "ws":
		u.Scheme = "http"
	default:
		return "", fmt.Errorf("hub address %q: not a ws:// or wss:// address", target)
	}
	u.Path, u.RawQuery, u.Fragment = retention.Path, "", ""
	return u.String(), nil
}

// fetchPolicy reads the hub's retention policy.
func (c *Client) fetchPolicy(ctx context.Context) (retention.Policy, error) {
	h, err := c.Store.Hub(ctx)
	if err != nil {
		return retention.Policy{}, err
	}
	target := h.URL
	if c.URL != "" {
		target = c.URL
	}
	if _, err := dialURL(target, c.Insecure); err != nil {
		return retention.Policy{}, err
	}
	u, err := policyURL(target)
	if err != nil {
		return retention.Policy{}, err
	}
	hc := &http.Client{Timeout: c.HandshakeTimeout, Transport: &http.Transport{TLSClientConfig: c.tlsConfig(h.CertFingerprint), Proxy: nil}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return retention.Policy{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		var mm *tlspin.MismatchError
		if errors.As(err, &mm) {
			return retention.Policy{}, mm
		}
		return retention.Policy{}, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return retention.Policy{}, fmt.Errorf("retention policy: the hub answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicyBytes+1))
	if err != nil {
		return retention.Policy{}, fmt.Errorf("retention policy: %w", err)
	}
	if len(b) > maxPolicyBytes {
		return retention.Policy{}, errors.New("retention policy: answer too large")
	}
	var p retention.Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return retention.Policy{}, err
	}
	return p, nil
}

// policyRead is a read of the hub's policy running beside a round: the
// policy is recorded after the round's data (bookkeeping.go: on a nearly
// full disk, what room is left goes to the acks).
type policyRead struct {
	done chan struct{}
	p    retention.Policy
	err  error
}

// policyWait is how long a round, its pull done, waits for the policy
// read it started to end: the read runs beside the round (a connection
// of its own: TCP, TLS, one request, as long as the round itself), so it
// has usually ended by then; a slower one is left, and tried again at the
// next round.
const policyWait = 2 * time.Second

// readPolicy starts reading the hub's policy beside the round, when the
// store last read it PolicyEvery ago or more (whichever process did:
// `agent sync` runs once and exits), and none is running; nil otherwise.
func (c *Client) readPolicy(ctx context.Context) *policyRead {
	at, err := c.Store.RetentionReadAt(ctx)
	if err != nil {
		c.noted("retention policy read", err)
		return nil
	}
	recent := func(t time.Time) bool { return !t.IsZero() && c.Now().Sub(t) < PolicyEvery && !c.Now().Before(t) }
	// Read lately, by any process; or tried lately by this one, answered
	// or not (a hub without the policy is not asked every 30 s).
	if recent(at) || recent(time.UnixMilli(c.policyTried.Load())) && c.policyTried.Load() != 0 {
		return nil
	}
	if !c.reading.CompareAndSwap(false, true) {
		return nil
	}
	c.policyTried.Store(c.Now().UnixMilli())
	r := &policyRead{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer c.reading.Store(false)
		r.p, r.err = c.fetchPolicy(ctx)
	}()
	return r
}

// retentionTag returns the tag of the policy st holds, which the Open
// carries: the hub leaves its policy out of the Welcome when it is that
// one (wire.Welcome.RetentionSame).
func retentionTag(ctx context.Context, st *store.Store) ([]byte, error) {
	p, err := st.Retention(ctx)
	if err != nil {
		return nil, err
	}
	periods := map[string]uint32{}
	for k, months := range p.Periods() {
		periods[k] = uint32(months)
	}
	return wire.RetentionTag(periods), nil
}

// policy returns the hub's policy for this round: the Welcome's (or the
// one held, when the Welcome says it is the same), or a read of
// /retention started beside the rest of the round when the hub did not
// give it (readPolicy: an older hub, at most hourly); nil when there is
// none to record.
func (s *session) policy(ctx context.Context) *policyRead {
	w := s.welcome.Retention
	if s.welcome.RetentionSame {
		// Recorded again after the round as read now: the hub said so.
		r := &policyRead{done: make(chan struct{})}
		close(r.done)
		r.p, r.err = s.c.Store.Retention(ctx)
		s.rep.RetentionSame = true
		return r
	}
	if len(w) == 0 {
		return s.c.readPolicy(ctx)
	}
	r := &policyRead{done: make(chan struct{})}
	close(r.done)
	periods := make(map[string]int, len(w))
	for k, m := range w {
		periods[k] = int(m)
	}
	r.p, r.err = retention.FromPeriods(periods)
	if r.err != nil {
		r.err = fmt.Errorf("the hub's welcome: %w", r.err)
	}
	return r
}

// retention runs after a round's pull: it records the policy read
// beside the round (pr, nil when none) if it came within policyWait, then
// purges if a purge is due and pushes the erasures at once. Neither a
// hub without the policy nor a failed purge fails the round: both are
// logged, and tried again later.
func (s *session) retention(ctx context.Context, pr *policyRead) error {
	c := s.c
	if pr != nil {
		select {
		case <-pr.done:
			if pr.err != nil {
				c.Log.Warn("retention policy not read from the hub; the one held applies", "err", pr.err)
			} else if changed, err := c.Store.SetRetention(ctx, pr.p, c.Now()); err != nil {
				c.Log.Warn("retention policy not recorded", "err", err)
			} else if changed {
				c.Log.Info("new retention policy from the hub")
			}
		case <-time.After(policyWait):
			c.Log.Info("retention policy still being read after the round: left for the next one")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The hub's time, as it measured this session's offset: a laptop's
	// clock set years ahead must not purge what is not due.
	now := c.Now().Add(time.Duration(s.welcome.ClockOffset) * time.Millisecond)
	if n := c.purgeAt(ctx, now); n > 0 {
		s.rep.Purged += n
		return s.push(ctx)
	}
	return nil
}

// purgeOffline purges between connections (Run), when the laptop's clock
// can be trusted: corrected by the offset the hub measured at the last
// contact, and neither before that contact nor more than a year after
// it. A laptop that never reached its hub, or whose clock jumped, waits
// for a connection: purging on a wrong clock would erase what is not due.
func (c *Client) purgeOffline(ctx context.Context) {
	if c.Store.Locked() {
		return
	}
	ss, err := c.Store.SyncState(ctx)
	if err != nil || ss.LastContact == "" {
		return
	}
	last, err := time.Parse(time.RFC3339, ss.LastContact)
	if err != nil {
		return
	}
	now := c.Now().Add(time.Duration(ss.ClockOffsetMs) * time.Millisecond)
	if now.Before(last.Add(-24*time.Hour)) || now.After(last.AddDate(1, 0, 0)) {
		c.Log.Warn("no purge out of coverage: the clock is not where the last contact with the hub left it",
			"last_contact", ss.LastContact)
		return
	}
	c.purgeAt(ctx, now)
}

// purgeAt erases what is due at now, if a purge is due and the store
// unlocked, and returns how many records it erased.
func (c *Client) purgeAt(ctx context.Context, now time.Time) int {
	if c.Store.Locked() {
		return 0
	}
	due, err := c.Store.PurgeDue(ctx, now)
	if err != nil || !due {
		c.noted("purge due", err)
		return 0
	}
	p, err := c.Store.PurgeExpired(ctx, now)
	if err != nil {
		c.Log.Warn("retention purge failed; tried again later", "err", err)
		return 0
	}
	return p.Records
}
