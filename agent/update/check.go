package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/apperr"
	"numeribus/internal/release"
	"numeribus/internal/tlspin"
)

// KeyStore is what the updater needs of the agent's store (*store.Store):
// the enrolled hub, and the pinned release key.
type KeyStore interface {
	Hub(ctx context.Context) (store.Hub, error)
	ReleaseKey(ctx context.Context) (ed25519.PublicKey, error)
	PinReleaseKey(ctx context.Context, k ed25519.PublicKey) error
}

// Defaults of an Updater.
const (
	DefaultCheckEvery = time.Hour
	// DefaultStall: a download that receives nothing for that long is cut
	// (a tunnel, a dead zone); what came is kept, the rest resumed later.
	DefaultStall = 2 * time.Minute
)

// Refusals of a release: nothing is staged.
var (
	ErrWrongPlatform = apperr.New(apperr.Invalid, "version refusée : elle n'est pas pour ce système")
	ErrTampered      = apperr.New(apperr.Invalid, "version refusée : le fichier reçu ne correspond pas à son empreinte signée (SHA-256) ; il est effacé")
	ErrTooLarge      = apperr.New(apperr.TooLarge, "version refusée : fichier trop gros")
	// ErrIncomplete: the download was cut; what came is kept and the rest
	// is asked for at the next check.
	ErrIncomplete = apperr.New(apperr.Unreachable, "téléchargement interrompu : il reprendra à la prochaine vérification")
	// ErrNoKey: the hub has no release key yet (no release added).
	ErrNoKey = apperr.New(apperr.NotFound, "le hub ne publie pas encore de versions (aucune clé de publication)")
)

// Updater checks for, downloads, verifies and stages new releases.
type Updater struct {
	Dir      string // the agent's data directory (DIR/update is used)
	Version  string // this program's
	OS, Arch string // this program's platform
	Store    KeyStore
	// URL overrides the enrolled hub's address (tests route through a
	// proxy); Insecure allows a ws:// (http://) hub, as the sync does.
	URL        string
	Insecure   bool
	Log        *slog.Logger
	Notify     func(msg string) // says, in French, what the person should know (a key pinned, an update staged)
	CheckEvery time.Duration
	Stall      time.Duration
	MaxSize    int64
	Now        func() time.Time

	once sync.Once
	kick chan struct{}
	last time.Time // the last check (Run's goroutine only)
}

func (u *Updater) defaults() {
	u.once.Do(func() {
		u.kick = make(chan struct{}, 1)
		if u.Log == nil {
			u.Log = slog.New(slog.DiscardHandler)
		}
		if u.Notify == nil {
			u.Notify = func(string) {}
		}
		if u.CheckEvery == 0 {
			u.CheckEvery = DefaultCheckEvery
		}
		if u.Stall == 0 {
			u.Stall = DefaultStall
		}
		if u.MaxSize == 0 {
			u.MaxSize = release.MaxSize
		}
		if u.Now == nil {
			u.Now = time.Now
		}
		if u.OS == "" && u.Arch == "" {
			u.OS, u.Arch = runtime.GOOS, runtime.GOARCH
		}
	})
}

// Kick asks Run for a check, without waiting: the sync calls it after
// each successful round.
func (u *Updater) Kick() {
	u.defaults()
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Run checks after each Kick, at most once every CheckEvery, until ctx
// ends. A check's failure is logged and recorded for `agent status`; the
// next one, an hour later, tries again (a cut download resumes).
func (u *Updater) Run(ctx context.Context) {
	u.defaults()
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.kick:
		}
		if !u.last.IsZero() && u.Now().Sub(u.last) < u.CheckEvery {
			continue
		}
		u.last = u.Now()
		res, err := u.Check(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			u.Log.Warn("update check failed", "err", err)
			continue
		}
		u.Log.Info("update check", "outcome", res)
	}
}

// hubBase returns the hub's https:// origin and an HTTP client that
// accepts only its pinned certificate.
func (u *Updater) hubBase(ctx context.Context) (*url.URL, *http.Client, error) {
	h, err := u.Store.Hub(ctx)
	if err != nil {
		return nil, nil, err
	}
	raw := h.URL
	if u.URL != "" {
		raw = u.URL
	}
	b, err := url.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("adresse du hub %q : %w", raw, err)
	}
	switch b.Scheme {
	case "wss", "https":
		b.Scheme = "https"
	case "ws", "http":
		if !u.Insecure {
			return nil, nil, fmt.Errorf("adresse du hub %q non chiffrée : permise seulement avec --insecure", raw)
		}
		b.Scheme = "http"
	default:
		return nil, nil, fmt.Errorf("adresse du hub %q : schéma %q inconnu", raw, b.Scheme)
	}
	b = &url.URL{Scheme: b.Scheme, Host: b.Host}
	tr := &http.Transport{
		Proxy:                 nil, // as the sync: straight to the pinned hub
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
		TLSClientConfig:       tlspin.PinnedConfig(h.CertFingerprint),
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true, // sizes and ranges are the binary's bytes
		MaxIdleConns:          1,
		IdleConnTimeout:       30 * time.Second,
	}
	return b, &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// getJSON GETs path from the hub into v; found is false on a 404.
func getJSON(ctx context.Context, c *http.Client, base *url.URL, path string, v any) (found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+path, nil)
	if err != nil {
		return false, err
	}
	res, err := c.Do(req)
	if err != nil {
		return false, fmt.Errorf("hub injoignable : %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("le hub répond %s à %s", res.Status, path)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(v); err != nil {
		return false, fmt.Errorf("réponse illisible du hub à %s : %w", path, err)
	}
	return true, nil
}

// PinKey returns the pinned release key, pinning the hub's first if none
// is (pinnedNow: it was pinned by this call). ErrNoKey: the hub has none.
func (u *Updater) PinKey(ctx context.Context) (key ed25519.PublicKey, pinnedNow bool, err error) {
	u.defaults()
	if k, err := u.Store.ReleaseKey(ctx); err != nil || k != nil {
		return k, false, err
	}
	base, c, err := u.hubBase(ctx)
	if err != nil {
		return nil, false, err
	}
	defer c.CloseIdleConnections()
	var ki release.KeyInfo
	found, err := getJSON(ctx, c, base, "/releases/key", &ki)
	if err != nil {
		return nil, false, err
	}
	if !found {
		return nil, false, ErrNoKey
	}
	k, err := ki.Key()
	if err != nil {
		return nil, false, err
	}
	if err := u.Store.PinReleaseKey(ctx, k); err != nil {
		return nil, false, err
	}
	u.Log.Info("release key pinned", "key", release.KeyID(k))
	return k, true, nil
}

// Outcomes of a check that refused nothing.
const (
	DevBuild      = "dev"    // a development build: no update
	NoKey         = "no_key" // the hub publishes no releases yet
	NoRelease     = "none"   // no release for this platform
	UpToDate      = "up_to_date"
	Older         = "older"  // the hub announced an older version: ignored
	BadVersion    = "bad"    // the newest one did not start here before
	AlreadyStaged = "staged" // already downloaded and verified
	StagedNow     = "staged_now"
)

// Check asks the hub for the latest release of this platform and, when
// it is newer and signed by the pinned key, downloads, verifies and
// stages it. It records its outcome for `agent status`. A refusal
// (another key, platform, other bytes) stages nothing and is an error
// that says why, in French.
func (u *Updater) Check(ctx context.Context) (outcome string, err error) {
	u.defaults()
	var latest string
	defer func() {
		if outcome == DevBuild || ctx.Err() != nil {
			return
		}
		lc := LastCheck{At: u.Now().UTC(), Latest: latest, Message: message(outcome, latest, u.Version)}
		if err != nil {
			lc.Message, lc.Failed = err.Error(), true
		}
		u.record(checkInfo, lc)
	}()
	if !release.IsRelease(u.Version) {
		return DevBuild, nil
	}
	key, pinnedNow, err := u.PinKey(ctx)
	if errors.Is(err, ErrNoKey) {
		return NoKey, nil
	}
	if err != nil {
		return "", err
	}
	if pinnedNow {
		u.Notify(fmt.Sprintf("Clé de publication des mises à jour épinglée (%s) : ce poste avait été inscrit avant les mises à jour automatiques.", release.KeyID(key)))
	}
	base, c, err := u.hubBase(ctx)
	if err != nil {
		return "", err
	}
	defer c.CloseIdleConnections()
	var info release.Info
	found, err := getJSON(ctx, c, base, "/releases/latest?os="+url.QueryEscape(u.OS)+"&arch="+url.QueryEscape(u.Arch), &info)
	if err != nil {
		return "", err
	}
	if !found {
		return NoRelease, nil
	}
	latest = info.Version
	outcome, m, err := u.accept(info, key)
	if err != nil {
		u.forgetDownload()
		return "", err
	}
	if m == nil {
		return outcome, nil
	}
	dir := filepath.Join(u.Dir, SubDir)
	var st Staged
	if readJSON(filepath.Join(dir, stagedInfo), &st) == nil && st.SHA256 == info.SHA256 && st.Version == info.Version {
		if fi, err := os.Stat(filepath.Join(dir, stagedBin)); err == nil && fi.Size() == st.Size {
			return AlreadyStaged, nil
		}
	}
	part, err := u.download(ctx, c, base, info, *m)
	if err != nil {
		return "", err
	}
	if err := u.stage(part, info, key); err != nil {
		return "", err
	}
	u.Notify(fmt.Sprintf("Mise à jour %s téléchargée et vérifiée : elle sera installée au prochain démarrage de l'agent.", info.Version))
	return StagedNow, nil
}

func message(outcome, latest, version string) string {
	switch outcome {
	case NoKey:
		return "le hub ne publie pas encore de versions"
	case NoRelease:
		return "aucune version publiée pour ce système"
	case UpToDate:
		return "à jour"
	case Older:
		return fmt.Sprintf("le hub annonce la version %s, plus ancienne que %s : ignorée", latest, version)
	case BadVersion:
		return fmt.Sprintf("la version %s n'a pas démarré sur ce poste : elle ne sera pas installée", latest)
	case AlreadyStaged, StagedNow:
		return fmt.Sprintf("version %s prête : installée au prochain démarrage", latest)
	}
	return outcome
}

// accept checks an announced release before a byte is downloaded: for
// this platform, newer than this program, not a version that failed
// here, within the size cap, signed by the pinned key. A release not
// wanted (not newer, failed before) gives its outcome and no manifest; a
// refused one an error that says why.
func (u *Updater) accept(info release.Info, key ed25519.PublicKey) (string, *release.Manifest, error) {
	m, err := info.Manifest()
	if err != nil {
		return "", nil, apperr.Errorf(apperr.Invalid, "version annoncée refusée : %v", err)
	}
	if m.OS != u.OS || m.Arch != u.Arch {
		return "", nil, fmt.Errorf("%w : la version %s annoncée est pour %s, ce poste est %s/%s", ErrWrongPlatform, m.Version, m.Platform(), u.OS, u.Arch)
	}
	newer, err := release.Newer(m.Version, u.Version)
	if err != nil {
		return "", nil, err
	}
	if !newer {
		if older, _ := release.Newer(u.Version, m.Version); older {
			return Older, nil, nil
		}
		return UpToDate, nil, nil
	}
	bad, _ := readBad(filepath.Join(u.Dir, SubDir))
	if b, ok := isBad(bad, m.Version); ok {
		u.Log.Info("newest release did not start here before: not installed", "version", b.Version, "at", b.At)
		return BadVersion, nil, nil
	}
	if m.Size > u.MaxSize {
		return "", nil, fmt.Errorf("%w : %d octets, au plus %d", ErrTooLarge, m.Size, u.MaxSize)
	}
	if err := release.Verify(key, m, info.Signature); err != nil {
		return "", nil, apperr.Errorf(apperr.Invalid, "version %s refusée : %w", m.Version, err)
	}
	return "", &m, nil
}

// forgetDownload removes a download in progress (its release was refused).
func (u *Updater) forgetDownload() {
	dir := filepath.Join(u.Dir, SubDir)
	os.Remove(filepath.Join(dir, downloadPart))
	os.Remove(filepath.Join(dir, downloadInfo))
}

func (u *Updater) record(name string, v any) {
	dir := filepath.Join(u.Dir, SubDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		u.Log.Warn("update state not recorded", "file", name, "err", err)
		return
	}
	if err := writeJSON(filepath.Join(dir, name), v); err != nil {
		u.Log.Warn("update state not recorded", "file", name, "err", err)
	}
}

// download fetches info's bytes into DIR/update/download.part, resuming
// a part the same release left (a byte range, with its SHA-256 as
// If-Range, so that other bytes restart from zero), and checks the whole
// file's SHA-256. A cut leaves the part for the next check
// (ErrIncomplete); other bytes than the signed ones are deleted
// (ErrTampered).
func (u *Updater) download(ctx context.Context, c *http.Client, base *url.URL, info release.Info, m release.Manifest) (string, error) {
	dir := filepath.Join(u.Dir, SubDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("dossier des mises à jour : %w", err)
	}
	part := filepath.Join(dir, downloadPart)
	var have int64
	var prev release.Info
	if readJSON(filepath.Join(dir, downloadInfo), &prev) == nil && prev.SHA256 == info.SHA256 && prev.Size == info.Size && prev.Version == info.Version {
		if fi, err := os.Stat(part); err == nil && fi.Size() <= m.Size {
			have = fi.Size()
		}
	}
	if have == 0 {
		os.Remove(part)
		if err := writeJSON(filepath.Join(dir, downloadInfo), info); err != nil {
			return "", fmt.Errorf("début du téléchargement : %w", err)
		}
	}
	if have < m.Size {
		target, err := base.Parse(info.URL)
		if err != nil || target.Scheme != base.Scheme || target.Host != base.Host {
			return "", apperr.Errorf(apperr.Invalid, "version %s refusée : adresse de téléchargement %q hors du hub", m.Version, info.URL)
		}
		if have, err = u.fetch(ctx, c, target.String(), part, have, m); err != nil {
			return "", err
		}
	}
	if have < m.Size {
		return "", fmt.Errorf("%w (%d octets reçus sur %d)", ErrIncomplete, have, m.Size)
	}
	sum, err := fileSHA256(part)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(sum, m.SHA256[:]) {
		u.forgetDownload()
		return "", fmt.Errorf("%w (version %s)", ErrTampered, m.Version)
	}
	return part, nil
}

// fetch appends to part the bytes from have on, and returns how many the
// part holds.
func (u *Updater) fetch(ctx context.Context, c *http.Client, target, part string, have int64, m release.Manifest) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return have, err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		req.Header.Set("If-Range", `"`+hex.EncodeToString(m.SHA256[:])+`"`)
	}
	res, err := c.Do(req)
	if err != nil {
		return have, fmt.Errorf("%w : %v", ErrIncomplete, err)
	}
	defer res.Body.Close()
	flags := os.O_WRONLY | os.O_CREATE
	switch {
	case res.StatusCode == http.StatusPartialContent && have > 0 && strings.HasPrefix(res.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(have, 10)+"-"):
		flags |= os.O_APPEND
	case res.StatusCode == http.StatusOK:
		have, flags = 0, flags|os.O_TRUNC // the whole file again
	case res.StatusCode == http.StatusServiceUnavailable:
		return have, fmt.Errorf("%w : le hub sert trop de téléchargements à la fois", ErrIncomplete)
	default:
		return have, fmt.Errorf("téléchargement de la version %s : le hub répond %s", m.Version, res.Status)
	}
	f, err := os.OpenFile(part, flags, 0o600)
	if err != nil {
		return have, fmt.Errorf("téléchargement : %w", err)
	}
	// A stalled connection is cut after u.Stall without a byte.
	watch := time.AfterFunc(u.Stall, func() { cancel(errors.New("plus rien reçu")) })
	defer watch.Stop()
	body := &progress{r: res.Body, onRead: func() { watch.Reset(u.Stall) }}
	// One byte more than the manifest's size is read to catch a longer body.
	n, copyErr := io.Copy(f, io.LimitReader(body, m.Size-have+1))
	syncErr := f.Sync()
	if err := f.Close(); err != nil && syncErr == nil {
		syncErr = err
	}
	have += n
	switch {
	case have > m.Size:
		u.forgetDownload()
		return 0, fmt.Errorf("%w : le hub envoie plus que les %d octets signés", ErrTampered, m.Size)
	case syncErr != nil:
		return have, fmt.Errorf("téléchargement : écriture : %w", syncErr)
	case copyErr != nil:
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			copyErr = cause
		}
		return have, fmt.Errorf("%w (%d octets reçus sur %d) : %v", ErrIncomplete, have, m.Size, copyErr)
	}
	return have, nil
}

type progress struct {
	r      io.Reader
	onRead func()
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.onRead()
	}
	return n, err
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("lecture du téléchargement : %w", err)
	}
	return h.Sum(nil), nil
}

// stage makes a verified download the staged release: the binary first,
// then its description, so that a staged.json always names whole bytes.
func (u *Updater) stage(part string, info release.Info, key ed25519.PublicKey) error {
	dir := filepath.Join(u.Dir, SubDir)
	os.Remove(filepath.Join(dir, stagedInfo))
	if err := os.Rename(part, filepath.Join(dir, stagedBin)); err != nil {
		return fmt.Errorf("mise en attente de la version %s : %w", info.Version, err)
	}
	info.URL = ""
	if err := writeJSON(filepath.Join(dir, stagedInfo), Staged{Info: info, KeyID: release.KeyID(key), VerifiedAt: u.Now().UTC()}); err != nil {
		return fmt.Errorf("mise en attente de la version %s : %w", info.Version, err)
	}
	os.Remove(filepath.Join(dir, downloadInfo))
	u.Log.Info("update staged", "version", info.Version, "size", info.Size)
	return nil
}
