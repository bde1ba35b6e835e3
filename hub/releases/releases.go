// Package releases keeps the agent releases the hub serves (issue #14):
// each one a binary with its signed manifest (internal/release), stored
// in the hub's database — so that every hub instance over one PostgreSQL
// serves it — in chunks of ChunkSize bytes, so that serving a download, or
// the rest of an interrupted one, reads a chunk at a time whatever the
// binary's size and the number of agents downloading.
//
// The hub never signs: `hub release add` takes a manifest signed with the
// operator's release key, which stays offline. The first release stored
// records its public key as the hub's release key, which agents pin at
// enrollment; a release signed with another key is refused. Handler
// serves the key, the latest release of a platform and its bytes.
package releases

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"time"

	"numeribus/internal/apperr"
	"numeribus/internal/release"
)

// ChunkSize is the size of the stored pieces of a binary (the last one
// may be shorter). A download holds one in memory: small, because a
// thousand laptops on 64 kbit/s links may each take half an hour over
// theirs after a release (64 KiB each, 64 MiB for a thousand).
const ChunkSize = 64 << 10

// Release is a stored release.
type Release struct {
	ID int64
	release.Manifest
	Signature []byte
	AddedAt   time.Time
}

// Errors of the stores.
var (
	ErrExists   = apperr.New(apperr.Conflict, "this release (version, os, arch) is already stored")
	ErrOtherKey = apperr.New(apperr.State, "this release is signed with another key than the hub's release key, which the agents pinned")
	ErrNotFound = apperr.New(apperr.NotFound, "no such release")
	// ErrMismatch: the bytes given are not those the manifest describes
	// (the file changed while it was read): nothing was stored.
	ErrMismatch = apperr.New(apperr.Invalid, "the binary's bytes do not match its manifest (size or SHA-256): nothing stored")
)

// Store keeps releases (the hub's SQLite and PostgreSQL stores;
// releasestest is the suite both pass).
type Store interface {
	// AddRelease stores r and its binary, read from body, in one
	// transaction, and returns it with its id. The hub's release key is
	// recorded on the first release; a release signed with another key
	// is refused (ErrOtherKey), so is one already stored (ErrExists), and
	// so are bytes that are not the manifest's (ErrMismatch): then
	// nothing is stored. The signature is the caller's to check.
	AddRelease(ctx context.Context, r Release, key ed25519.PublicKey, body io.Reader) (Release, error)
	// Releases returns every release, oldest first.
	Releases(ctx context.Context) ([]Release, error)
	// ReleaseKey returns the hub's release key; false before the first
	// release.
	ReleaseKey(ctx context.Context) (ed25519.PublicKey, bool, error)
	// ReleaseChunk returns chunk n (from 0) of release id's binary, or
	// ErrNotFound.
	ReleaseChunk(ctx context.Context, id, n int64) ([]byte, error)
}

// Chunks reads body in chunks of ChunkSize, gives each to put with its
// number, and checks that what was read is r's size and SHA-256: the
// stores call it within their transaction and roll back on an error.
func Chunks(r release.Manifest, body io.Reader, put func(n int64, data []byte) error) error {
	h := sha256.New()
	buf := make([]byte, ChunkSize)
	var total int64
	for n := int64(0); ; n++ {
		k, err := io.ReadFull(body, buf)
		if k > 0 {
			total += int64(k)
			if total > r.Size {
				return ErrMismatch
			}
			h.Write(buf[:k])
			if err := put(n, buf[:k]); err != nil {
				return fmt.Errorf("storing chunk %d: %w", n, err)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the binary: %w", err)
		}
	}
	if total != r.Size || !bytes.Equal(h.Sum(nil), r.SHA256[:]) {
		return ErrMismatch
	}
	return nil
}

// SameKey checks a release's key against the hub's (had: one is
// recorded).
func SameKey(hub ed25519.PublicKey, had bool, key ed25519.PublicKey) error {
	if had && !hub.Equal(key) {
		return fmt.Errorf("%w (hub key %s, this one %s)", ErrOtherKey, release.KeyID(hub), release.KeyID(key))
	}
	return nil
}

// Latest returns the newest release of a platform among rs.
func Latest(rs []Release, os, arch string) (Release, bool) {
	var best Release
	var bestV release.Version
	found := false
	for _, r := range rs {
		if r.OS != os || r.Arch != arch {
			continue
		}
		v, err := release.ParseVersion(r.Version)
		if err != nil {
			continue // stored before a rule change: never announced
		}
		if !found || v.Compare(bestV) > 0 {
			best, bestV, found = r, v, true
		}
	}
	return best, found
}

// Platform reads which operating system and architecture an executable
// was built for, from its header (ELF: linux, PE: windows, Mach-O:
// darwin), so that a binary added for the wrong platform is refused at
// the hub rather than by every agent.
func Platform(f io.ReaderAt) (os, arch string, err error) {
	if e, err := elf.NewFile(f); err == nil {
		arch := map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_386: "386", elf.EM_AARCH64: "arm64", elf.EM_ARM: "arm"}[e.Machine]
		return "linux", arch, nil
	}
	if p, err := pe.NewFile(f); err == nil {
		arch := map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_I386: "386", pe.IMAGE_FILE_MACHINE_ARM64: "arm64", pe.IMAGE_FILE_MACHINE_ARMNT: "arm"}[p.Machine]
		return "windows", arch, nil
	}
	if m, err := macho.NewFile(f); err == nil {
		arch := map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[m.Cpu]
		return "darwin", arch, nil
	}
	return "", "", errors.New("not an executable (neither ELF, PE nor Mach-O)")
}
