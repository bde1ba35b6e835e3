package ui

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"time"
)

// Running reports whether an agent's interface of this very version
// answers on addr: its script is byte for byte the one embedded here. A
// second double-click on the program then opens the browser on the
// first one instead of failing on a busy port; another program on that
// port is not taken for it.
func Running(addr string) bool {
	want, err := fs.ReadFile(staticFS(), "app.js")
	if err != nil {
		return false
	}
	c := http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get("http://" + addr + "/static/app.js")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(want))+1))
	return err == nil && resp.StatusCode == http.StatusOK && bytes.Equal(got, want)
}
