package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The X25519 key derived from a device's Ed25519 private key has, as its
// public half, the one the hub computes from the device's public key, so
// an envelope the hub makes for the device opens with the device's key,
// and with no other device's.
func TestX25519FromEd25519(t *testing.T) {
	for range 50 {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		xpub, err := X25519FromEd25519(pub)
		if err != nil {
			t.Fatal(err)
		}
		k, err := FromEd25519(priv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k.Public(), xpub) {
			t.Fatalf("public key from the private key %x, from the public key %x", k.Public(), xpub)
		}
		env, err := NewEnvelopeFor(xpub, PurposeBundle)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := env.Key.Seal(nil, []byte("modifications de l'équipe"), []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		opened, err := k.OpenFor(env.EPK, PurposeBundle)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := opened.Open(nil, sealed, []byte("ad")); err != nil || string(got) != "modifications de l'équipe" {
			t.Fatalf("opened %q, %v", got, err)
		}
		// Another purpose derives another key.
		other, err := k.OpenFor(env.EPK, PurposeOutbox)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Open(nil, sealed, []byte("ad")); err == nil {
			t.Fatal("an envelope opened under another purpose")
		}
		_, priv2, _ := ed25519.GenerateKey(rand.Reader)
		k2, _ := FromEd25519(priv2)
		wrong, err := k2.OpenFor(env.EPK, PurposeBundle)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wrong.Open(nil, sealed, []byte("ad")); err == nil {
			t.Fatal("another device opened the envelope")
		}
	}
}

// A known vector: RFC 8032's first test key, converted as libsodium's
// crypto_sign_ed25519_pk_to_curve25519 does (the value checked apart with
// a Montgomery ladder from the secret key's scalar).
func TestX25519FromEd25519Vector(t *testing.T) {
	seed := mustHex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	pub := mustHex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	want := mustHex(t, "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e")
	got, err := X25519FromEd25519(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	k, err := FromEd25519(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Public(), want) {
		t.Fatalf("from the secret key: %x, want %x", k.Public(), want)
	}
	if _, err := X25519FromEd25519(pub[:31]); err == nil {
		t.Error("a short key was taken")
	}
}
