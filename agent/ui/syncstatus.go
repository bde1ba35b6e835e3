package ui

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"numeribus/agent/store"
	"numeribus/internal/domain"
)

// OnlineWithin is how recent the last contact with the hub must be for
// the agent to show as online. With a live connection the hub pings every
// 20 s; without Config.Live, a round recorded in the store counts.
const OnlineWithin = 2 * time.Minute

// syncView is the sync indicator of every page's header. It holds no
// personal data and is readable while locked.
type syncView struct {
	Pending  uint64 `json:"pending_changes"`
	LastSync string `json:"last_sync_text"` // relative, in French
	Online   bool   `json:"online"`
	// LastContact is the last exchange with the hub, relative, in French.
	LastContact string `json:"last_contact_text"`
	LastError   string `json:"last_error_text,omitempty"`
	Device      string `json:"hub_device,omitempty"`
	Enrolled    bool   `json:"enrolled"`
	CanSyncNow  bool   `json:"can_sync_now"`
	// Refused lists the changes the hub refused (store.RejectedChanges):
	// what they were and what to do, without record content.
	Refused []refusedView `json:"refused,omitempty"`
}

// refusedView is one change the hub refused, as the header lists it.
type refusedView struct {
	Record string `json:"record"` // kind and id
	Href   string `json:"href,omitempty"`
	Text   string `json:"text"`
}

func (s *Server) syncView(r *http.Request) syncView {
	ctx := r.Context()
	var v syncView
	now := s.cfg.Now()
	if last, acked, err := s.cfg.Store.Seqs(ctx); err == nil {
		v.Pending = last - min(acked, last)
	}
	v.LastSync = tr("sync_never")
	var contact time.Time
	if st, err := s.cfg.Store.SyncState(ctx); err == nil {
		if t, err := time.Parse(time.RFC3339, st.LastSync); err == nil {
			v.LastSync = relTime(now, t)
		}
		if t, err := time.Parse(time.RFC3339, st.LastContact); err == nil {
			contact = t
		}
		if st.LastError != "" {
			v.LastError = plainSyncError(st.LastError)
		}
	}
	// The store's contact is written after a connection's first round and
	// about once a minute after; the live loop knows better, from memory, and knows
	// when its connection is gone. Without a loop, a recent recorded
	// contact (a round of « Synchroniser maintenant ») counts.
	connected := true
	if s.cfg.Live != nil {
		var heard time.Time
		connected, heard = s.cfg.Live()
		if heard.After(contact) {
			contact = heard
		}
	}
	v.Online = connected && !contact.IsZero() && now.Sub(contact) < OnlineWithin
	v.LastContact = tr("sync_never")
	if !contact.IsZero() {
		v.LastContact = relTime(now, contact)
	}
	if h, err := s.cfg.Store.Hub(ctx); err == nil {
		v.Enrolled, v.Device = true, h.DeviceName
	} else if !errors.Is(err, store.ErrNotEnrolled) {
		s.log.Warn("reading hub", "err", err)
	}
	v.CanSyncNow = s.cfg.Sync != nil
	if rs, err := s.cfg.Store.RejectedChanges(ctx); err == nil {
		for _, r := range rs {
			rv := refusedView{Record: r.Kind.Label() + " " + r.ID.String(), Text: r.Explain()}
			if r.Kind == domain.KindBeneficiary {
				rv.Href = "/beneficiaires/" + r.ID.String()
			}
			v.Refused = append(v.Refused, rv)
		}
	} else {
		s.log.Warn("reading refused changes", "err", err)
	}
	return v
}

// plainSyncError turns a sync error into words a mediator can act on.
func plainSyncError(e string) string {
	l := strings.ToLower(e)
	switch {
	case strings.Contains(l, "revoked") || strings.Contains(l, "révoqu"):
		return tr("syncerr_revoked")
	case strings.Contains(l, "certificate") || strings.Contains(l, "fingerprint") || strings.Contains(l, "x509"):
		return tr("syncerr_cert")
	case strings.Contains(l, "not enrolled"):
		return tr("syncerr_not_enrolled")
	case strings.Contains(l, "clock") || strings.Contains(l, "skew"):
		return tr("syncerr_clock")
	case strings.Contains(l, "locked"):
		return tr("syncerr_locked")
	case strings.Contains(l, "unreachable") || strings.Contains(l, "dial") || strings.Contains(l, "timeout") ||
		strings.Contains(l, "refused") || strings.Contains(l, "no such host") || strings.Contains(l, "network") ||
		strings.Contains(l, "deadline") || strings.Contains(l, "eof") || strings.Contains(l, "reset"):
		return tr("syncerr_unreachable")
	}
	return tr("syncerr_other")
}
