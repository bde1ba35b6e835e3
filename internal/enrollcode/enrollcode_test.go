package enrollcode

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	c := Code{URL: "wss://hub.example.fr:8443/sync", Token: bytes.Repeat([]byte{7}, 24),
		Fingerprint: bytes.Repeat([]byte{9}, 32), ExpiresUnix: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Unix()}
	s, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(s, "+/= ") || !strings.HasPrefix(s, Prefix) {
		t.Fatalf("not URL-safe: %s", s)
	}
	// Pasted with line breaks and spaces around.
	got, err := Decode("  " + s[:20] + "\n" + s[20:] + " \n")
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != c.URL || !bytes.Equal(got.Token, c.Token) || !bytes.Equal(got.Fingerprint, c.Fingerprint) || !got.Expires().Equal(c.Expires()) {
		t.Fatalf("round trip: %+v", got)
	}
	t.Logf("code of %d characters: %s", len(s), s)
}

func TestRejects(t *testing.T) {
	good, _ := Encode(Code{URL: "wss://h/sync", Token: make([]byte, 16), Fingerprint: make([]byte, 32)})
	noFP, _ := Encode(Code{URL: "wss://h/sync", Token: make([]byte, 16)})
	badURL, _ := Encode(Code{URL: "http://h/sync", Token: make([]byte, 16), Fingerprint: make([]byte, 32)})
	shortTok, _ := Encode(Code{URL: "wss://h/sync", Token: make([]byte, 3), Fingerprint: make([]byte, 32)})
	for _, s := range []string{"", "hello", Prefix + "!!!", good[:len(good)-5], noFP, badURL, shortTok} {
		if _, err := Decode(s); !errors.Is(err, ErrFormat) {
			t.Errorf("Decode(%q) = %v, want ErrFormat", s, err)
		}
	}
}
