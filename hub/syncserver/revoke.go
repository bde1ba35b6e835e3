package syncserver

import (
	"context"
	"time"

	"numeribus/internal/wire"
)

// RevocationEvery is how often `hub serve` looks for revoked devices: a
// revocation cuts a live connection within this period and one query,
// under a second. One query a tick for every connection of the instance,
// so the period costs the database nothing that grows with the agents.
const RevocationEvery = 500 * time.Millisecond

// watchRevocations cuts the connections of revoked devices at each tick
// until ctx ends or tick is closed. A failing check is logged once, then
// its recovery.
func (s *Server) watchRevocations(ctx context.Context, tick <-chan time.Time) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-tick:
			if !ok {
				return
			}
		}
		err := s.cutRevoked(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.log.Warn("looking for revoked devices failed: their live connections stay open until it works again", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("looking for revoked devices works again")
			failing = false
		}
	}
}

// cutRevoked closes the live connections of revoked devices: one store
// query whatever their number, none when no device is connected.
func (s *Server) cutRevoked(ctx context.Context) error {
	live := s.liveByDevice()
	if len(live) == 0 {
		return nil
	}
	revoked, err := s.store.RevokedDevices(ctx)
	if err != nil {
		return err
	}
	for _, id := range revoked {
		for _, c := range live[id] {
			c.fail(CloseRevoked, wire.CodeRevoked, "device revoked")
		}
	}
	return nil
}

// liveByDevice returns the authenticated connections by device id.
func (s *Server) liveByDevice() map[string][]*conn {
	s.mu.Lock()
	all := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	live := make(map[string][]*conn, len(all))
	for _, c := range all { // outside s.mu: deviceID takes the conn's lock
		if id := c.deviceID(); id != "" {
			live[id] = append(live[id], c)
		}
	}
	return live
}
