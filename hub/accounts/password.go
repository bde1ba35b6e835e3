package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the Argon2id cost parameters. They are stored with each
// hash (PHC string format), so that raising them later leaves older
// hashes verifiable.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams cost about 90 ms on the hub's 2-core machine
// (shared/TECH-NOTES.md): slow for a guesser, unnoticed at login.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 2}

// MinPasswordLen is the shortest password accepted: ANSSI recommends 12
// characters or more for a password alone protecting personal data.
const MinPasswordLen = 12

// maxPasswordLen bounds the work one login attempt can cause.
const maxPasswordLen = 1024

const (
	saltLen = 16
	keyLen  = 32
)

// CheckPasswordStrength refuses passwords too short or too long.
func CheckPasswordStrength(pw []byte) error {
	n := len([]rune(string(pw)))
	if n < MinPasswordLen {
		return fmt.Errorf("le mot de passe doit compter au moins %d caractères (il en a %d)", MinPasswordLen, n)
	}
	if len(pw) > maxPasswordLen {
		return fmt.Errorf("le mot de passe doit compter au plus %d octets", maxPasswordLen)
	}
	return nil
}

// HashPassword returns the PHC string of pw's Argon2id hash with a fresh
// salt: $argon2id$v=19$m=65536,t=3,p=2$SALT$HASH.
func HashPassword(pw []byte, p Params) (string, error) {
	if len(pw) > maxPasswordLen {
		return "", errors.New("password too long")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	key := argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the PHC string encoded,
// using the parameters stored in it.
func VerifyPassword(encoded string, pw []byte) (bool, error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) > maxPasswordLen {
		return false, nil
	}
	got := argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// BurnTime spends the time of one verification with the given
// parameters' cost. The login calls it when the e-mail is unknown, so
// that the answer takes as long as for a known one: no finding out which
// addresses have an account by timing the login.
func BurnTime(p Params) {
	salt := make([]byte, saltLen)
	argon2.IDKey([]byte("numeribus-dummy-password"), salt, p.Time, p.Memory, p.Threads, keyLen)
}

func parseHash(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("password hash: not an argon2id PHC string")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("password hash: unsupported version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("password hash: bad parameters %q: %w", parts[3], err)
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 1<<22 || p.Time > 64 {
		return p, nil, nil, fmt.Errorf("password hash: parameters out of range %q", parts[3])
	}
	enc := base64.RawStdEncoding
	if salt, err = enc.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("password hash: bad salt: %w", err)
	}
	if key, err = enc.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, errors.New("password hash: bad key")
	}
	return p, salt, key, nil
}

// passwordAlphabet has no letters or digits that read alike (0/o, 1/l/i)
// when a generated password is read aloud or copied from a screen.
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// GeneratePassword draws a password for an admin's reset or a new
// account: 16 characters of passwordAlphabet (31 signs, 79 bits) in
// groups of four (k7mq-x3vt-9pzr-h2wd), shown once to the admin who hands
// it over; only its hash is kept.
func GeneratePassword() (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for n := 0; n < 16; {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("drawing a password: %w", err)
		}
		// Rejection sampling: 248 = 8 × 31, so every sign is equally likely.
		if buf[0] >= 248 {
			continue
		}
		if n > 0 && n%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(passwordAlphabet[int(buf[0])%len(passwordAlphabet)])
		n++
	}
	return b.String(), nil
}
