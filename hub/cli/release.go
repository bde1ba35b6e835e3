package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"numeribus/hub/releases"
	"numeribus/internal/apperr"
	"numeribus/internal/release"
)

// `hub release`: agent releases (issue #14). The release key is made and
// kept by the operator, offline: keygen and sign need no hub; add stores
// a binary with its signed manifest in the hub's database, list shows
// them. Agents pin the key at enrollment and install only what it signed.

const releaseUsage = `Usage:
  hub release keygen --out FILE
  hub release sign FILE --key KEY --version V [--os OS --arch ARCH] --out SIG
  hub release add FILE (--sign KEY | --signature SIG) [--version V] [--os OS --arch ARCH] --data DIR [--db URL]
  hub release list --data DIR [--db URL] [--json]`

func runRelease(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 {
		return usagef("release: keygen, sign, add or list\n%s", releaseUsage)
	}
	switch args[0] {
	case "keygen":
		return runReleaseKeygen(e, args[1:])
	case "sign":
		return runReleaseSign(e, args[1:])
	case "add":
		return runReleaseAdd(ctx, e, args[1:])
	case "list":
		return runReleaseList(ctx, e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(e.Stdout, releaseUsage)
		return nil
	}
	return usagef("release: unknown subcommand %q\n%s", args[0], releaseUsage)
}

// parseWithFile parses flags around one positional FILE (`add FILE
// --sign KEY` as well as `add --sign KEY FILE`).
func parseWithFile(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", usagef("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", usagef("give exactly one binary file (got %d arguments)", len(pos))
	}
	return pos[0], nil
}

func runReleaseKeygen(e *Env, args []string) error {
	fs := flag.NewFlagSet("release keygen", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	out := fs.String("out", "", "private key file to write (the public key goes to FILE.pub)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out FILE is required")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	// Never over an existing key: losing the release key means agents
	// can no longer be updated without re-enrolling them.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{*out, release.MarshalPrivateKey(priv), 0o600}, {*out + ".pub", release.MarshalPublicKey(pub), 0o644}} {
		if err := writeNew(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.Stdout, "Release key %s written: private %s, public %s.pub.\n"+
		"Keep %s OFFLINE (a USB stick in a safe, a copy apart): whoever holds it can update every agent,\n"+
		"and without it no agent can be updated again. It never goes on the hub.\n", release.KeyID(pub), *out, *out, *out)
	return nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return apperr.Errorf(apperr.State, "%s exists already: not overwritten", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// signatureFile is what `hub release sign` writes and `hub release add
// --signature` reads: the manifest, its signature and the public key.
type signatureFile struct {
	release.Info
	PublicKey []byte `json:"public_key"`
}

// binaryManifest reads FILE: its size, SHA-256 and the platform its
// header names, checked against the --os and --arch given (when given).
func binaryManifest(path, version, goos, arch string) (release.Manifest, error) {
	var m release.Manifest
	f, err := os.Open(path)
	if err != nil {
		return m, apperr.Errorf(apperr.Invalid, "reading the binary: %w", err)
	}
	defer f.Close()
	fos, farch, err := releases.Platform(f)
	if err != nil {
		return m, apperr.Errorf(apperr.Invalid, "%s: %v", path, err)
	}
	if goos == "" && arch == "" {
		goos, arch = fos, farch
	}
	if goos != fos || arch != farch {
		return m, apperr.Errorf(apperr.Invalid, "%s is a %s/%s executable, not %s/%s", path, fos, farch, goos, arch)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return m, fmt.Errorf("reading the binary: %w", err)
	}
	m = release.Manifest{Version: version, OS: goos, Arch: arch, Size: n}
	copy(m.SHA256[:], h.Sum(nil))
	return m, nil
}

// canonical returns the version as agents compare it (no "v").
func canonical(v string) (string, error) {
	if v == "" {
		return "", usagef("--version is required (e.g. 1.4.0)")
	}
	pv, err := release.ParseVersion(v)
	if err != nil {
		return "", apperr.Errorf(apperr.Invalid, "--version: %v", err)
	}
	return pv.String(), nil
}

func readKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, apperr.Errorf(apperr.Invalid, "reading the release key: %w", err)
	}
	k, err := release.ParsePrivateKey(b)
	if err != nil {
		return nil, apperr.Errorf(apperr.Invalid, "%s: %v", path, err)
	}
	return k, nil
}

// signed signs FILE's manifest with the private key at keyPath.
func signed(file, keyPath, version, goos, arch string) (release.Manifest, []byte, ed25519.PublicKey, error) {
	v, err := canonical(version)
	if err != nil {
		return release.Manifest{}, nil, nil, err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return release.Manifest{}, nil, nil, err
	}
	m, err := binaryManifest(file, v, goos, arch)
	if err != nil {
		return m, nil, nil, err
	}
	if err := m.Check(); err != nil {
		return m, nil, nil, apperr.Errorf(apperr.Invalid, "%v", err)
	}
	return m, release.Sign(key, m), key.Public().(ed25519.PublicKey), nil
}

func runReleaseSign(e *Env, args []string) error {
	fs := flag.NewFlagSet("release sign", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	key := fs.String("key", "", "the release private key file (from keygen)")
	version := fs.String("version", "", "the release's version (e.g. 1.4.0)")
	goos := fs.String("os", "", "windows, linux or darwin (default: read from the binary)")
	arch := fs.String("arch", "", "amd64, 386, arm64 or arm (default: read from the binary)")
	out := fs.String("out", "", "signature file to write (default FILE.sig)")
	file, err := parseWithFile(fs, args)
	if err != nil {
		return err
	}
	if *key == "" {
		return usagef("--key KEY is required")
	}
	m, sig, pub, err := signed(file, *key, *version, *goos, *arch)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = file + ".sig"
	}
	b, _ := json.MarshalIndent(signatureFile{Info: release.InfoOf(m, sig, ""), PublicKey: pub}, "", "  ")
	if err := writeNew(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Signed %s %s (%d bytes, sha256 %x) with key %s: %s\n", m.Version, m.Platform(), m.Size, m.SHA256, release.KeyID(pub), *out)
	return nil
}

func runReleaseAdd(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "release add", "FILE (--sign KEY | --signature SIG) [--version V] [--os OS --arch ARCH] --data DIR", &data)
	key := fs.String("sign", "", "sign with this release private key file (brought for the occasion, then taken away)")
	sigFile := fs.String("signature", "", "a signature file made offline by `hub release sign`")
	version := fs.String("version", "", "the release's version (e.g. 1.4.0); with --signature, the signed one")
	goos := fs.String("os", "", "windows, linux or darwin (default: read from the binary)")
	arch := fs.String("arch", "", "amd64, 386, arm64 or arm (default: read from the binary)")
	file, err := parseWithFile(fs, args)
	if err != nil {
		return err
	}
	var (
		m   release.Manifest
		sig []byte
		pub ed25519.PublicKey
	)
	switch {
	case (*key == "") == (*sigFile == ""):
		return usagef("give one of --sign KEY or --signature SIG")
	case *key != "":
		if m, sig, pub, err = signed(file, *key, *version, *goos, *arch); err != nil {
			return err
		}
	default:
		if m, sig, pub, err = fromSignatureFile(file, *sigFile, *version, *goos, *arch); err != nil {
			return err
		}
	}
	if err := release.Verify(pub, m, sig); err != nil {
		return apperr.Errorf(apperr.Invalid, "the signature does not verify: %v", err)
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := st.AddRelease(ctx, releases.Release{Manifest: m, Signature: sig}, pub, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Release %s for %s added (id %d, %d bytes, sha256 %x, key %s).\n"+
		"Agents on %s install it at their next start after their hourly check.\n", m.Version, m.Platform(), r.ID, m.Size, m.SHA256, release.KeyID(pub), m.Platform())
	return nil
}

// fromSignatureFile reads a signature file and checks that it describes
// FILE (and the --version, --os, --arch given, if any).
func fromSignatureFile(file, sigPath, version, goos, arch string) (release.Manifest, []byte, ed25519.PublicKey, error) {
	var sf signatureFile
	b, err := os.ReadFile(sigPath)
	if err == nil {
		err = json.Unmarshal(b, &sf)
	}
	if err != nil {
		return release.Manifest{}, nil, nil, apperr.Errorf(apperr.Invalid, "reading the signature file: %w", err)
	}
	signedM, err := sf.Manifest()
	if err != nil {
		return signedM, nil, nil, apperr.Errorf(apperr.Invalid, "%s: %v", sigPath, err)
	}
	if version != "" {
		if v, err := canonical(version); err != nil || v != signedM.Version {
			return signedM, nil, nil, apperr.Errorf(apperr.Invalid, "%s signs version %s, not %s", sigPath, signedM.Version, version)
		}
	}
	if (goos != "" && goos != signedM.OS) || (arch != "" && arch != signedM.Arch) {
		return signedM, nil, nil, apperr.Errorf(apperr.Invalid, "%s signs a release for %s, not %s/%s", sigPath, signedM.Platform(), goos, arch)
	}
	m, err := binaryManifest(file, signedM.Version, signedM.OS, signedM.Arch)
	if err != nil {
		return m, nil, nil, err
	}
	if m != signedM {
		return m, nil, nil, apperr.Errorf(apperr.Invalid, "%s does not describe %s (size %d, sha256 %x; signed: size %d, sha256 %x)",
			sigPath, file, m.Size, m.SHA256, signedM.Size, signedM.SHA256)
	}
	if len(sf.PublicKey) != ed25519.PublicKeySize {
		return m, nil, nil, apperr.Errorf(apperr.Invalid, "%s: no public key", sigPath)
	}
	return m, sf.Signature, ed25519.PublicKey(sf.PublicKey), nil
}

func runReleaseList(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "release list", "--data DIR [--json]", &data)
	asJSON := fs.Bool("json", false, "JSON output")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	rs, err := st.Releases(ctx)
	if err != nil {
		return err
	}
	key, hasKey, err := st.ReleaseKey(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		type out struct {
			ID                        int64
			Version, OS, Arch, SHA256 string
			Size                      int64
			AddedAt                   string
			Latest                    bool `json:"latest"`
		}
		res := struct {
			Key      string `json:"key,omitempty"`
			Releases []out  `json:"releases"`
		}{Releases: []out{}}
		if hasKey {
			res.Key = release.KeyID(key)
		}
		for _, r := range rs {
			l, _ := releases.Latest(rs, r.OS, r.Arch)
			res.Releases = append(res.Releases, out{r.ID, r.Version, r.OS, r.Arch, fmt.Sprintf("%x", r.SHA256), r.Size, ts(r.AddedAt), l.ID == r.ID})
		}
		return json.NewEncoder(e.Stdout).Encode(res)
	}
	if !hasKey {
		fmt.Fprintln(e.Stdout, "No release yet (`hub release add`).")
		return nil
	}
	fmt.Fprintf(e.Stdout, "Release key %s\n", release.KeyID(key))
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tPLATFORM\tSIZE\tSHA256\tADDED\t")
	for _, r := range rs {
		mark := ""
		if l, _ := releases.Latest(rs, r.OS, r.Arch); l.ID == r.ID {
			mark = "latest"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.Version, r.Platform(), r.Size, fmt.Sprintf("%x", r.SHA256[:8]), ts(r.AddedAt), mark)
	}
	return tw.Flush()
}
