package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The TLS session the agent last held with its hub (docs/SECURITY.md,
// "TLS session resumption"): `agent sync` is one process per sync, so a
// session ticket kept in memory dies with it; kept here, the next
// process resumes the session and the hub does not send its certificate
// again — fewer bytes on a slow link. It is a session secret, not a
// credential: the hub admits a device on the Open it signs with its
// device key, never on a resumed session. It is sealed under the data
// key all the same (a resumed session's keys derive from it), so it is
// read and written only while the store is unlocked.

// Meta keys of the TLS session.
const (
	metaTLSName    = "tls_session_name" // the session's cache key (hub name and certificate), in clear
	metaTLSSession = "tls_session"      // the session (ticket and state), sealed under the data key
)

func tlsSessionAD(name string) []byte { return []byte("tls_session\x00" + name) }

// TLSSession returns the TLS session recorded for name (the sync
// client's cache key), nil when there is none for that name, or the
// store is locked.
func (s *Store) TLSSession(ctx context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return nil, nil
	}
	var got string
	var sealed []byte
	err := s.r.QueryRowContext(ctx, `SELECT CAST(n.value AS TEXT), t.value FROM meta n JOIN meta t ON t.key = ? WHERE n.key = ?`,
		metaTLSSession, metaTLSName).Scan(&got, &sealed)
	if errors.Is(err, sql.ErrNoRows) || err == nil && got != name {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the TLS session: %w", err)
	}
	b, err := s.key.Open(nil, sealed, tlsSessionAD(name))
	if err != nil {
		return nil, fmt.Errorf("opening the TLS session: %w", err)
	}
	return b, nil
}

// SetTLSSession records session for name, sealed, in place of the one
// held; a nil session forgets it. A locked store records nothing
// (ErrLocked).
func (s *Store) SetTLSSession(ctx context.Context, name string, session []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return ErrLocked
	}
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if session == nil {
		if _, err := w.ExecContext(ctx, `DELETE FROM meta WHERE key IN (?, ?)`, metaTLSName, metaTLSSession); err != nil {
			return fmt.Errorf("forgetting the TLS session: %w", err)
		}
		return nil
	}
	sealed, err := s.key.Seal(nil, session, tlsSessionAD(name))
	if err != nil {
		return err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := setMeta(ctx, tx, map[string]any{metaTLSName: name, metaTLSSession: sealed}); err != nil {
		return fmt.Errorf("recording the TLS session: %w", err)
	}
	return tx.Commit()
}
