package seal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// A device enrolled with two Ed25519 keys and no X25519 key, and the
// enrollment messages are frozen; yet the hub must seal a bundle (a USB
// stick's team changes) so that only that device opens it. The device key
// converts to X25519 the way libsodium's crypto_sign_ed25519_pk_to_curve25519
// and age's SSH recipients do: the Edwards point (x, y) is the Montgomery
// point u = (1 + y) / (1 − y), and the X25519 scalar is the Ed25519 one, the
// first half of SHA-512(seed). Using one key for signatures and this key
// agreement is proven safe (Thormarker, "On using the same key pair for
// Ed25519 and an X25519 based KEM", 2021); the HKDF purposes keep each
// envelope's keys apart.

// p25519 is the field prime 2^255 − 19.
var p25519 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// X25519FromEd25519 returns the X25519 public key of the Ed25519 public key
// pub: what a device's FromEd25519 key pair holds as its Public. The
// computation uses math/big, which is not constant time: pub is public.
func X25519FromEd25519(pub []byte) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("seal: Ed25519 public key of %d bytes, %d expected", len(pub), ed25519.PublicKeySize)
	}
	le := slices.Clone(pub)
	le[31] &= 0x7f // the sign of x: u does not depend on it
	slices.Reverse(le)
	y := new(big.Int).SetBytes(le)
	if y.Cmp(p25519) >= 0 {
		return nil, errors.New("seal: Ed25519 public key not in canonical form")
	}
	den := new(big.Int).Sub(big.NewInt(1), y)
	den.Mod(den, p25519)
	if den.Sign() == 0 {
		return nil, errors.New("seal: Ed25519 public key is the identity point")
	}
	u := new(big.Int).Add(big.NewInt(1), y)
	u.Mul(u, new(big.Int).ModInverse(den, p25519))
	u.Mod(u, p25519)
	out := u.FillBytes(make([]byte, EnvelopeKeySize))
	slices.Reverse(out)
	if _, err := ecdh.X25519().NewPublicKey(out); err != nil {
		return nil, fmt.Errorf("seal: X25519 key of an Ed25519 key: %w", err)
	}
	return out, nil
}

// FromEd25519 returns the X25519 key pair of the Ed25519 private key priv,
// whose public half is X25519FromEd25519(priv.Public()).
func FromEd25519(priv ed25519.PrivateKey) (*HubKey, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("seal: not an Ed25519 private key")
	}
	h := sha512.Sum512(priv.Seed())
	defer clear(h[:])
	// X25519 clamps the scalar as Ed25519 does: the same scalar.
	k, err := ecdh.X25519().NewPrivateKey(h[:32])
	if err != nil {
		return nil, fmt.Errorf("seal: X25519 key of an Ed25519 key: %w", err)
	}
	return &HubKey{k}, nil
}
