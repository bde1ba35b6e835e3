package tlspin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// Files the hub writes for an agent out of coverage (a receipt, the
// team's changes on a USB stick) are signed with the key of its TLS
// certificate, and carry the certificate: the agent checks it against
// the fingerprint it pinned at enrollment, then the signature. Agents
// already enrolled trust these files with nothing new to learn, and a
// hub that changes its certificate is re-enrolled anyway. The signed
// messages start with a length-prefixed context string of their own
// (internal/bundle), which neither TLS 1.3's CertificateVerify (64
// spaces first) nor TLS 1.2's ServerKeyExchange (the client's random
// first) can begin with.

// ErrBadSignature is returned by Verify when the signature does not
// verify.
var ErrBadSignature = errors.New("signature does not verify")

// Sign signs msg with key, the private key of the hub's TLS certificate:
// Ed25519 over msg itself, ECDSA (ASN.1) and RSA-PSS over its SHA-256.
func Sign(key crypto.Signer, msg []byte) ([]byte, error) {
	switch key.Public().(type) {
	case ed25519.PublicKey:
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		return key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	}
	return nil, fmt.Errorf("TLS key of type %T cannot sign", key.Public())
}

// Verify checks that certDER is the pinned certificate (its SHA-256 is
// fingerprint: a MismatchError otherwise) and that sig is its key's
// signature of msg, as Sign makes it (ErrBadSignature otherwise).
func Verify(certDER, fingerprint, msg, sig []byte) error {
	if len(fingerprint) == 0 {
		return errors.New("no certificate pinned (enrolled with --insecure): nothing the hub signs can be checked")
	}
	if got := Fingerprint(certDER); !equal(got, fingerprint) {
		return &MismatchError{Got: got, Want: fingerprint}
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("reading the hub's certificate: %w", err)
	}
	ok := false
	switch pub := cert.PublicKey.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, msg, sig)
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		ok = ecdsa.VerifyASN1(pub, d[:], sig)
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		ok = rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	default:
		return fmt.Errorf("hub certificate with a key of type %T", cert.PublicKey)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
