package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/release"
	"numeribus/internal/seal"
	"numeribus/internal/tlspin"
)

// testHub answers /releases/ as the hub does (hub/releases.Handler),
// with what a test tells it to announce and serve: the agent cannot
// import the hub; internal/e2e runs the real one.
type testHub struct {
	srv  *httptest.Server
	priv ed25519.PrivateKey // the key it serves
	mu   sync.Mutex
	info *release.Info // announced; nil: no release
	body []byte        // the bytes served
	// cutAt, when > 0, ends the next binary response after that many
	// bytes (the connection dropped); stallAt stops sending there until
	// the client goes.
	cutAt, stallAt int
	noKey          bool
	ranges         []string // Range header of each binary request
	bytesSent      int
	requests       int
}

func newTestHub(t *testing.T) *testHub {
	h := &testHub{}
	_, h.priv, _ = ed25519.GenerateKey(rand.Reader)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /releases/key", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.requests++
		if h.noKey {
			http.NotFound(w, r)
			return
		}
		pub := h.priv.Public().(ed25519.PublicKey)
		json.NewEncoder(w).Encode(release.KeyInfo{PublicKey: pub, ID: release.KeyID(pub)})
	})
	mux.HandleFunc("GET /releases/latest", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.requests++
		if h.info == nil {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(h.info)
	})
	mux.HandleFunc("GET /releases/1/binary", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.requests++
		h.ranges = append(h.ranges, r.Header.Get("Range"))
		body, cut, stall, etag := h.body, h.cutAt, h.stallAt, `"`+h.info.SHA256+`"`
		h.cutAt, h.stallAt = 0, 0
		h.mu.Unlock()
		w.Header().Set("ETag", etag)
		cw := &countingWriter{ResponseWriter: w, h: h, cut: cut, stall: stall, ctx: r.Context()}
		http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(body))
	})
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

type countingWriter struct {
	http.ResponseWriter
	h          *testHub
	n          int
	cut, stall int
	ctx        context.Context
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if limit := max(c.cut, c.stall); limit > 0 && c.n+len(p) > limit {
		p = p[:limit-c.n]
		k, _ := c.ResponseWriter.Write(p)
		c.count(k)
		c.ResponseWriter.(http.Flusher).Flush()
		if c.stall > 0 {
			<-c.ctx.Done() // silent until the client gives up
		}
		panic(http.ErrAbortHandler) // the connection drops
	}
	k, err := c.ResponseWriter.Write(p)
	c.count(k)
	return k, err
}

func (c *countingWriter) count(k int) {
	c.n += k
	c.h.mu.Lock()
	c.h.bytesSent += k
	c.h.mu.Unlock()
}

// announce makes the hub announce a release of body, signed by key (the
// hub's own by default), as m says (changed by edit).
func (h *testHub) announce(body []byte, key ed25519.PrivateKey, edit func(*release.Manifest)) {
	m := release.Manifest{Version: "1.1.0", OS: "linux", Arch: "amd64", Size: int64(len(body)), SHA256: sha256.Sum256(body)}
	if edit != nil {
		edit(&m)
	}
	if key == nil {
		key = h.priv
	}
	info := release.InfoOf(m, release.Sign(key, m), "/releases/1/binary")
	h.mu.Lock()
	h.info, h.body = &info, body
	h.mu.Unlock()
}

func (h *testHub) set(f func(h *testHub)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *testHub) stats() (requests, bytesSent int, ranges []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, h.bytesSent, append([]string{}, h.ranges...)
}

// enrolledStore is a real agent store enrolled with h (its certificate
// pinned).
func enrolledStore(t *testing.T, h *testHub) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	s, _, err := store.Create(ctx, dir, []byte("phrase de passe de test"), store.Options{KDF: seal.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	_, devKey, _ := ed25519.GenerateKey(rand.Reader)
	_, pushKey, _ := ed25519.GenerateKey(rand.Reader)
	hub := store.Hub{URL: "wss://" + h.srv.Listener.Addr().String() + "/sync", CertFingerprint: tlspin.Fingerprint(h.srv.Certificate().Raw),
		DeviceName: "bus-1", Team: "cd88", PushKey: pushKey}
	if err := s.Enroll(ctx, hub, devKey); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func updater(s *store.Store, dir, version string) *Updater {
	return &Updater{Dir: dir, Version: version, OS: "linux", Arch: "amd64", Store: s}
}

func binary(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// nothingStaged checks that no update is staged nor half downloaded.
func nothingStaged(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{stagedBin, stagedInfo, downloadPart, downloadInfo} {
		if _, err := os.Stat(filepath.Join(dir, SubDir, f)); err == nil {
			t.Errorf("%s present", f)
		}
	}
	if st := ReadStatus(dir, "1.0.0", ""); st.Pending != nil {
		t.Errorf("status shows a pending update: %+v", st.Pending)
	}
}

func TestCheckStagesASignedNewerRelease(t *testing.T) {
	h := newTestHub(t)
	s, dir := enrolledStore(t, h)
	bin := binary(300_000)
	h.announce(bin, nil, nil)
	u := updater(s, dir, "1.0.0")
	var notes []string
	u.Notify = func(m string) { notes = append(notes, m) }
	out, err := u.Check(context.Background())
	if err != nil || out != StagedNow {
		t.Fatalf("check: %s, %v", out, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, SubDir, stagedBin))
	if !bytes.Equal(got, bin) {
		t.Fatal("staged bytes differ from the release")
	}
	k, _ := s.ReleaseKey(context.Background())
	st := ReadStatus(dir, "1.0.0", release.KeyID(k))
	if st.Pending == nil || !st.Pending.Verified || st.Pending.Version != "1.1.0" || st.LastCheck == nil || st.LastCheck.Failed {
		t.Fatalf("status %+v", st)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "épinglée") || !strings.Contains(notes[1], "prochain démarrage") {
		t.Fatalf("notes %q", notes)
	}
	// Checked again: nothing downloaded again.
	_, sent, _ := h.stats()
	if out, err := u.Check(context.Background()); err != nil || out != AlreadyStaged {
		t.Fatalf("second check: %s, %v", out, err)
	}
	if _, sent2, _ := h.stats(); sent2 != sent {
		t.Fatalf("%d bytes sent again", sent2-sent)
	}
}

func TestCheckRefusals(t *testing.T) {
	other := func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k }()
	for _, tt := range []struct {
		name     string
		prepare  func(h *testHub, bin []byte)
		version  string // the agent's
		maxSize  int64
		want     error  // nil: no error, outcome instead
		outcome  string // when want is nil
		says     string
		download bool // whether a byte of the binary may be asked for
	}{
		{name: "one byte changed", prepare: func(h *testHub, bin []byte) {
			h.announce(bin, nil, nil)
			h.set(func(h *testHub) { h.body = bytes.Clone(bin); h.body[len(bin)/2] ^= 1 })
		}, want: ErrTampered, says: "empreinte signée", download: true},
		{name: "more bytes than signed", prepare: func(h *testHub, bin []byte) {
			h.announce(bin, nil, nil)
			h.set(func(h *testHub) { h.body = append(bytes.Clone(bin), 0) })
		}, want: ErrTampered, says: "plus que", download: true},
		{name: "signed with another key", prepare: func(h *testHub, bin []byte) { h.announce(bin, other, nil) },
			want: release.ErrBadSignature, says: "signature invalide"},
		{name: "signature of another version", prepare: func(h *testHub, bin []byte) {
			h.announce(bin, nil, nil)
			h.set(func(h *testHub) { h.info.Version = "1.2.0" })
		}, want: release.ErrBadSignature, says: "version 1.2.0 refusée"},
		{name: "another platform", prepare: func(h *testHub, bin []byte) { h.announce(bin, nil, func(m *release.Manifest) { m.OS = "windows" }) },
			want: ErrWrongPlatform, says: "pour windows/amd64, ce poste est linux/amd64"},
		{name: "another architecture", prepare: func(h *testHub, bin []byte) { h.announce(bin, nil, func(m *release.Manifest) { m.Arch = "386" }) },
			want: ErrWrongPlatform, says: "linux/386"},
		{name: "over the size cap", maxSize: 1000, prepare: func(h *testHub, bin []byte) { h.announce(bin, nil, nil) },
			want: ErrTooLarge, says: "trop gros"},
		{name: "the same version", version: "1.1.0", prepare: func(h *testHub, bin []byte) { h.announce(bin, nil, nil) },
			outcome: UpToDate, says: "à jour"},
		{name: "an older version", version: "1.2.0", prepare: func(h *testHub, bin []byte) { h.announce(bin, nil, nil) },
			outcome: Older, says: "plus ancienne"},
		{name: "no release for this platform", prepare: func(h *testHub, bin []byte) {}, outcome: NoRelease, says: "aucune version"},
		{name: "the hub has no key yet", prepare: func(h *testHub, bin []byte) { h.set(func(h *testHub) { h.noKey = true }) },
			outcome: NoKey, says: "pas encore"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t)
			s, dir := enrolledStore(t, h)
			tt.prepare(h, binary(50_000))
			v := "1.0.0"
			if tt.version != "" {
				v = tt.version
			}
			u := updater(s, dir, v)
			u.MaxSize = tt.maxSize
			out, err := u.Check(context.Background())
			if tt.want != nil {
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
					t.Fatalf("check: %s, %v; want %v saying %q", out, err, tt.want, tt.says)
				}
			} else if err != nil || out != tt.outcome {
				t.Fatalf("check: %s, %v; want %s", out, err, tt.outcome)
			}
			nothingStaged(t, dir)
			_, _, ranges := h.stats()
			if len(ranges) > 0 && !tt.download {
				t.Fatalf("the binary was asked for (%d times) though its manifest was refused", len(ranges))
			}
			st := ReadStatus(dir, v, "")
			if st.LastCheck == nil || st.LastCheck.Failed != (tt.want != nil) || !strings.Contains(st.LastCheck.Message, tt.says) {
				t.Fatalf("last check recorded as %+v", st.LastCheck)
			}
		})
	}
}

func TestInterruptedDownloadResumesWhereItStopped(t *testing.T) {
	h := newTestHub(t)
	s, dir := enrolledStore(t, h)
	bin := binary(1_000_000)
	h.announce(bin, nil, nil)
	h.set(func(h *testHub) { h.cutAt = 400_000 })
	u := updater(s, dir, "1.0.0")
	out, err := u.Check(context.Background())
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("cut download: %s, %v", out, err)
	}
	st := ReadStatus(dir, "1.0.0", "")
	if st.Pending == nil || st.Pending.Verified || st.Pending.Downloaded == 0 || st.Pending.Downloaded >= int64(len(bin)) {
		t.Fatalf("status after the cut: %+v", st.Pending)
	}
	if _, err := os.Stat(filepath.Join(dir, SubDir, stagedBin)); err == nil {
		t.Fatal("a partial download was staged")
	}
	have := st.Pending.Downloaded
	if out, err := u.Check(context.Background()); err != nil || out != StagedNow {
		t.Fatalf("resumed: %s, %v", out, err)
	}
	_, sent, ranges := h.stats()
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != fmt.Sprintf("bytes=%d-", have) {
		t.Fatalf("ranges asked: %q; want the whole, then from byte %d", ranges, have)
	}
	if sent != len(bin) {
		t.Fatalf("%d bytes sent in all for a %d-byte release", sent, len(bin))
	}
	got, _ := os.ReadFile(filepath.Join(dir, SubDir, stagedBin))
	if !bytes.Equal(got, bin) {
		t.Fatal("resumed download differs from the release")
	}
}

func TestAStalledDownloadIsCut(t *testing.T) {
	h := newTestHub(t)
	s, dir := enrolledStore(t, h)
	h.announce(binary(500_000), nil, nil)
	h.set(func(h *testHub) { h.stallAt = 100_000 })
	u := updater(s, dir, "1.0.0")
	u.Stall = 300 * time.Millisecond
	out, err := u.Check(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "plus rien reçu") {
		t.Fatalf("stalled download: %s, %v", out, err)
	}
	if out, err := u.Check(context.Background()); err != nil || out != StagedNow {
		t.Fatalf("after the stall: %s, %v", out, err)
	}
}

func TestANewerReleaseRestartsADownload(t *testing.T) {
	h := newTestHub(t)
	s, dir := enrolledStore(t, h)
	h.announce(binary(400_000), nil, nil)
	h.set(func(h *testHub) { h.cutAt = 100_000 })
	u := updater(s, dir, "1.0.0")
	u.Check(context.Background())
	bin := binary(300_000)
	h.announce(bin, nil, func(m *release.Manifest) { m.Version = "1.2.0" })
	if out, err := u.Check(context.Background()); err != nil || out != StagedNow {
		t.Fatalf("check: %s, %v", out, err)
	}
	if _, _, ranges := h.stats(); ranges[len(ranges)-1] != "" {
		t.Fatalf("another release's part resumed: %q", ranges)
	}
	got, _ := os.ReadFile(filepath.Join(dir, SubDir, stagedBin))
	if !bytes.Equal(got, bin) {
		t.Fatal("staged bytes are not 1.2.0's")
	}
}

func TestDevelopmentBuildsNeverAsk(t *testing.T) {
	h := newTestHub(t)
	s, dir := enrolledStore(t, h)
	h.announce(binary(1000), nil, nil)
	for _, v := range []string{"dev", "c212498", "v1.0.0-4-gc212498-dirty"} {
		if out, err := updater(s, dir, v).Check(context.Background()); err != nil || out != DevBuild {
			t.Fatalf("%s: %s, %v", v, out, err)
		}
	}
	if n, _, _ := h.stats(); n != 0 {
		t.Fatalf("a development build asked the hub %d times", n)
	}
	if st := ReadStatus(dir, "dev", ""); st.Updates || st.LastCheck != nil {
		t.Fatalf("status of a development build: %+v", st)
	}
}

func TestAHubThatChangesItsKeyCannotPushABinary(t *testing.T) {
	// A stolen hub, without the operator's offline key, makes its own and
	// signs a binary with it: the agent keeps the key it pinned.
	h := newTestHub(t)
	s, dir := enrolledStore(t, h)
	u := updater(s, dir, "1.0.0")
	pinned, pinnedNow, err := u.PinKey(context.Background())
	if err != nil || !pinnedNow {
		t.Fatalf("pin: %v, %v", pinnedNow, err)
	}
	_, thief, _ := ed25519.GenerateKey(rand.Reader)
	h.set(func(h *testHub) { h.priv = thief })
	h.announce(binary(1000), nil, nil) // signed by the thief's key, which the hub now serves
	if _, err := u.Check(context.Background()); !errors.Is(err, release.ErrBadSignature) {
		t.Fatalf("check: %v; want the signature refused", err)
	}
	if k, _ := s.ReleaseKey(context.Background()); !k.Equal(pinned) {
		t.Fatal("the pinned key was replaced")
	}
	nothingStaged(t, dir)
}

func TestRunChecksAtMostOnceAnHour(t *testing.T) {
	h := newTestHub(t)
	s, dir := enrolledStore(t, h)
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	u := updater(s, dir, "1.0.0")
	u.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	checks := func() int {
		st := ReadStatus(dir, "1.0.0", "")
		if st.LastCheck == nil {
			return 0
		}
		return int(st.LastCheck.At.Sub(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)) / time.Hour)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go u.Run(ctx)
	latest := func() int { n, _, _ := h.stats(); return n }
	u.Kick()
	waitFor(t, func() bool { return latest() >= 2 }) // key, latest
	before := latest()
	for range 5 {
		u.Kick()
		time.Sleep(20 * time.Millisecond)
	}
	if latest() != before {
		t.Fatalf("checked %d more times within the hour", latest()-before)
	}
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	u.Kick()
	waitFor(t, func() bool { return latest() > before })
	waitFor(t, func() bool { return checks() == 1 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
	}
}
