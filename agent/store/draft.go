package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/seal"
)

// Drafts: a form the mediator was filling when the agent locked (after
// inactivity) is kept, sealed, and given back after the unlock, so that
// nothing typed is lost and nothing typed lies in clear on the disk.
// While locked the data key is not in memory: a draft is sealed to the
// store's own X25519 public key, whose private key only the data key
// opens.

// Meta keys of the draft key pair.
const (
	metaDraftPub = "draft_pub" // X25519 public key, in clear
	metaDraftKey = "draft_key" // its private key, sealed under the data key
)

var draftKeyAD = []byte("drafts\x00key")

// Limits of drafts: a form is a few kilobytes; anything larger, or more
// of them, is not a mediator's typing.
const (
	MaxDraftBytes = 64 << 10
	MaxDrafts     = 20
)

// ErrNoDraftKey: the store was never unlocked since drafts exist, so it
// has no key to seal one to.
var ErrNoDraftKey = apperr.New(apperr.State, "no draft key yet: unlock the store once")

// Draft is a form kept across a lock.
type Draft struct {
	ID      int64
	Created time.Time
	Form    string              // the form's address
	Values  map[string][]string // its fields as posted
}

// ensureDraftKey makes the draft key pair on the first unlock; s.mu is
// held and s.key set.
func (s *Store) ensureDraftKey(ctx context.Context) error {
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	var n int
	if err := w.QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE key = ?`, metaDraftPub).Scan(&n); err != nil {
		return fmt.Errorf("reading the draft key: %w", err)
	}
	if n > 0 {
		return nil
	}
	k, err := seal.NewHubKey()
	if err != nil {
		return err
	}
	priv := k.Bytes()
	defer clear(priv)
	sealed, err := s.key.Seal(nil, priv, draftKeyAD)
	if err != nil {
		return err
	}
	return setMeta(ctx, w, map[string]any{metaDraftPub: k.Public(), metaDraftKey: sealed})
}

// SaveDraft keeps the fields of a form, sealed. It works locked.
func (s *Store) SaveDraft(ctx context.Context, form string, values map[string][]string, now time.Time) error {
	body, err := json.Marshal(values)
	if err != nil {
		return fmt.Errorf("encoding the draft: %w", err)
	}
	defer clear(body)
	if len(body) > MaxDraftBytes {
		return apperr.Errorf(apperr.TooLarge, "draft of %d bytes, the limit is %d", len(body), MaxDraftBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	var pub []byte
	err = w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaDraftPub).Scan(&pub)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoDraftKey
	}
	if err != nil {
		return fmt.Errorf("reading the draft key: %w", err)
	}
	env, err := seal.NewEnvelope(pub)
	if err != nil {
		return err
	}
	defer env.Key.Wipe()
	sealed, err := env.Key.Seal(nil, body, draftAD(form))
	if err != nil {
		return err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("saving the draft: %w", err)
	}
	defer tx.Rollback()
	// The oldest go first when too many are kept.
	if _, err := tx.ExecContext(ctx, `DELETE FROM drafts WHERE id NOT IN (SELECT id FROM drafts ORDER BY id DESC LIMIT ?)`, MaxDrafts-1); err != nil {
		return fmt.Errorf("saving the draft: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO drafts(created_at, form, epk, body) VALUES (?, ?, ?, ?)`,
		now.UTC().Format(time.RFC3339), form, env.EPK, sealed); err != nil {
		return fmt.Errorf("saving the draft: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("saving the draft: %w", err)
	}
	return nil
}

func draftAD(form string) []byte { return []byte("drafts\x00" + form) }

// Drafts returns the kept drafts, oldest first, opened: the store must be
// unlocked. A draft that does not open (damaged) is deleted.
func (s *Store) Drafts(ctx context.Context) ([]Draft, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return nil, ErrLocked
	}
	hk, err := s.draftKey(ctx)
	if err != nil || hk == nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, created_at, form, epk, body FROM drafts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading drafts: %w", err)
	}
	defer rows.Close()
	var out []Draft
	var bad []int64
	for rows.Next() {
		var (
			d         Draft
			at        string
			epk, body []byte
		)
		if err := rows.Scan(&d.ID, &at, &d.Form, &epk, &body); err != nil {
			return nil, fmt.Errorf("reading drafts: %w", err)
		}
		d.Created, _ = time.Parse(time.RFC3339, at)
		if err := openDraft(hk, epk, body, &d); err != nil {
			s.log.Warn("a draft that does not open was dropped", "draft", d.ID, "err", err)
			bad = append(bad, d.ID)
			continue
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range bad {
		if err := s.deleteDraftLocked(ctx, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func openDraft(hk *seal.HubKey, epk, body []byte, d *Draft) error {
	k, err := hk.Open(epk)
	if err != nil {
		return err
	}
	defer k.Wipe()
	raw, err := k.Open(nil, body, draftAD(d.Form))
	if err != nil {
		return err
	}
	defer clear(raw)
	return json.Unmarshal(raw, &d.Values)
}

// draftKey opens the draft private key, nil when there is none yet; s.mu
// is held and the store unlocked.
func (s *Store) draftKey(ctx context.Context) (*seal.HubKey, error) {
	var sealed []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaDraftKey).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the draft key: %w", err)
	}
	priv, err := s.key.Open(nil, sealed, draftKeyAD)
	if err != nil {
		return nil, fmt.Errorf("opening the draft key: %w", err)
	}
	defer clear(priv)
	return seal.HubKeyFrom(priv)
}

// DeleteDraft removes a draft: taken back, or abandoned. secure_delete
// overwrites its bytes.
func (s *Store) DeleteDraft(ctx context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteDraftLocked(ctx, id)
}

func (s *Store) deleteDraftLocked(ctx context.Context, id int64) error {
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := w.ExecContext(ctx, `DELETE FROM drafts WHERE id = ?`, id); err != nil {
		return fmt.Errorf("deleting draft %d: %w", id, err)
	}
	return nil
}
