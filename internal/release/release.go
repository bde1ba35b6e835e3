// Package release is what an agent release is and how it is signed. A
// fleet of laptops in vehicles is never updated by hand: the hub serves
// new agent binaries, and each agent installs one only when the
// operator's release key — an Ed25519 key kept offline, never on the hub
// — signed it. What is signed is a Manifest: the version, the operating
// system and architecture it was built for, the binary's size and its
// SHA-256. A stolen hub can serve any bytes, but no manifest the agents'
// pinned key verifies.
//
// The hub stores and serves releases (hub/releases), the agent checks and
// installs them (agent/update); both speak the JSON of Info and KeyInfo.
// No I/O here.
package release

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// MaxSize bounds a release binary: what the hub stores and an agent
// downloads. Today's agent is about 20 MB.
const MaxSize = 256 << 20

// Platforms an agent is built for (`make release`), as Go names them.
var (
	OSes   = []string{"windows", "linux", "darwin"}
	Arches = []string{"amd64", "386", "arm64", "arm"}
)

// Manifest is what the release key signs.
type Manifest struct {
	Version string
	OS      string
	Arch    string
	Size    int64
	SHA256  [sha256.Size]byte
}

// Problems with a manifest or its signature.
var (
	ErrBadSignature = errors.New("signature invalide : cette version n'a pas été signée par la clé de publication épinglée")
	ErrBadKey       = errors.New("clé de publication invalide")
)

// Check reports the first reason m cannot be a release: a development
// version, an unknown platform, an empty or oversized binary.
func (m Manifest) Check() error {
	if _, err := ParseVersion(m.Version); err != nil {
		return err
	}
	if !slices.Contains(OSes, m.OS) {
		return fmt.Errorf("système %q inconnu (un de %v)", m.OS, OSes)
	}
	if !slices.Contains(Arches, m.Arch) {
		return fmt.Errorf("architecture %q inconnue (une de %v)", m.Arch, Arches)
	}
	if m.Size <= 0 || m.Size > MaxSize {
		return fmt.Errorf("taille %d octets hors limites (1 à %d)", m.Size, MaxSize)
	}
	return nil
}

// Platform is "os/arch".
func (m Manifest) Platform() string { return m.OS + "/" + m.Arch }

// Message is the bytes the release key signs: a domain-separated line per
// field, so that a signature over anything else — another program's
// manifest, another field order — never verifies here.
func (m Manifest) Message() []byte {
	return fmt.Appendf(nil, "numeribus agent release v1\nversion=%s\nos=%s\narch=%s\nsize=%d\nsha256=%x\n",
		m.Version, m.OS, m.Arch, m.Size, m.SHA256)
}

// Sign signs m with the release private key.
func Sign(key ed25519.PrivateKey, m Manifest) []byte { return ed25519.Sign(key, m.Message()) }

// Verify checks sig over m with the pinned public key.
func Verify(pub ed25519.PublicKey, m Manifest, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return ErrBadKey
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, m.Message(), sig) {
		return ErrBadSignature
	}
	return nil
}

// KeyID is a short, stable name of a public key for messages and
// `agent status`: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// Info is a release as the hub announces it (GET /releases/latest).
type Info struct {
	Version   string `json:"version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"` // hex
	Signature []byte `json:"signature"`
	// URL is the binary's path on the hub (GET, byte ranges served).
	URL string `json:"url"`
}

// InfoOf is m, signed, served at url.
func InfoOf(m Manifest, sig []byte, url string) Info {
	return Info{Version: m.Version, OS: m.OS, Arch: m.Arch, Size: m.Size, SHA256: hex.EncodeToString(m.SHA256[:]), Signature: sig, URL: url}
}

// Manifest returns the manifest i announces, checked.
func (i Info) Manifest() (Manifest, error) {
	m := Manifest{Version: i.Version, OS: i.OS, Arch: i.Arch, Size: i.Size}
	h, err := hex.DecodeString(i.SHA256)
	if err != nil || len(h) != sha256.Size {
		return m, fmt.Errorf("empreinte SHA-256 %q illisible", i.SHA256)
	}
	copy(m.SHA256[:], h)
	return m, m.Check()
}

// KeyInfo is the hub's release public key (GET /releases/key).
type KeyInfo struct {
	PublicKey []byte `json:"public_key"`
	ID        string `json:"id"`
}

// Key returns the key k carries, checked against its id.
func (k KeyInfo) Key() (ed25519.PublicKey, error) {
	if len(k.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w : %d octets au lieu de %d", ErrBadKey, len(k.PublicKey), ed25519.PublicKeySize)
	}
	pub := ed25519.PublicKey(k.PublicKey)
	if k.ID != "" && k.ID != KeyID(pub) {
		return nil, fmt.Errorf("%w : l'identifiant %s ne correspond pas à la clé", ErrBadKey, k.ID)
	}
	return pub, nil
}
