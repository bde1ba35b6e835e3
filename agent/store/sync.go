package store

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/merge"
	"numeribus/internal/sqlitex"
)

// ErrNotEnrolled is returned by sync operations before `agent enroll`.
var ErrNotEnrolled = apperr.New(apperr.State, "this agent is not enrolled with a hub (run `agent enroll CODE`)")

// Hub is what the agent knows of its hub, readable while locked.
type Hub struct {
	URL             string
	CertFingerprint []byte // SHA-256 of the hub's TLS certificate (pinned)
	HubKey          []byte // hub's X25519 public key, for sealed bodies
	DeviceName      string
	Team            string
	EnrolledAt      string
	PushKey         ed25519.PrivateKey // usable while locked: push only
}

var deviceKeyAD = []byte("hub\x00device_key")

// Enroll records the hub and this device's keys, and seals the pending
// changes to the hub. The device key is sealed with the data key, so the
// store must be unlocked.
func (s *Store) Enroll(ctx context.Context, h Hub, deviceKey ed25519.PrivateKey) error {
	_, err := s.write(ctx, func(w *writeTx) error {
		sealed, err := s.key.Seal(nil, deviceKey.Seed(), deviceKeyAD)
		if err != nil {
			return err
		}
		_, err = w.tx.ExecContext(ctx, `INSERT INTO hub(id, url, cert_fingerprint, hub_key, device_name, team, device_key, push_key, enrolled_at)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`, h.URL, append([]byte{}, h.CertFingerprint...), h.HubKey, h.DeviceName, h.Team, sealed,
			h.PushKey.Seed(), time.Now().UTC().Format(time.RFC3339))
		if err != nil {
			return fmt.Errorf("recording enrollment: %w", err)
		}
		w.s.hubKnown, w.s.env = false, nil
		return w.sealPendingForHub()
	})
	return err
}

// Hub returns the hub this device is enrolled with, or ErrNotEnrolled.
func (s *Store) Hub(ctx context.Context) (Hub, error) {
	var h Hub
	var push []byte
	err := s.r.QueryRowContext(ctx, `SELECT url, cert_fingerprint, coalesce(hub_key, x''), device_name, team, push_key, enrolled_at FROM hub WHERE id = 1`).
		Scan(&h.URL, &h.CertFingerprint, &h.HubKey, &h.DeviceName, &h.Team, &push, &h.EnrolledAt)
	if errors.Is(err, sql.ErrNoRows) {
		return h, ErrNotEnrolled
	}
	if err != nil {
		return h, fmt.Errorf("reading hub: %w", err)
	}
	if len(push) != ed25519.SeedSize {
		return h, errors.New("hub: push key is corrupted")
	}
	h.PushKey = ed25519.NewKeyFromSeed(push)
	return h, nil
}

// DeviceKey returns the device's signing key for full sessions.
func (s *Store) DeviceKey(ctx context.Context) (ed25519.PrivateKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return nil, ErrLocked
	}
	var sealed []byte
	err := s.r.QueryRowContext(ctx, `SELECT device_key FROM hub WHERE id = 1`).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("reading device key: %w", err)
	}
	seed, err := s.key.Open(nil, sealed, deviceKeyAD)
	if err != nil {
		return nil, fmt.Errorf("opening device key: %w", err)
	}
	defer clear(seed)
	return ed25519.NewKeyFromSeed(seed), nil
}

// Sync state kept in meta.
const (
	metaPullCursor  = "pull_cursor"
	metaLastSync    = "last_sync"
	metaLastError   = "last_sync_error"
	metaClockOffset = "clock_offset_ms"
	metaLastContact = "last_contact"
)

// SyncState is the agent's view of its sync, readable while locked.
type SyncState struct {
	PullCursor    uint64 `json:"pull_cursor"`
	LastSync      string `json:"last_sync,omitempty"`    // RFC 3339: last complete round
	LastContact   string `json:"last_contact,omitempty"` // last authenticated connection
	LastError     string `json:"last_error,omitempty"`
	ClockOffsetMs int64  `json:"clock_offset_ms"` // hub − agent, at the last connection
	PullTag       []byte `json:"-"`               // the hub's tag of the pull cursor
	// Recovering: the store went back in time, and pulls fetch this
	// device's own changes back from the hub until one goes through.
	Recovering bool `json:"recovering,omitempty"`
}

// SyncState reads the sync state.
func (s *Store) SyncState(ctx context.Context) (SyncState, error) {
	var st SyncState
	rows, err := s.r.QueryContext(ctx, `SELECT key, CAST(value AS TEXT) FROM meta WHERE key IN (?, ?, ?, ?, ?, ?, ?)`,
		metaPullCursor, metaLastSync, metaLastError, metaClockOffset, metaLastContact, metaPullTag, metaPullOwn)
	if err != nil {
		return st, fmt.Errorf("reading sync state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return st, err
		}
		switch k {
		case metaPullCursor:
			st.PullCursor, _ = strconv.ParseUint(v, 10, 64)
		case metaLastSync:
			st.LastSync = v
		case metaLastError:
			st.LastError = v
		case metaClockOffset:
			st.ClockOffsetMs, _ = strconv.ParseInt(v, 10, 64)
		case metaLastContact:
			st.LastContact = v
		case metaPullTag:
			st.PullTag = []byte(v)
		case metaPullOwn:
			st.Recovering = v == "1"
		}
	}
	return st, rows.Err()
}

func setMeta(ctx context.Context, db execer, kv map[string]any) error {
	for k, v := range kv {
		if _, err := db.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, k, v); err != nil {
			return fmt.Errorf("writing %s: %w", k, err)
		}
	}
	return nil
}

// writer returns the writer connection, opening it if the store is
// locked: sync bookkeeping (acks, errors, contact times) is clear
// metadata that a locked agent may record.
func (s *Store) writer(ctx context.Context) (*sql.DB, error) {
	if s.w != nil {
		return s.w, nil
	}
	w, err := sqlitex.OpenWriter(s.path)
	if err != nil {
		return nil, err
	}
	if v, err := sqlitex.Version(ctx, w); err == nil && v > 0 && v < len(s.mig) {
		s.backupBeforeMigration(ctx, v)
	}
	if _, err := sqlitex.Migrate(ctx, w, s.mig); err != nil {
		w.Close()
		return nil, fmt.Errorf("upgrading store: %w", err)
	}
	s.w = w
	return w, nil
}

// RecordContact records an authenticated connection and the clock offset
// the hub measured.
func (s *Store) RecordContact(ctx context.Context, at time.Time, offsetMs int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	return setMeta(ctx, w, map[string]any{metaLastContact: at.UTC().Format(time.RFC3339), metaClockOffset: offsetMs})
}

// RecordSync records the end of a round: at is set on success, errMsg
// (one line, no personal data) on failure.
func (s *Store) RecordSync(ctx context.Context, at time.Time, errMsg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	kv := map[string]any{metaLastError: errMsg}
	if errMsg == "" {
		kv[metaLastSync] = at.UTC().Format(time.RFC3339)
	}
	return setMeta(ctx, w, kv)
}

// ApplyRemote merges changes pulled from the hub (made by other devices of
// the team, or its own during a recovery) in one transaction, with the
// cursor they end at and the hub's tag of that cursor: a crash leaves
// either all or none. They do not enter this device's outbox. An erase
// also scrubs this device's own logged changes of that record.
//
// A change whose fields do not decode as its kind (unknown field numbers,
// values of the wrong type), or stamped beyond the clock's bound
// (hlc.MaxAhead), is skipped, logged without its values, and counted in
// skipped: the rest of the page is applied.
func (s *Store) ApplyRemote(ctx context.Context, cs []change.Change, cursor uint64, tag []byte) (skipped int, err error) {
	_, err = s.write(ctx, func(w *writeTx) error {
		skipped = 0 // a retried transaction counts again
		bound := w.s.clock.Bound()
		for i := range cs {
			c := &cs[i]
			if err := c.CheckFields(); err != nil {
				// One bad record from a teammate (or a hostile device) must
				// not stop the others: it is skipped and reported.
				w.s.log.Warn("pulled change that does not decode skipped", "kind", c.Kind, "id", c.ID, "device", c.Device, "err", err)
				skipped++
				continue
			}
			if c.HLC > bound {
				// Stamped far ahead (a hostile device, or a change the hub
				// logged before it bounded stamps): applied, it would win
				// every later edit of its fields and drag this clock along.
				w.s.log.Warn("pulled change stamped beyond the clock bound skipped", "kind", c.Kind, "id", c.ID, "device", c.Device,
					"stamp", c.HLC.String(), "bound", bound.String())
				skipped++
				continue
			}
			st, k, found, err := w.load(c.ID)
			if err != nil {
				return err
			}
			if found && k != c.Kind {
				w.s.log.Warn("pulled change for a record of another kind ignored", "kind", c.Kind, "stored", k)
				continue
			}
			if !found {
				st = merge.NewState()
			}
			if c.Device == w.s.device {
				if err := w.relog(c); err != nil {
					return err
				}
			}
			if !merge.Apply(st, c.Kind, c) && found {
				continue
			}
			if err := w.saveState(c.Kind, c.ID, st); err != nil {
				return err
			}
			w.s.clock.Observe(c.HLC)
			w.kinds[c.ID] = c.Kind
			if c.Op == change.OpErase {
				w.erased = append(w.erased, c.ID)
			}
			if c.Kind == domain.KindConsent {
				w.s.consents = nil
			}
		}
		if err := w.scrubLog(); err != nil {
			return err
		}
		if err := setMeta(w.ctx, w.tx, map[string]any{metaPullCursor: cursor, metaPullTag: append([]byte{}, tag...)}); err != nil {
			return err
		}
		w.clockMoved = true
		return nil
	})
	return skipped, err
}

// relog puts back in the log a change of this device that the hub gave
// back (a recovery after a restore, Pull.Own) at its own number, unless
// the log holds that number: the log stays without holes, and if the hub
// goes back too, the change can be sent to it again. It counts as
// acknowledged (the hub had it); sealed like any change.
func (w *writeTx) relog(c *change.Change) error {
	if c.Seq == 0 || c.Seq > 1<<62 {
		return nil
	}
	raw := c.Fields.Encode()
	defer clear(raw)
	body, err := w.s.key.Seal(nil, raw, changeAD(c.Kind, c.ID, c.Seq))
	if err != nil {
		return err
	}
	if _, err := w.tx.ExecContext(w.ctx, `INSERT OR IGNORE INTO changes(seq, hlc, kind, record_id, op, body) VALUES (?, ?, ?, ?, ?, ?)`,
		int64(c.Seq), int64(c.HLC), string(c.Kind), c.ID[:], int(c.Op), body); err != nil {
		return fmt.Errorf("logging change %d given back by the hub: %w", c.Seq, err)
	}
	return nil
}

// EndPullRecovery records that a pull including this device's own changes
// went through to the end (see Renumber).
func (s *Store) EndPullRecovery(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	return setMeta(ctx, w, map[string]any{metaPullOwn: "0"})
}

// ClockOffset returns the correction the clock currently applies.
func (s *Store) ClockOffset() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clock == nil {
		return 0
	}
	return s.clock.Offset()
}

// RestampPending makes offset (hub time − agent wall time) the clock's
// correction, and moves the stamps of this device's unsent changes by the
// difference with the correction applied so far. A
// laptop whose clock was a year off while offline thus sends its work
// stamped with real time, and converges with the others exactly as if its
// clock had been right (the relative order of its own changes is kept).
func (s *Store) RestampPending(ctx context.Context, offset time.Duration) (int, error) {
	n := 0
	_, err := s.write(ctx, func(w *writeTx) error {
		shift := int64((offset-w.s.clock.Offset())/time.Millisecond) << hlc.LogicalBits
		var acked uint64
		if err := w.tx.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?`, metaAckedSeq).Scan(&acked); err != nil {
			return fmt.Errorf("reading acked seq: %w", err)
		}
		rows, err := w.tx.QueryContext(ctx, `SELECT seq, hlc, record_id FROM changes WHERE seq > ? ORDER BY seq`, acked)
		if err != nil {
			return fmt.Errorf("reading outbox: %w", err)
		}
		type pend struct {
			seq uint64
			ts  hlc.Timestamp
			id  [16]byte
		}
		var ps []pend
		for rows.Next() {
			var p pend
			var ts int64
			var idb []byte
			if err := rows.Scan(&p.seq, &ts, &idb); err != nil {
				rows.Close()
				return err
			}
			p.ts = hlc.Timestamp(ts)
			copy(p.id[:], idb)
			ps = append(ps, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		moved := map[[16]byte]map[hlc.Timestamp]hlc.Timestamp{}
		var maxTS hlc.Timestamp
		for _, p := range ps {
			nts := hlc.Timestamp(max(int64(p.ts)+shift, 1))
			if _, err := w.tx.ExecContext(ctx, `UPDATE changes SET hlc = ? WHERE seq = ?`, int64(nts), p.seq); err != nil {
				return fmt.Errorf("restamping change %d: %w", p.seq, err)
			}
			if moved[p.id] == nil {
				moved[p.id] = map[hlc.Timestamp]hlc.Timestamp{}
			}
			moved[p.id][p.ts] = nts
			maxTS = max(maxTS, nts)
			n++
		}
		me := w.s.device
		for id, m := range moved {
			st, k, found, err := w.load(id)
			if err != nil || !found {
				return err
			}
			fix := func(x *hlc.Stamp) {
				if x.Device == me {
					if nts, ok := m[x.TS]; ok {
						x.TS = nts
					}
				}
			}
			for f, c := range st.Clocks {
				fix(&c)
				st.Clocks[f] = c
			}
			fix(&st.Deleted)
			fix(&st.Erased)
			fix(&st.Last)
			if err := w.saveState(k, id, st); err != nil {
				return err
			}
		}
		// From now on the clock reads corrected time; it restarts from
		// the corrected stamps, not from the skewed ones.
		w.s.clock = hlc.New(w.s.opts.Wall, maxTS)
		w.s.clock.SetOffset(offset)
		w.clockMoved = true
		return setMeta(ctx, w.tx, map[string]any{metaClockApplied: int64(offset / time.Millisecond)})
	})
	return n, err
}
