// Package update keeps the agent up to date by itself (issue #14): the
// laptops are in vehicles, out of coverage for days, looked after by no
// one in IT, and never updated by hand.
//
// Three moments:
//
//   - Pinning (PinKey): right after enrollment — or at the first sync of
//     an agent enrolled before updates existed — the agent fetches the
//     hub's release public key over the TLS connection whose certificate
//     the enrollment code pinned, and keeps it in its store, for good.
//   - Checking (Updater.Check): during `agent serve`'s background sync,
//     after a successful round and at most once an hour, the agent asks
//     the hub for the latest release of its platform. A newer one whose
//     manifest the pinned key signed is downloaded into DIR/update
//     (streamed, size-capped, resumed after a cut), its SHA-256 checked,
//     and staged. Anything else — another key, another platform, not
//     newer, other bytes — is refused with a message and nothing staged.
//   - Switching (Switch.AtStart): at the next start of `agent serve`, the
//     running program renames itself to agent.prev, moves the staged
//     binary to its place (Windows cannot overwrite a running .exe but
//     can rename it) and starts it; the new one must say it started
//     (a marker file) within a grace period, or the previous binary is
//     put back, the version remembered as bad and never installed again.
//
// Development builds (a version that is not a release, see
// internal/release.ParseVersion) neither download nor switch.
package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"numeribus/internal/release"
)

// SubDir is where the updates live inside the agent's data directory.
const SubDir = "update"

// Files of DIR/update.
const (
	downloadInfo = "download.json" // the release being downloaded (release.Info)
	downloadPart = "download.part" // its bytes so far
	stagedInfo   = "staged.json"   // the verified release waiting for the next start (Staged)
	stagedBin    = "staged.bin"    // its bytes
	checkInfo    = "check.json"    // the last check's outcome (LastCheck)
	trialInfo    = "trial.json"    // a switch under way (trial)
	badInfo      = "bad.json"      // versions that did not start ([]Bad)
	markerPrefix = "started-"      // + version: written by a new version once started
)

// MarkerEnv names, in the environment of a new version started for its
// trial, the file it writes once it has started (MarkStarted).
const MarkerEnv = "NUMERIBUS_UPDATE_STARTED"

// Staged is a downloaded and verified release, installed at the next
// start.
type Staged struct {
	release.Info
	KeyID      string    `json:"key_id"` // the pinned key that verified it
	VerifiedAt time.Time `json:"verified_at"`
}

// LastCheck is what the last check found.
type LastCheck struct {
	At      time.Time `json:"at"`
	Latest  string    `json:"latest,omitempty"` // the version the hub announced
	Message string    `json:"message"`          // in French
	Failed  bool      `json:"failed,omitempty"`
}

// Bad is a version that did not start: never installed again.
type Bad struct {
	Version string    `json:"version"`
	SHA256  string    `json:"sha256"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
}

// trial is a switch under way: the new version runs, until it writes its
// marker.
type trial struct {
	Version  string    `json:"version"`
	Previous string    `json:"previous"`
	SHA256   string    `json:"sha256"`
	At       time.Time `json:"at"`
}

// Pending is an update on its way, as `agent status` shows it.
type Pending struct {
	Version string `json:"version"`
	// Verified: downloaded whole, SHA-256 and signature checked against
	// the pinned key; installed at the next start.
	Verified   bool  `json:"verified"`
	Downloaded int64 `json:"downloaded_bytes"`
	Size       int64 `json:"size"`
}

// Status is the agent's version and what the updates did, without a
// passphrase: `agent status`.
type Status struct {
	Version  string `json:"version"`
	Platform string `json:"platform"`
	// Updates: false for a development build, which never updates.
	Updates    bool       `json:"updates"`
	ReleaseKey string     `json:"release_key,omitempty"` // id of the pinned key
	Pending    *Pending   `json:"pending,omitempty"`
	LastCheck  *LastCheck `json:"last_check,omitempty"`
	Refused    []Bad      `json:"refused_versions,omitempty"`
}

// Platform is this program's "os/arch".
func Platform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// ReadStatus reads DIR/update for `agent status` (keyID, the pinned key's
// id, is the caller's: the store holds it).
func ReadStatus(dataDir, version, keyID string) Status {
	d := filepath.Join(dataDir, SubDir)
	st := Status{Version: version, Platform: Platform(), Updates: release.IsRelease(version), ReleaseKey: keyID}
	var s Staged
	if readJSON(filepath.Join(d, stagedInfo), &s) == nil {
		if fi, err := os.Stat(filepath.Join(d, stagedBin)); err == nil && fi.Size() == s.Size {
			st.Pending = &Pending{Version: s.Version, Verified: true, Downloaded: s.Size, Size: s.Size}
		}
	}
	var dl release.Info
	if st.Pending == nil && readJSON(filepath.Join(d, downloadInfo), &dl) == nil {
		p := &Pending{Version: dl.Version, Size: dl.Size}
		if fi, err := os.Stat(filepath.Join(d, downloadPart)); err == nil {
			p.Downloaded = fi.Size()
		}
		st.Pending = p
	}
	var lc LastCheck
	if readJSON(filepath.Join(d, checkInfo), &lc) == nil {
		st.LastCheck = &lc
	}
	st.Refused, _ = readBad(d)
	return st
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func readBad(dir string) ([]Bad, error) {
	var bs []Bad
	err := readJSON(filepath.Join(dir, badInfo), &bs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return bs, err
}

func isBad(bs []Bad, version string) (Bad, bool) {
	i := slices.IndexFunc(bs, func(b Bad) bool { return b.Version == version })
	if i < 0 {
		return Bad{}, false
	}
	return bs[i], true
}

// writeFile writes a small file durably and whole: a temporary file,
// synced, renamed over the old one.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
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
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'))
}

// MarkStarted writes the marker a new version under trial writes once it
// has started (its path is MarkerEnv's value).
func MarkStarted(path, version string) error {
	if err := writeFile(path, fmt.Appendf(nil, "%s %s\n", version, time.Now().UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("writing the start marker of the update: %w", err)
	}
	return nil
}
