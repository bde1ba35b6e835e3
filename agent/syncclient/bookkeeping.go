package syncclient

import "context"

// A round's bookkeeping — the last contact with the hub and the clock
// offset it measured, the round's outcome — is for `agent status` and the
// UI, not what the sync is for. It is written after the round's data, so
// that on a nearly full disk what room is left goes to the acks (the one
// write sending needs), and a failure to write it fails nothing: it is
// logged, and the round stands. An ack that cannot be written still fails
// the round; the next one sends again from what the store holds, and the
// hub ignores what it already has.

// noted logs a bookkeeping write that failed (the error names a meta key,
// never personal data).
func (c *Client) noted(what string, err error) {
	if err != nil {
		c.Log.Warn("sync bookkeeping not recorded", "what", what, "err", err)
	}
}

// recordContact records, after its round, the session's authenticated
// contact with the hub.
func (c *Client) recordContact(ctx context.Context, s *session) {
	c.noted("last contact", c.Store.RecordContact(ctx, c.Now(), s.welcome.ClockOffset))
	c.saveSessions(ctx)
}
