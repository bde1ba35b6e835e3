package release

import (
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
)

// PEM block types of the key files `hub release keygen` writes. The
// private key file holds the 32-byte seed; it stays with the operator,
// offline (docs/SECURITY.md, "Agent releases").
const (
	privateBlock = "NUMERIBUS RELEASE PRIVATE KEY"
	publicBlock  = "NUMERIBUS RELEASE PUBLIC KEY"
)

// MarshalPrivateKey is the private key file's content.
func MarshalPrivateKey(k ed25519.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: privateBlock, Bytes: k.Seed()})
}

// MarshalPublicKey is the public key file's content.
func MarshalPublicKey(k ed25519.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: publicBlock, Headers: map[string]string{"Id": KeyID(k)}, Bytes: k})
}

// ParsePrivateKey reads a private key file.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	p, _ := pem.Decode(b)
	switch {
	case p == nil:
		return nil, fmt.Errorf("not a release key file (no PEM block)")
	case p.Type == publicBlock:
		return nil, fmt.Errorf("this is the public key: signing needs the private key file")
	case p.Type != privateBlock:
		return nil, fmt.Errorf("not a release private key (PEM block %q)", p.Type)
	case len(p.Bytes) != ed25519.SeedSize:
		return nil, fmt.Errorf("release private key of %d bytes, want %d", len(p.Bytes), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(p.Bytes), nil
}

// ParsePublicKey reads a public key file.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	p, _ := pem.Decode(b)
	switch {
	case p == nil:
		return nil, fmt.Errorf("not a release key file (no PEM block)")
	case p.Type != publicBlock:
		return nil, fmt.Errorf("not a release public key (PEM block %q)", p.Type)
	case len(p.Bytes) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("release public key of %d bytes, want %d", len(p.Bytes), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(p.Bytes), nil
}
