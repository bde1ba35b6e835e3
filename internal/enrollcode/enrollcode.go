// Package enrollcode encodes the one-time code a coordinator gives to a
// mediator to enroll a laptop: everything the agent needs to reach the
// hub and trust it, in one line of URL-safe text that survives being
// pasted, e-mailed or read from a QR code.
//
// The code carries the hub URL, a single-use token and the SHA-256
// fingerprint of the hub's TLS certificate, so that the agent pins the
// hub's certificate from its first connection: no certificate authority,
// no trust on first use.
package enrollcode

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/cborx"
)

// Prefix starts every code, naming the format's version.
const Prefix = "NSYNC1-"

// Code is the content of an enrollment code.
type Code struct {
	URL         string `cbor:"1,keyasint"`
	Token       []byte `cbor:"2,keyasint"`
	Fingerprint []byte `cbor:"3,keyasint"`
	ExpiresUnix int64  `cbor:"4,keyasint"`
}

// Expires returns the expiry time.
func (c Code) Expires() time.Time { return time.Unix(c.ExpiresUnix, 0) }

// ErrFormat is returned for text that is not an enrollment code.
var ErrFormat = errors.New("not a Numéribus enrollment code")

// decMode reads pasted text, so with the limits on untrusted input, sized
// for a map of four keys (Decode caps the code at 2048 bytes first).
// Unknown keys are skipped, as they always were.
var decMode = cborx.Untrusted(cborx.Limits{Depth: 4, Elements: 16, Pairs: 16})

var encMode = must(cbor.CoreDetEncOptions().EncMode())

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Encode returns the text form of c.
func Encode(c Code) (string, error) {
	b, err := encMode.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding enrollment code: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Decode parses a code as typed or pasted (surrounding spaces and line
// breaks are ignored) and checks its content.
func Decode(s string) (Code, error) {
	s = strings.Join(strings.Fields(s), "")
	if !strings.HasPrefix(s, Prefix) {
		return Code{}, fmt.Errorf("%w: it must start with %s", ErrFormat, Prefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, Prefix))
	if err != nil || len(b) > 2048 {
		return Code{}, fmt.Errorf("%w: damaged text (copy it again)", ErrFormat)
	}
	var c Code
	if err := decMode.Unmarshal(b, &c); err != nil {
		return Code{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		return Code{}, fmt.Errorf("%w: bad hub address %q", ErrFormat, c.URL)
	}
	if len(c.Token) < 16 || len(c.Token) > 64 {
		return Code{}, fmt.Errorf("%w: bad token", ErrFormat)
	}
	if u.Scheme == "wss" && len(c.Fingerprint) != 32 {
		return Code{}, fmt.Errorf("%w: missing certificate fingerprint", ErrFormat)
	}
	return c, nil
}
