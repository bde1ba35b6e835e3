package release

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestVersionOrder(t *testing.T) {
	// Each version is older than the next (Semantic Versioning 2.0's
	// example, and numbers compared as numbers).
	order := []string{
		"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "v1.0.1", "1.2.0", "1.10.0", "2.0.0",
	}
	for i := range order {
		for j := range order {
			a, err := ParseVersion(order[i])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := ParseVersion(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	if v, _ := ParseVersion("v1.2.3+build.7"); v.Compare(Version{1, 2, 3, nil}) != 0 {
		t.Error("build metadata must not count in the order")
	}
}

func TestDevelopmentVersionsAreNotReleases(t *testing.T) {
	for _, s := range []string{"dev", "", "c212498", "v1.2.0-3-gc212498", "v1.2.0-3-gc212498-dirty", "1.2.0-dirty", "1.2", "01.2.3", "1.2.3-01", "1.2.3 "} {
		if IsRelease(s) {
			t.Errorf("%q taken for a release", s)
		}
		if newer, err := Newer("9.9.9", s); newer || err == nil {
			t.Errorf("Newer(9.9.9, %q) = %v, %v: a development build must never update", s, newer, err)
		}
	}
	for _, s := range []string{"1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3-beta-2"} {
		if !IsRelease(s) {
			t.Errorf("%q refused", s)
		}
	}
}

func TestNewer(t *testing.T) {
	for _, tt := range []struct {
		cand, cur string
		want      bool
	}{
		{"1.1.0", "1.0.0", true},
		{"1.0.0", "1.0.0", false},
		{"v1.0.0", "1.0.0", false},
		{"0.9.0", "1.0.0", false},
		{"1.0.0", "1.0.0-rc.2", true},
		{"1.10.0", "1.9.0", true},
	} {
		got, err := Newer(tt.cand, tt.cur)
		if err != nil || got != tt.want {
			t.Errorf("Newer(%s, %s) = %v, %v; want %v", tt.cand, tt.cur, got, err, tt.want)
		}
	}
}

func manifest() Manifest {
	return Manifest{Version: "1.4.0", OS: "windows", Arch: "amd64", Size: 12, SHA256: sha256.Sum256([]byte("hello agent\n"))}
}

func TestSignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	m := manifest()
	sig := Sign(priv, m)
	if err := Verify(pub, m, sig); err != nil {
		t.Fatal(err)
	}
	// Any field changed, or another key: refused.
	changed := map[string]func(*Manifest){
		"version": func(m *Manifest) { m.Version = "1.4.1" },
		"os":      func(m *Manifest) { m.OS = "linux" },
		"arch":    func(m *Manifest) { m.Arch = "386" },
		"size":    func(m *Manifest) { m.Size++ },
		"sha256":  func(m *Manifest) { m.SHA256[31] ^= 1 },
	}
	for name, change := range changed {
		m2 := m
		change(&m2)
		if err := Verify(pub, m2, sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v, want ErrBadSignature", name, err)
		}
	}
	if err := Verify(other, m, sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key: %v", err)
	}
	if err := Verify(pub[:31], m, sig); !errors.Is(err, ErrBadKey) {
		t.Errorf("short key: %v", err)
	}
	// The message names every field once, in a fixed order.
	if got := string(m.Message()); !strings.HasPrefix(got, "numeribus agent release v1\nversion=1.4.0\nos=windows\narch=amd64\nsize=12\nsha256=") {
		t.Errorf("message %q", got)
	}
}

func TestInfoRoundTrip(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	m := manifest()
	i := InfoOf(m, Sign(priv, m), "/releases/1/binary")
	got, err := i.Manifest()
	if err != nil || got != m {
		t.Fatalf("%+v, %v; want %+v", got, err, m)
	}
	i.SHA256 = "zz"
	if _, err := i.Manifest(); err == nil {
		t.Error("unreadable SHA-256 accepted")
	}
}

func TestManifestCheck(t *testing.T) {
	for name, change := range map[string]func(*Manifest){
		"dev version":  func(m *Manifest) { m.Version = "dev" },
		"unknown os":   func(m *Manifest) { m.OS = "plan9" },
		"unknown arch": func(m *Manifest) { m.Arch = "mips" },
		"empty":        func(m *Manifest) { m.Size = 0 },
		"oversized":    func(m *Manifest) { m.Size = MaxSize + 1 },
	} {
		m := manifest()
		change(&m)
		if err := m.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := manifest().Check(); err != nil {
		t.Error(err)
	}
}

func TestKeyFiles(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	got, err := ParsePrivateKey(MarshalPrivateKey(priv))
	if err != nil || !got.Equal(priv) {
		t.Fatalf("private key round trip: %v", err)
	}
	gotPub, err := ParsePublicKey(MarshalPublicKey(pub))
	if err != nil || !gotPub.Equal(pub) {
		t.Fatalf("public key round trip: %v", err)
	}
	if _, err := ParsePrivateKey(MarshalPublicKey(pub)); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("public key given to sign: %v", err)
	}
	if _, err := ParsePublicKey([]byte("hello")); err == nil {
		t.Error("garbage read as a key")
	}
	k := KeyInfo{PublicKey: pub, ID: KeyID(pub)}
	if got, err := k.Key(); err != nil || !got.Equal(pub) {
		t.Fatal(err)
	}
	k.ID = "0000000000000000"
	if _, err := k.Key(); !errors.Is(err, ErrBadKey) {
		t.Errorf("wrong id: %v", err)
	}
}
