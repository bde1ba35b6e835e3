// Package certs gives the hub a TLS certificate: the operator's own if
// configured, otherwise one the hub makes itself on first start and keeps.
// Agents do not rely on a certificate authority: they pin the SHA-256
// fingerprint carried by their enrollment code.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"numeribus/internal/owneronly"
	"numeribus/internal/tlspin"
)

// File names inside the hub's data directory.
const (
	CertFile = "hub.crt"
	KeyFile  = "hub.key"
)

// LoadOrCreate loads DIR/hub.crt and DIR/hub.key, creating a self-signed
// ECDSA P-256 certificate valid ten years for localhost, the loopback
// addresses and hosts when they are absent.
func LoadOrCreate(dir string, hosts ...string) (tls.Certificate, []byte, error) {
	cp, kp := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if _, err := os.Stat(cp); errors.Is(err, fs.ErrNotExist) {
		if err := create(cp, kp, hosts); err != nil {
			return tls.Certificate{}, nil, err
		}
	}
	// Made 0600; one an earlier hub left looser is tightened. The
	// certificate is public (every client receives it), but one rule for
	// every file of the data directory is simpler to keep and to check.
	if err := owneronly.Files(cp, kp); err != nil {
		return tls.Certificate{}, nil, err
	}
	return Load(cp, kp)
}

// Load loads a certificate and key in PEM files.
func Load(certPath, keyPath string) (tls.Certificate, []byte, error) {
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("loading TLS certificate %s: %w", certPath, err)
	}
	return c, tlspin.Fingerprint(c.Certificate[0]), nil
}

func create(certPath, keyPath string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Numéribus Sync hub", Organization: []string{"Numéribus Sync"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		tpl.DNSNames = append(tpl.DNSNames, h)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tpl.IPAddresses = append(tpl.IPAddresses, ip)
		} else if h != "" {
			tpl.DNSNames = append(tpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("creating TLS certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("writing TLS key: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("writing TLS certificate: %w", err)
	}
	return nil
}

// Pair is the hub's certificate with its fingerprint.
type Pair struct {
	Cert        tls.Certificate
	Fingerprint []byte
}

// Get returns the operator's certificate when certFile is set, else the
// hub's own from dir (made on first start).
func Get(dir, certFile, keyFile string, hosts ...string) (Pair, error) {
	var c tls.Certificate
	var fp []byte
	var err error
	if certFile != "" {
		c, fp, err = Load(certFile, keyFile)
	} else {
		c, fp, err = LoadOrCreate(dir, hosts...)
	}
	return Pair{c, fp}, err
}

// ServerConfig returns a TLS server configuration for the pair, whose
// session tickets are short handles to sessions kept in memory
// (tickets.go).
func (p *Pair) ServerConfig() *tls.Config { return p.serverConfig(newTicketStore(time.Now)) }

func (p *Pair) serverConfig(ts *ticketStore) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.Cert},
		WrapSession: ts.wrap, UnwrapSession: ts.unwrap}
}
