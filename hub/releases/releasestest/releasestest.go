// Package releasestest is the conformance suite of the stores that keep
// agent releases (releases.Store): hub/store/sqlite and hub/store/postgres
// run it from their tests.
package releasestest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"debug/pe"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"numeribus/hub/releases"
	"numeribus/internal/release"
)

// Open returns a new, empty store; the caller closes it at the test's end.
type Open func(t *testing.T) releases.Store

// Run runs the suite, each test on a new store.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, releases.Store)
	}{
		{"Empty", testEmpty},
		{"AddThenReadBack", testAdd},
		{"SameReleaseTwiceRefused", testTwice},
		{"AnotherKeyRefused", testOtherKey},
		{"BytesNotTheManifestsStoreNothing", testMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// Binary returns n random bytes and a signed release of them.
func Binary(t testing.TB, key ed25519.PrivateKey, version, os, arch string, n int) ([]byte, releases.Release) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	m := release.Manifest{Version: version, OS: os, Arch: arch, Size: int64(n), SHA256: sha256.Sum256(b)}
	return b, releases.Release{Manifest: m, Signature: release.Sign(key, m)}
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func testEmpty(t *testing.T, s releases.Store) {
	ctx := context.Background()
	if k, ok, err := s.ReleaseKey(ctx); ok || k != nil || err != nil {
		t.Fatalf("key of a new store: %v, %v, %v", k, ok, err)
	}
	if rs, err := s.Releases(ctx); len(rs) != 0 || err != nil {
		t.Fatalf("releases of a new store: %v, %v", rs, err)
	}
	if _, err := s.ReleaseChunk(ctx, 1, 0); !errors.Is(err, releases.ErrNotFound) {
		t.Fatalf("chunk of a new store: %v", err)
	}
}

// readAll reads a release's bytes back chunk by chunk.
func readAll(t *testing.T, s releases.Store, r releases.Release) []byte {
	t.Helper()
	var out []byte
	for n := int64(0); int64(len(out)) < r.Size; n++ {
		b, err := s.ReleaseChunk(context.Background(), r.ID, n)
		if err != nil {
			t.Fatalf("chunk %d: %v", n, err)
		}
		out = append(out, b...)
	}
	return out
}

func testAdd(t *testing.T, s releases.Store) {
	ctx := context.Background()
	pub, priv := newKey(t)
	// Two chunks and a piece: the last chunk is shorter.
	bin, r := Binary(t, priv, "1.4.0", "windows", "amd64", 2*releases.ChunkSize+123)
	before := time.Now().Add(-time.Second)
	got, err := s.AddRelease(ctx, r, pub, bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == 0 || got.AddedAt.Before(before) || got.Manifest != r.Manifest {
		t.Fatalf("added %+v", got)
	}
	bin2, r2 := Binary(t, priv, "1.4.0", "linux", "amd64", 1000)
	got2, err := s.AddRelease(ctx, r2, pub, bytes.NewReader(bin2))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Releases(ctx)
	if err != nil || len(rs) != 2 {
		t.Fatalf("releases: %v, %v", rs, err)
	}
	for i, want := range []releases.Release{got, got2} {
		g := rs[i]
		if g.ID != want.ID || g.Manifest != want.Manifest || !bytes.Equal(g.Signature, want.Signature) || !g.AddedAt.Equal(want.AddedAt) {
			t.Errorf("release %d read back as %+v, want %+v", i, g, want)
		}
		if err := release.Verify(pub, g.Manifest, g.Signature); err != nil {
			t.Errorf("release %d: %v", i, err)
		}
	}
	if k, ok, err := s.ReleaseKey(ctx); !ok || err != nil || !k.Equal(pub) {
		t.Fatalf("release key %x, %v, %v; want the first release's", k, ok, err)
	}
	if b := readAll(t, s, got); !bytes.Equal(b, bin) {
		t.Fatalf("binary read back differs (%d bytes, want %d)", len(b), len(bin))
	}
	if b, err := s.ReleaseChunk(ctx, got.ID, 2); err != nil || len(b) != 123 {
		t.Fatalf("last chunk: %d bytes, %v", len(b), err)
	}
	if _, err := s.ReleaseChunk(ctx, got.ID, 3); !errors.Is(err, releases.ErrNotFound) {
		t.Fatalf("chunk after the end: %v", err)
	}
}

func testTwice(t *testing.T, s releases.Store) {
	ctx := context.Background()
	pub, priv := newKey(t)
	bin, r := Binary(t, priv, "1.4.0", "windows", "amd64", 5000)
	if _, err := s.AddRelease(ctx, r, pub, bytes.NewReader(bin)); err != nil {
		t.Fatal(err)
	}
	// The same version and platform with other bytes: refused, the first kept.
	bin2, r2 := Binary(t, priv, "1.4.0", "windows", "amd64", 6000)
	if _, err := s.AddRelease(ctx, r2, pub, bytes.NewReader(bin2)); !errors.Is(err, releases.ErrExists) {
		t.Fatalf("same release twice: %v, want ErrExists", err)
	}
	rs, _ := s.Releases(ctx)
	if len(rs) != 1 || rs[0].Manifest != r.Manifest {
		t.Fatalf("releases after a refused one: %+v", rs)
	}
	if b := readAll(t, s, rs[0]); !bytes.Equal(b, bin) {
		t.Fatal("the first release's bytes changed")
	}
}

func testOtherKey(t *testing.T, s releases.Store) {
	ctx := context.Background()
	pub, priv := newKey(t)
	otherPub, otherPriv := newKey(t)
	bin, r := Binary(t, priv, "1.4.0", "windows", "amd64", 100)
	if _, err := s.AddRelease(ctx, r, pub, bytes.NewReader(bin)); err != nil {
		t.Fatal(err)
	}
	bin2, r2 := Binary(t, otherPriv, "1.5.0", "windows", "amd64", 100)
	if _, err := s.AddRelease(ctx, r2, otherPub, bytes.NewReader(bin2)); !errors.Is(err, releases.ErrOtherKey) {
		t.Fatalf("another key: %v, want ErrOtherKey", err)
	}
	if k, _, _ := s.ReleaseKey(ctx); !k.Equal(pub) {
		t.Fatal("the hub's release key changed")
	}
	if rs, _ := s.Releases(ctx); len(rs) != 1 {
		t.Fatalf("%d releases, want the first only", len(rs))
	}
}

func testMismatch(t *testing.T, s releases.Store) {
	ctx := context.Background()
	pub, priv := newKey(t)
	bin, r := Binary(t, priv, "1.4.0", "windows", "amd64", releases.ChunkSize+10)
	tampered := bytes.Clone(bin)
	tampered[releases.ChunkSize+5] ^= 1
	for name, body := range map[string]io.Reader{
		"one byte changed": bytes.NewReader(tampered),
		"shorter":          bytes.NewReader(bin[:len(bin)-1]),
		"longer":           io.MultiReader(bytes.NewReader(bin), bytes.NewReader([]byte{0})),
	} {
		if _, err := s.AddRelease(ctx, r, pub, body); !errors.Is(err, releases.ErrMismatch) {
			t.Fatalf("%s: %v, want ErrMismatch", name, err)
		}
		// Nothing stored, not even the key of this first release.
		if rs, _ := s.Releases(ctx); len(rs) != 0 {
			t.Fatalf("%s: %d releases stored", name, len(rs))
		}
		if _, ok, _ := s.ReleaseKey(ctx); ok {
			t.Fatalf("%s: the key of a refused release was recorded", name)
		}
		if _, err := s.ReleaseChunk(ctx, 1, 0); !errors.Is(err, releases.ErrNotFound) {
			t.Fatalf("%s: a chunk was left behind: %v", name, err)
		}
	}
}

// Executable returns n bytes (n ≥ 4096) that releases.Platform reads as
// an executable of goos/arch: the header a linker writes, then random
// bytes. Tests add them as releases without building a program.
func Executable(t testing.TB, goos, arch string, n int) []byte {
	t.Helper()
	b := make([]byte, max(n, 4096))
	rand.Read(b[1024:])
	switch goos {
	case "linux":
		copy(b, "\x7fELF\x02\x01\x01")
		binary.LittleEndian.PutUint16(b[16:], 2) // ET_EXEC
		binary.LittleEndian.PutUint16(b[18:], uint16(map[string]elf.Machine{"amd64": elf.EM_X86_64, "386": elf.EM_386, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM}[arch]))
		binary.LittleEndian.PutUint32(b[20:], 1)
	case "windows":
		copy(b, "MZ")
		binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
		copy(b[0x40:], "PE\x00\x00")
		binary.LittleEndian.PutUint16(b[0x44:], map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "386": pe.IMAGE_FILE_MACHINE_I386, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[arch])
	default:
		t.Fatalf("Executable: %s not made here", goos)
	}
	return b
}
