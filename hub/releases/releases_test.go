package releases_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"numeribus/hub/releases"
	"numeribus/hub/releases/releasestest"
	"numeribus/hub/store/sqlite"
	"numeribus/internal/release"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLatestComparesVersions(t *testing.T) {
	rel := func(id int64, v, os, arch string) releases.Release {
		return releases.Release{ID: id, Manifest: release.Manifest{Version: v, OS: os, Arch: arch}}
	}
	rs := []releases.Release{
		rel(1, "1.9.0", "windows", "amd64"),
		rel(2, "1.10.0", "windows", "amd64"), // newer than 1.9.0, though "1.10" < "1.9" as text
		rel(3, "1.11.0-rc.1", "windows", "amd64"),
		rel(4, "2.0.0", "linux", "amd64"),
		rel(5, "1.10.1", "windows", "386"),
		rel(6, "1.0.0", "windows", "amd64"), // added later, older
	}
	for _, tt := range []struct {
		os, arch string
		want     int64
	}{{"windows", "amd64", 3}, {"linux", "amd64", 4}, {"windows", "386", 5}, {"darwin", "arm64", 0}} {
		got, ok := releases.Latest(rs, tt.os, tt.arch)
		if got.ID != tt.want || ok != (tt.want != 0) {
			t.Errorf("Latest(%s/%s) = %d, %v; want %d", tt.os, tt.arch, got.ID, ok, tt.want)
		}
	}
}

func TestPlatformOfAnExecutable(t *testing.T) {
	f, err := os.Open(os.Args[0]) // this test binary
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	goos, arch, err := releases.Platform(f)
	if err != nil || goos != runtime.GOOS || arch != runtime.GOARCH {
		t.Fatalf("Platform(test binary) = %s/%s, %v; want %s/%s", goos, arch, err, runtime.GOOS, runtime.GOARCH)
	}
	if _, _, err := releases.Platform(strings.NewReader("#!/bin/sh\nexit 0\n")); err == nil {
		t.Fatal("a shell script taken for an executable")
	}
}

func get(t *testing.T, srv *httptest.Server, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func TestHandlerServesKeyLatestAndRanges(t *testing.T) {
	st := openStore(t)
	srv := httptest.NewServer(releases.Handler(st, releases.Options{}))
	defer srv.Close()

	// Before any release: no key, no release.
	if res, _ := get(t, srv, "/releases/key"); res.StatusCode != 404 {
		t.Fatalf("key before any release: %d", res.StatusCode)
	}
	if res, _ := get(t, srv, "/releases/latest?os=windows&arch=amd64"); res.StatusCode != 404 {
		t.Fatalf("latest before any release: %d", res.StatusCode)
	}

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	bin, r := releasestest.Binary(t, priv, "1.4.0", "windows", "amd64", releases.ChunkSize+5000)
	old, rOld := releasestest.Binary(t, priv, "1.3.9", "windows", "amd64", 10)
	if _, err := st.AddRelease(ctx, rOld, pub, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddRelease(ctx, r, pub, bytes.NewReader(bin)); err != nil {
		t.Fatal(err)
	}

	res, body := get(t, srv, "/releases/key")
	var k release.KeyInfo
	if res.StatusCode != 200 || json.Unmarshal(body, &k) != nil {
		t.Fatalf("key: %d %s", res.StatusCode, body)
	}
	if got, err := k.Key(); err != nil || !got.Equal(pub) {
		t.Fatalf("key served %x, %v", got, err)
	}

	res, body = get(t, srv, "/releases/latest?os=windows&arch=amd64")
	var info release.Info
	if res.StatusCode != 200 || json.Unmarshal(body, &info) != nil {
		t.Fatalf("latest: %d %s", res.StatusCode, body)
	}
	m, err := info.Manifest()
	if err != nil || m != r.Manifest || release.Verify(pub, m, info.Signature) != nil {
		t.Fatalf("latest announced %+v (%v), want %+v", m, err, r.Manifest)
	}
	for _, q := range []string{"os=windows", "os=plan9&arch=amd64", "os=windows&arch=mips"} {
		if res, _ := get(t, srv, "/releases/latest?"+q); res.StatusCode != 400 {
			t.Errorf("latest?%s: %d, want 400", q, res.StatusCode)
		}
	}
	if res, _ := get(t, srv, "/releases/latest?os=linux&arch=amd64"); res.StatusCode != 404 {
		t.Errorf("latest of a platform without releases: %d", res.StatusCode)
	}

	// The whole binary, then the rest of it from a byte inside the
	// first chunk (a download resumed), then a range across chunks.
	res, body = get(t, srv, info.URL)
	if res.StatusCode != 200 || !bytes.Equal(body, bin) {
		t.Fatalf("binary: %d, %d bytes", res.StatusCode, len(body))
	}
	etag := res.Header.Get("ETag")
	res, body = get(t, srv, info.URL, "Range", "bytes=1000-", "If-Range", etag)
	if res.StatusCode != 206 || !bytes.Equal(body, bin[1000:]) {
		t.Fatalf("resumed: %d, %d bytes", res.StatusCode, len(body))
	}
	from, to := releases.ChunkSize-10, releases.ChunkSize+9
	res, body = get(t, srv, info.URL, "Range", fmt.Sprintf("bytes=%d-%d", from, to))
	if res.StatusCode != 206 || !bytes.Equal(body, bin[from:to+1]) {
		t.Fatalf("range across chunks: %d, %d bytes", res.StatusCode, len(body))
	}
	// A resume against other bytes (another ETag) gets the whole binary.
	res, body = get(t, srv, info.URL, "Range", "bytes=1000-", "If-Range", `"other"`)
	if res.StatusCode != 200 || !bytes.Equal(body, bin) {
		t.Fatalf("resume with a stale ETag: %d, %d bytes", res.StatusCode, len(body))
	}
	for _, p := range []string{"/releases/99/binary", "/releases/x/binary"} {
		if res, _ := get(t, srv, p); res.StatusCode != 404 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
}

func TestHandlerBoundsDownloadsAtOnce(t *testing.T) {
	st := openStore(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	// Larger than what the sockets buffer: the first download holds its
	// slot while its client does not read.
	bin, r := releasestest.Binary(t, priv, "1.4.0", "linux", "amd64", 32<<20)
	rel, err := st.AddRelease(context.Background(), r, pub, bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(releases.Handler(st, releases.Options{MaxDownloads: 1}))
	defer srv.Close()
	url := fmt.Sprintf("%s/releases/%d/binary", srv.URL, rel.ID)
	first, err := http.Get(url)
	if err != nil || first.StatusCode != 200 {
		t.Fatalf("first download: %v %v", first, err)
	}
	defer first.Body.Close() // before srv.Close, which waits for it
	res, _ := get(t, srv, fmt.Sprintf("/releases/%d/binary", rel.ID))
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("second download at once: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// The key and the announcement are not downloads.
	if res, _ := get(t, srv, "/releases/latest?os=linux&arch=amd64"); res.StatusCode != 200 {
		t.Fatalf("latest while a download runs: %d", res.StatusCode)
	}
	b, _ := io.ReadAll(first.Body)
	first.Body.Close()
	if !bytes.Equal(b, bin) {
		t.Fatal("first download differs")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if res, _ := get(t, srv, fmt.Sprintf("/releases/%d/binary", rel.ID)); res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot was not given back")
		}
	}
}
