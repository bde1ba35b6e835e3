package certs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"numeribus/internal/seal"
)

// EnvelopeFile holds the hub's X25519 private key: agents seal outbox
// bodies to its public half so that they can push while locked.
const EnvelopeFile = "envelope.key"

// LoadOrCreateEnvelopeKey loads DIR/envelope.key, creating it on first
// start.
func LoadOrCreateEnvelopeKey(dir string) (*seal.HubKey, error) {
	p := filepath.Join(dir, EnvelopeFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	k, err := seal.HubKeyFrom(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return k, nil
}
