package tlspin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

func selfSigned(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hub"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A signature by the certificate's key verifies against the pinned
// certificate, for each key type a hub's certificate may have; another
// message, another certificate or a flipped bit does not.
func TestSignVerify(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER := selfSigned(t, other)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{"ecdsa", ec}, {"ed25519", ed}, {"rsa", rs}} {
		t.Run(tc.name, func(t *testing.T) {
			der := selfSigned(t, tc.key)
			pin := Fingerprint(der)
			msg := []byte("reçu du hub")
			sig, err := Sign(tc.key, msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(der, pin, msg, sig); err != nil {
				t.Fatalf("valid signature refused: %v", err)
			}
			if err := Verify(der, pin, []byte("reçu du hub!"), sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("another message: %v", err)
			}
			bad := append([]byte{}, sig...)
			bad[len(bad)/2] ^= 1
			if err := Verify(der, pin, msg, bad); !errors.Is(err, ErrBadSignature) {
				t.Errorf("a flipped bit: %v", err)
			}
			var mm *MismatchError
			if err := Verify(otherDER, pin, msg, sig); !errors.As(err, &mm) {
				t.Errorf("another certificate: %v", err)
			}
			if err := Verify(der, nil, msg, sig); err == nil {
				t.Error("verified with nothing pinned")
			}
		})
	}
}
