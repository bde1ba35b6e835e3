package seal

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// Two seals of one plaintext never look alike: a fixed or repeated nonce
// would let anyone holding the file XOR two records together.
func TestSealsOfOnePlaintextDiffer(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pt, ad := []byte("Jeanne Martin, 06 12 34 56 78"), []byte("records\x00beneficiary")
	seen := map[string]bool{}
	var prev []byte
	for i := range 2000 {
		b, err := k.Seal(nil, pt, ad)
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(b[:chacha20poly1305.NonceSizeX])
		if seen[nonce] {
			t.Fatalf("seal %d reused a nonce", i)
		}
		seen[nonce] = true
		if bytes.Equal(b, prev) {
			t.Fatalf("seal %d equals the one before", i)
		}
		prev = b
	}
}

// Nonces are read from the CSPRNG, byte for byte, and production reads
// crypto/rand.
func TestNoncesComeFromTheCSPRNG(t *testing.T) {
	if nonceSource != rand.Reader {
		t.Fatal("nonces are not drawn from crypto/rand.Reader")
	}
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	var drawn bytes.Buffer
	nonceSource = io.TeeReader(rand.Reader, &drawn)
	t.Cleanup(func() { nonceSource = rand.Reader })
	b, err := k.Seal(nil, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := b[:chacha20poly1305.NonceSizeX]; !bytes.Equal(got, drawn.Bytes()) {
		t.Fatalf("nonce %x is not what was drawn (%x)", got, drawn.Bytes())
	}
	nonceSource = bytes.NewReader(nil) // an exhausted source fails the seal
	if _, err := k.Seal(nil, []byte("x"), nil); err == nil {
		t.Fatal("a seal without randomness succeeded")
	}
}
