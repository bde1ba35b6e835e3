package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"numeribus/internal/owneronly"
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
		k, err := seal.NewHubKey()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, k.Bytes(), 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		return k, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if err := owneronly.Files(p); err != nil { // one an earlier hub left looser
		return nil, err
	}
	k, err := seal.HubKeyFrom(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return k, nil
}
