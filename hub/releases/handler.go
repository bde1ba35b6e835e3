package releases

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"numeribus/internal/release"
)

// Options tune Handler.
type Options struct {
	Logger *slog.Logger
	// MaxDownloads bounds the binaries served at once by this instance
	// (default DefaultMaxDownloads); beyond, 503 and Retry-After: the
	// agent tries again at its next check.
	MaxDownloads int
}

// DefaultMaxDownloads: a chunk and TLS buffers each, about 130 KiB, so
// some 33 MiB at most for downloads that can last half an hour each.
const DefaultMaxDownloads = 256

// Handler serves, on the hub's TLS listener (the certificate the agents
// pinned), without a session:
//
//	GET /releases/key                       the release public key (KeyInfo), 404 before the first release
//	GET /releases/latest?os=windows&arch=amd64  the newest release of that platform (Info), 404 when none
//	GET /releases/{id}/binary               its bytes, with byte ranges (a download resumes)
//
// Nothing here needs authenticating: a key and binaries are public, and
// what makes a binary trusted is the signature the agent checks, not the
// channel (docs/SECURITY.md, "Agent releases").
func Handler(st Store, o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxDownloads <= 0 {
		o.MaxDownloads = DefaultMaxDownloads
	}
	h := &handler{st: st, log: o.Logger, slots: make(chan struct{}, o.MaxDownloads)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /releases/key", h.key)
	mux.HandleFunc("GET /releases/latest", h.latest)
	mux.HandleFunc("GET /releases/{id}/binary", h.binary)
	return mux
}

type handler struct {
	st    Store
	log   *slog.Logger
	slots chan struct{} // one per download being served
}

func (h *handler) fail(w http.ResponseWriter, status int, msg string, err error) {
	if err != nil {
		h.log.Warn("release request failed", "err", err)
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (h *handler) key(w http.ResponseWriter, r *http.Request) {
	k, ok, err := h.st.ReleaseKey(r.Context())
	switch {
	case err != nil:
		h.fail(w, http.StatusInternalServerError, "internal error", err)
	case !ok:
		h.fail(w, http.StatusNotFound, "this hub has no release key yet (no release added)", nil)
	default:
		writeJSON(w, http.StatusOK, release.KeyInfo{PublicKey: k, ID: release.KeyID(k)})
	}
}

func (h *handler) latest(w http.ResponseWriter, r *http.Request) {
	os, arch := r.URL.Query().Get("os"), r.URL.Query().Get("arch")
	if !slices.Contains(release.OSes, os) || !slices.Contains(release.Arches, arch) {
		h.fail(w, http.StatusBadRequest, fmt.Sprintf("os and arch must be one of %v and %v", release.OSes, release.Arches), nil)
		return
	}
	rs, err := h.st.Releases(r.Context())
	if err != nil {
		h.fail(w, http.StatusInternalServerError, "internal error", err)
		return
	}
	rel, ok := Latest(rs, os, arch)
	if !ok {
		h.fail(w, http.StatusNotFound, "no release for "+os+"/"+arch, nil)
		return
	}
	writeJSON(w, http.StatusOK, release.InfoOf(rel.Manifest, rel.Signature, fmt.Sprintf("/releases/%d/binary", rel.ID)))
}

func (h *handler) binary(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		h.fail(w, http.StatusNotFound, "no such release", nil)
		return
	}
	rs, err := h.st.Releases(r.Context())
	if err != nil {
		h.fail(w, http.StatusInternalServerError, "internal error", err)
		return
	}
	i := slices.IndexFunc(rs, func(x Release) bool { return x.ID == id })
	if i < 0 {
		h.fail(w, http.StatusNotFound, "no such release", nil)
		return
	}
	rel := rs[i]
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "600")
		h.fail(w, http.StatusServiceUnavailable, "too many downloads at once: try again later", nil)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	// The SHA-256 names the bytes: a resumed download asks If-Range with
	// it, and gets the whole binary again if it changed.
	w.Header().Set("ETag", `"`+hex.EncodeToString(rel.SHA256[:])+`"`)
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", time.Time{}, &chunkReader{ctx: r.Context(), st: h.st, id: rel.ID, size: rel.Size, n: -1})
}

// chunkReader reads a stored binary a chunk at a time, for
// http.ServeContent (which seeks to a range's start).
type chunkReader struct {
	ctx  context.Context
	st   Store
	id   int64
	size int64
	off  int64
	n    int64 // number of the chunk in buf, -1 for none
	buf  []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.off >= c.size {
		return 0, io.EOF
	}
	n := c.off / ChunkSize
	if n != c.n {
		b, err := c.st.ReleaseChunk(c.ctx, c.id, n)
		if err != nil {
			return 0, err
		}
		if want := min(ChunkSize, c.size-n*ChunkSize); int64(len(b)) != want {
			return 0, fmt.Errorf("release %d: chunk %d holds %d bytes, want %d", c.id, n, len(b), want)
		}
		c.buf, c.n = b, n
	}
	k := copy(p, c.buf[c.off-c.n*ChunkSize:])
	c.off += int64(k)
	return k, nil
}

func (c *chunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.off
	case io.SeekEnd:
		offset += c.size
	default:
		return 0, errors.New("bad whence")
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	c.off = offset
	return offset, nil
}
