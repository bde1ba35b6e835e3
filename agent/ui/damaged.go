package ui

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/diskspace"
)

// A damaged store (store.DamagedError, found by quick_check when `agent
// serve` opens it) must neither crash the agent nor let it start again
// and again: the agent serves this one page instead of the UI, on the
// same address. It says what happened and offers the way out — restore
// the newest sound backup, with one button for a mediator who has no
// terminal (the agent started from a double-click), and the exact
// command for one who has. Once restored, ServeDamaged returns and the
// agent starts as usual with the restored store.

// DamagedConfig is what the page needs.
type DamagedConfig struct {
	Err *store.DamagedError
	// Command is the restore command, as typed in a terminal.
	Command string
	Logger  *slog.Logger
}

type damagedServer struct {
	cfg      DamagedConfig
	tmpl     *template.Template
	mu       sync.Mutex
	restored chan struct{} // closed once a restore succeeded
	once     sync.Once
}

// damagedView is the page's data.
type damagedView struct {
	Title, Problem, Command, Error, Done string
	Backup                               *store.BackupFile
	BackupText, NoBackup                 string
}

// ServeDamaged serves the damaged store's page on ln until ctx ends
// (restored false) or a restore through the page succeeds (restored
// true, once the answer is sent).
func ServeDamaged(ctx context.Context, ln net.Listener, cfg DamagedConfig) (restored bool, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &damagedServer{cfg: cfg, restored: make(chan struct{}),
		tmpl: template.Must(template.New("damaged").Funcs(funcs).Parse(damagedPage))}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	mux.HandleFunc("GET /{$}", d.get)
	mux.HandleFunc("POST /restaurer", d.post)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusSeeOther) })
	ui := &Server{log: cfg.Logger}
	hs := &http.Server{Handler: ui.guard(mux), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case <-d.restored:
		restored = true
	case err := <-served:
		return false, err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return restored, err
	}
	return restored, nil
}

func (d *damagedServer) view() damagedView {
	v := damagedView{Title: tr("damaged_title"), Problem: strings.Join(d.cfg.Err.Problems, " ; "), Command: d.cfg.Command}
	b, _, err := store.LatestBackup(context.Background(), d.cfg.Err.Dir)
	if err != nil {
		v.NoBackup = tr("damaged_no_backup", filepath.Join(d.cfg.Err.Dir, store.BackupDir), d.cfg.Err.Dir)
		return v
	}
	v.Backup = &b
	v.BackupText = tr("damaged_backup", b.Taken.Local().Format("02/01/2006 à 15:04"), diskspace.Format(uint64(b.Bytes)))
	return v
}

func (d *damagedServer) render(w http.ResponseWriter, status int, v damagedView) {
	var buf bytes.Buffer
	if err := d.tmpl.Execute(&buf, v); err != nil {
		d.cfg.Logger.Error("rendering the damaged store's page", "err", err)
		http.Error(w, tr("internal_error"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (d *damagedServer) get(w http.ResponseWriter, r *http.Request) {
	d.render(w, http.StatusServiceUnavailable, d.view())
}

// post restores the backup the page showed, if it is still the newest
// sound one: never a file the request names.
func (d *damagedServer) post(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.restored:
		d.render(w, http.StatusOK, damagedView{Title: tr("damaged_title"), Done: tr("damaged_restored")})
		return
	default:
	}
	v := d.view()
	if v.Backup == nil || r.PostFormValue("sauvegarde") != v.Backup.Name() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	// Not cut short by a browser that goes away: a restore runs whole
	// or puts everything back.
	_, err := store.Restore(context.WithoutCancel(r.Context()), d.cfg.Err.Dir, store.RestoreOptions{From: v.Backup.Path})
	if err != nil {
		d.cfg.Logger.Error("restore from the damaged store's page failed", "err", err)
		v.Error = tr("damaged_failed", restoreErrorText(err))
		d.render(w, http.StatusConflict, v)
		return
	}
	d.cfg.Logger.Warn("damaged store replaced by a backup", "backup", v.Backup.Name())
	d.render(w, http.StatusOK, damagedView{Title: tr("damaged_title"), Done: tr("damaged_restored")})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	d.once.Do(func() { close(d.restored) })
}

// restoreErrorText says why a restore failed, in French.
func restoreErrorText(err error) string {
	switch {
	case errors.Is(err, store.ErrInUse):
		return "le magasin est ouvert par un autre programme ; fermez-le, puis réessayez."
	case errors.Is(err, store.ErrOtherDevice):
		return "cette sauvegarde est celle d'un autre poste."
	}
	return "voyez le journal de l'agent, ou utilisez la commande ci-dessous."
}

const damagedPage = `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — {{t "app_name"}}</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<header class="top"><div class="brand">{{t "app_name"}}</div></header>
<main id="main">
<h1>{{.Title}}</h1>
{{if .Done}}<p class="flash" role="status" id="restored">{{.Done}}</p>{{else}}
{{with .Error}}<p class="error" role="alert" id="page-error">{{.}}</p>{{end}}
<p>{{t "damaged_intro"}}</p>
{{if .Backup}}<p id="backup">{{.BackupText}}</p>
<form method="post" action="/restaurer"><input type="hidden" name="sauvegarde" value="{{.Backup.Name}}"><button type="submit" id="restore">{{t "damaged_restore"}}</button></form>
<p>{{t "damaged_after"}}</p>
<p>{{t "damaged_terminal"}}</p>
<pre id="command"><code>{{.Command}}</code></pre>
{{else}}<p class="error" id="no-backup">{{.NoBackup}}</p>{{end}}
<p>{{t "damaged_help"}}</p>
<details><summary>{{t "damaged_detail"}}</summary><p id="problem">{{.Problem}}</p></details>
{{end}}
</main>
</body>
</html>`
