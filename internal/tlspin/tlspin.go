// Package tlspin pins a TLS certificate by its SHA-256 fingerprint. The
// agent trusts its hub because the enrollment code carried the hub
// certificate's fingerprint — not because a certificate authority vouches
// for a name — so a hostile network cannot interpose its own certificate.
package tlspin

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
)

// Fingerprint returns the SHA-256 of a certificate's DER bytes.
func Fingerprint(der []byte) []byte {
	s := sha256.Sum256(der)
	return s[:]
}

// PinnedConfig returns a client TLS configuration that accepts exactly the
// certificate whose SHA-256 is fingerprint, whatever its name or issuer.
func PinnedConfig(fingerprint []byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("hub presented no certificate")
			}
			got := Fingerprint(cs.PeerCertificates[0].Raw)
			if !equal(got, fingerprint) {
				return &MismatchError{Got: got, Want: fingerprint}
			}
			return nil
		},
	}
}

// MismatchError is returned when the hub's certificate is not the pinned one.
type MismatchError struct{ Got, Want []byte }

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the hub's certificate does not match the enrolled one (got %x…, want %x…): possible interception, or the hub changed its certificate — re-enroll", e.Got[:6], e.Want[:min(6, len(e.Want))])
}

func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}
