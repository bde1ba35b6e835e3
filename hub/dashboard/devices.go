package dashboard

import (
	"errors"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"numeribus/hub/accounts"
	"numeribus/hub/enrollment"
	"numeribus/hub/store"
)

// deviceRow is one device as the devices page and API show it.
type deviceRow struct {
	Name            string    `json:"name"`
	Team            string    `json:"team"`
	AgentVersion    string    `json:"agent_version"`
	EnrolledAt      time.Time `json:"enrolled_at"`
	LastSeen        time.Time `json:"last_seen"`
	LastSync        time.Time `json:"last_sync"`
	ChangesReceived int64     `json:"changes_received"`
	ClockOffsetMs   int64     `json:"clock_offset_ms"`
	Revoked         bool      `json:"revoked"`
	RevokedAt       time.Time `json:"revoked_at"`
	// Stale: not revoked and no complete sync for longer than the
	// threshold (or never, once enrolled for longer than it).
	Stale     bool `json:"stale"`
	StaleDays int  `json:"stale_days"`
}

// State is the French state of the device for the table.
func (d deviceRow) State() string {
	switch {
	case d.Revoked:
		return tr("state_revoked", d.RevokedAt.In(paris).Format("02/01/2006"))
	case d.Stale && d.LastSync.IsZero():
		return tr("state_never")
	case d.Stale:
		return tr("state_stale", d.StaleDays)
	}
	return tr("state_ok")
}

// ClockOffset shows the offset in seconds with one decimal.
func (d deviceRow) ClockOffset() string {
	return tr("clock_offset", frDec(float64(d.ClockOffsetMs)/1000))
}

func (s *Server) deviceRows(r *http.Request) ([]deviceRow, error) {
	ds, err := s.cfg.Store.Devices(r.Context())
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]deviceRow, 0, len(ds))
	for _, d := range ds {
		row := deviceRow{Name: d.Name, Team: d.Team, AgentVersion: d.AgentVersion, EnrolledAt: d.EnrolledAt, LastSeen: d.LastSeen,
			LastSync: d.LastSync, ChangesReceived: d.ChangesReceived, ClockOffsetMs: d.ClockOffsetMs, Revoked: d.Revoked(), RevokedAt: d.RevokedAt}
		since := d.LastSync
		if since.IsZero() {
			since = d.EnrolledAt
		}
		if !row.Revoked && now.Sub(since) > s.cfg.StaleAfter {
			row.Stale = true
			row.StaleDays = int(now.Sub(since) / (24 * time.Hour))
		}
		out = append(out, row)
	}
	return out, nil
}

type devicesData struct {
	Devices    []deviceRow
	Stale      int
	StaleDays  int
	Issued     *issuedView
	EnrollForm enrollForm
}

type enrollForm struct {
	Name, Team, Days string
	Problem          string
}

type issuedView struct {
	enrollment.Issued
	QR      template.HTML // inline SVG, or empty when the code does not fit
	Expires string
}

func (s *Server) getDevices(w http.ResponseWriter, r *http.Request) {
	s.showDevices(w, r, http.StatusOK, nil, enrollForm{Days: "7"}, "")
}

func (s *Server) showDevices(w http.ResponseWriter, r *http.Request, status int, issued *issuedView, f enrollForm, flash string) {
	rows, err := s.deviceRows(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := devicesData{Devices: rows, StaleDays: int(s.cfg.StaleAfter / (24 * time.Hour)), Issued: issued, EnrollForm: f}
	for _, row := range rows {
		if row.Stale {
			d.Stale++
		}
	}
	p := s.page(r, "title_devices", d)
	p.Flash = flash
	// After a revocation the redirect names the device; the message is
	// shown only if that device is indeed revoked, so that a crafted
	// link cannot make the page say so.
	if ok := r.URL.Query().Get("ok"); flash == "" && ok != "" {
		for _, row := range rows {
			if row.Name == ok && row.Revoked {
				p.Flash = tr("revoked", ok)
			}
		}
	}
	s.render(w, r, status, "devices", p)
}

// deviceName is what a device name may hold: it is shown, typed in
// commands and put in URLs.
var deviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// postEnroll creates an enrollment code through the same path as
// `hub enroll` and shows it as text and as a QR code.
func (s *Server) postEnroll(w http.ResponseWriter, r *http.Request) {
	f := enrollForm{Name: strings.TrimSpace(r.PostFormValue("name")), Team: strings.TrimSpace(r.PostFormValue("team")),
		Days: strings.TrimSpace(r.PostFormValue("days"))}
	days, err := strconv.Atoi(f.Days)
	if !deviceName.MatchString(f.Name) || !deviceName.MatchString(f.Team) || err != nil || days < 1 || days > 30 {
		f.Problem = tr("enroll_bad")
		s.showDevices(w, r, http.StatusUnprocessableEntity, nil, f, "")
		return
	}
	for _, d := range mustDevices(s, r) {
		if d.Name == f.Name {
			f.Problem = tr("enroll_failed", tr("enroll_name_taken"))
			s.showDevices(w, r, http.StatusConflict, nil, f, "")
			return
		}
	}
	is, err := enrollment.Issue(r.Context(), s.cfg.Store, enrollment.Request{Name: f.Name, Team: f.Team, URL: s.cfg.SyncURL,
		Fingerprint: s.cfg.Fingerprint, TTL: time.Duration(days) * 24 * time.Hour, Now: s.cfg.Now()})
	if err != nil {
		s.log.Error("enrollment from the dashboard failed", "device", f.Name, "err", err)
		f.Problem = tr("enroll_failed", tr("internal_error"))
		s.showDevices(w, r, http.StatusInternalServerError, nil, f, "")
		return
	}
	s.audit(r, accounts.ActionEnrollCreated, f.Name+" (équipe "+f.Team+")")
	v := &issuedView{Issued: is, Expires: is.Expires.In(paris).Format("02/01/2006 15:04")}
	if svg, err := qrSVG(is.Code, tr("enroll_qr_alt", is.Name)); err == nil {
		v.QR = svg
	} else {
		s.log.Warn("enrollment QR code not drawn", "err", err)
	}
	s.showDevices(w, r, http.StatusOK, v, enrollForm{Days: "7"}, "")
}

// mustDevices lists devices for a check; an error is left to the
// store's own check that follows.
func mustDevices(s *Server, r *http.Request) []store.Device {
	ds, _ := s.cfg.Store.Devices(r.Context())
	return ds
}

func (s *Server) findDevice(r *http.Request) (store.Device, bool, error) {
	name := r.PathValue("name")
	ds, err := s.cfg.Store.Devices(r.Context())
	if err != nil {
		return store.Device{}, false, err
	}
	for _, d := range ds {
		if d.Name == name {
			return d, true, nil
		}
	}
	return store.Device{}, false, nil
}

func (s *Server) getRevoke(w http.ResponseWriter, r *http.Request) {
	d, ok, err := s.findDevice(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, tr("revoke_unknown"))
		return
	}
	s.render(w, r, http.StatusOK, "revoke", s.page(r, "title_revoke", d))
}

func (s *Server) postRevoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.cfg.Store.Revoke(r.Context(), name, s.cfg.Now())
	if errors.Is(err, store.ErrNoDevice) {
		s.errorPage(w, r, http.StatusNotFound, tr("revoke_unknown"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, accounts.ActionDeviceRevoked, name)
	http.Redirect(w, r, "/postes?ok="+urlQueryEscape(name), http.StatusSeeOther)
}

func (s *Server) apiDevices(w http.ResponseWriter, r *http.Request) {
	rows, err := s.deviceRows(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stale_after_days": int(s.cfg.StaleAfter / (24 * time.Hour)), "devices": rows})
}
