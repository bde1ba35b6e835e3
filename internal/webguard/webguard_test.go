package webguard

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// local is the address the test connections come in on.
var local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7070}

const own = "127.0.0.1:7070"

type req struct {
	method, host, path string
	origin, site       string // Origin, Sec-Fetch-Site; "" for none
	tls                bool
	noLocal            bool // no local address in the context
}

func (q req) build() *http.Request {
	if q.method == "" {
		q.method = http.MethodGet
	}
	if q.host == "" {
		q.host = own
	}
	if q.path == "" {
		q.path = "/"
	}
	r := httptest.NewRequest(q.method, "http://"+q.host+q.path, nil)
	r.Host = q.host
	if q.origin != "" {
		r.Header.Set("Origin", q.origin)
	}
	if q.site != "" {
		r.Header.Set("Sec-Fetch-Site", q.site)
	}
	if q.tls {
		r.TLS = &tls.ConnectionState{}
	}
	if !q.noLocal {
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
	}
	return r
}

// serve sends q through a guard configured by cfg and returns the answer
// and the refusal's reason (0 when next was reached).
func serve(t *testing.T, cfg Config, q req) (*httptest.ResponseRecorder, Reason) {
	t.Helper()
	var why Reason
	cfg.Deny = func(w http.ResponseWriter, r *http.Request, r2 Reason) {
		why = r2
		http.Error(w, "refusé", http.StatusForbidden)
	}
	reached := false
	h := Handler(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		w.WriteHeader(http.StatusNoContent)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, q.build())
	if reached == (why != 0) {
		t.Fatalf("%+v: next reached %v, refused for %v", q, reached, why)
	}
	return w, why
}

func TestHostChecked(t *testing.T) {
	cfg := Config{Hosts: []string{"Hub.Example.fr"}}
	for _, c := range []struct {
		name string
		q    req
		ok   bool
	}{
		{"the connection's address", req{host: own}, true},
		{"localhost on its port", req{host: "localhost:7070"}, true},
		{"localhost, another case", req{host: "LocalHost:7070"}, true},
		{"a configured name, without case", req{host: "hub.example.FR"}, true},
		{"a configured name without the local address", req{host: "hub.example.fr", noLocal: true}, true},
		{"localhost on another port", req{host: "localhost:8080"}, false},
		{"a hostile name on the port (DNS rebinding)", req{host: "evil.example:7070"}, false},
		{"a hostile name", req{host: "evil.example"}, false},
		{"a name resolving to loopback", req{host: "127.0.0.1.nip.io:7070"}, false},
		{"a configured name on another port", req{host: "hub.example.fr:8443"}, false},
		{"the address without the local address known", req{host: own, noLocal: true}, false},
		{"a write to a hostile name, same-origin for it", req{method: "POST", host: "evil.example:7070", origin: "http://evil.example:7070", site: "same-origin"}, false},
	} {
		_, why := serve(t, cfg, c.q)
		if c.ok != (why == 0) || (!c.ok && why != BadHost) {
			t.Errorf("%s: refused for %v, want allowed %v", c.name, why, c.ok)
		}
	}
}

// The cross-origin rules, as browsers send their headers and as
// non-browser clients (no Origin, no Sec-Fetch-Site) do.
func TestCrossOrigin(t *testing.T) {
	for _, c := range []struct {
		name string
		q    req
		want Reason // 0: allowed
	}{
		// Writes: http.CrossOriginProtection.
		{"same-origin POST", req{method: "POST", origin: "http://" + own, site: "same-origin"}, 0},
		{"same-origin POST, old browser (Origin only)", req{method: "POST", origin: "http://" + own}, 0},
		{"user-initiated POST (Sec-Fetch-Site: none)", req{method: "POST", site: "none"}, 0},
		{"POST without Origin nor Sec-Fetch-Site (curl, scripts)", req{method: "POST"}, 0},
		{"same-origin POST with Origin null (Sec-Fetch-Site decides)", req{method: "POST", origin: "null", site: "same-origin"}, 0},
		{"cross-site POST", req{method: "POST", origin: "http://evil.example", site: "cross-site"}, CrossOrigin},
		{"cross-site POST without Origin", req{method: "POST", site: "cross-site"}, CrossSite},
		{"same-site POST (another port)", req{method: "POST", origin: "http://127.0.0.1:8080", site: "same-site"}, CrossOrigin},
		{"cross-origin POST, old browser", req{method: "POST", origin: "http://evil.example"}, CrossOrigin},
		{"POST with Origin null, old browser", req{method: "POST", origin: "null"}, CrossOrigin},
		{"cross-site PUT", req{method: "PUT", origin: "http://evil.example", site: "cross-site"}, CrossOrigin},
		{"cross-site DELETE", req{method: "DELETE", site: "cross-site"}, CrossSite},
		// Reads: allowed but from another site.
		{"GET", req{}, 0},
		{"same-origin GET", req{site: "same-origin"}, 0},
		{"GET typed in the address bar", req{site: "none"}, 0},
		{"same-origin fetch", req{origin: "http://" + own, site: "same-origin"}, 0},
		{"same-site navigation", req{site: "same-site"}, 0},
		{"HEAD", req{method: "HEAD"}, 0},
		{"cross-site navigation or embedding", req{site: "cross-site"}, CrossSite},
		{"cross-site fetch", req{origin: "http://evil.example", site: "cross-site"}, CrossOrigin},
		{"same-site fetch", req{origin: "http://127.0.0.1:8080", site: "same-site"}, CrossOrigin},
		{"cross-origin fetch, old browser", req{origin: "http://evil.example"}, CrossOrigin},
		{"cross-site HEAD", req{method: "HEAD", site: "cross-site"}, CrossSite},
		{"cross-site OPTIONS", req{method: "OPTIONS", origin: "http://evil.example"}, CrossOrigin},
		// Over TLS the own origin is https.
		{"same-origin POST over TLS", req{method: "POST", origin: "https://" + own, site: "same-origin", tls: true}, 0},
		{"http page fetching over TLS, old browser", req{origin: "http://" + own, tls: true}, CrossOrigin},
	} {
		if _, why := serve(t, Config{}, c.q); why != c.want {
			t.Errorf("%s: refused for %v, want %v", c.name, why, c.want)
		}
	}
}

func TestHeaders(t *testing.T) {
	want := map[string]string{
		"Content-Security-Policy": DefaultCSP,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	}
	for _, c := range []struct {
		name string
		cfg  Config
		q    req
		want map[string]string // "" for absent, beside want's
	}{
		{"a page", Config{}, req{}, map[string]string{"Strict-Transport-Security": ""}},
		{"a refusal", Config{}, req{host: "evil.example"}, nil},
		{"a cross-site refusal", Config{}, req{method: "POST", site: "cross-site"}, nil},
		{"static files, nothing cacheable", Config{}, req{path: "/static/app.css"}, nil},
		{"static files, cacheable", Config{Cacheable: "/static/"}, req{path: "/static/app.css"}, map[string]string{"Cache-Control": ""}},
		{"a page beside cacheable static files", Config{Cacheable: "/static/"}, req{path: "/apercu"}, nil},
		{"over TLS", Config{}, req{tls: true}, map[string]string{"Strict-Transport-Security": "max-age=31536000"}},
		{"another CSP", Config{CSP: "default-src 'self'"}, req{}, map[string]string{"Content-Security-Policy": "default-src 'self'"}},
	} {
		w, _ := serve(t, c.cfg, c.q)
		all := map[string]string{}
		for k, v := range want {
			all[k] = v
		}
		for k, v := range c.want {
			all[k] = v
		}
		for k, v := range all {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", c.name, k, got, v)
			}
		}
	}
}

// Without a Deny function a refusal is a bare 403.
func TestDefaultDeny(t *testing.T) {
	h := Handler(Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Fatal("a cross-site POST reached the handler")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req{method: "POST", origin: "http://evil.example", site: "cross-site"}.build())
	if w.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d, want 403", w.Code)
	}
}

// Through a real listener: the local address comes from the connection.
func TestOverTheNetwork(t *testing.T) {
	srv := httptest.NewServer(Handler(Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{srv.Listener.Addr().String(), "", http.StatusOK},
		{srv.Listener.Addr().String(), srv.URL, http.StatusOK},
		{srv.Listener.Addr().String(), "http://evil.example", http.StatusForbidden},
		{"evil.example", "", http.StatusForbidden},
	} {
		r, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("POST Host %s Origin %q: %d, want %d", c.host, c.origin, res.StatusCode, c.want)
		}
	}
}
