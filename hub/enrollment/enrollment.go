// Package enrollment issues the one-time codes that enroll a laptop at
// the hub. `hub enroll` and the dashboard's "Inscrire un poste" both
// call Issue, so a code made in either place is the same thing: a
// random single-use token whose SHA-256 the store keeps, wrapped with
// the hub's URL and certificate fingerprint in an enrollcode.
package enrollment

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/syncserver"
	"numeribus/internal/enrollcode"
)

// DefaultTTL is how long a code stays valid unless told otherwise: a
// week leaves time to hand the laptop over, not to forget the code.
const DefaultTTL = 7 * 24 * time.Hour

// tokenLen is the random token's size in bytes (192 bits).
const tokenLen = 24

// Request says which device the code is for and how to reach the hub.
type Request struct {
	Name, Team string
	// URL is the sync address the agent dials (ws:// or wss://);
	// Fingerprint, the SHA-256 of the hub's certificate for wss.
	URL         string
	Fingerprint []byte
	TTL         time.Duration // DefaultTTL when zero
	Now         time.Time     // time.Now when zero
}

// Issued is a code ready to hand over.
type Issued struct {
	Code    string
	Expires time.Time
	Name    string
	Team    string
	URL     string
}

// Creator is the part of the hub store Issue needs.
type Creator interface {
	CreateEnrollment(ctx context.Context, e store.Enrollment) error
}

// Issue records a pending enrollment for req and returns its code.
func Issue(ctx context.Context, st Creator, req Request) (Issued, error) {
	if req.Name == "" || req.Team == "" {
		return Issued{}, errors.New("enrollment: the device name and team are required")
	}
	if req.URL == "" {
		return Issued{}, errors.New("enrollment: the hub's address is unknown")
	}
	if req.TTL <= 0 {
		req.TTL = DefaultTTL
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	token := make([]byte, tokenLen)
	if _, err := rand.Read(token); err != nil {
		return Issued{}, fmt.Errorf("enrollment of %s: making a token: %w", req.Name, err)
	}
	exp := req.Now.Add(req.TTL)
	if err := st.CreateEnrollment(ctx, store.Enrollment{TokenHash: syncserver.TokenHash(token), Name: req.Name, Team: req.Team, ExpiresAt: exp}); err != nil {
		return Issued{}, err
	}
	code, err := enrollcode.Encode(enrollcode.Code{URL: req.URL, Token: token, Fingerprint: req.Fingerprint, ExpiresUnix: exp.Unix()})
	if err != nil {
		return Issued{}, err
	}
	return Issued{Code: code, Expires: exp, Name: req.Name, Team: req.Team, URL: req.URL}, nil
}
