package ui

import (
	"fmt"
	"net/http"
	"strings"

	"numeribus/internal/domain"
	"numeribus/internal/retention"
)

// Notice is what the printed information notice says that the software
// cannot know: who is responsible for the data and whom to contact. An
// empty field prints as a blank line, to be filled in by hand.
type Notice struct {
	// Structure: name and address of the structure responsible for the
	// data (the mediators' employer).
	Structure string
	// Contact: how to reach it to exercise one's rights (e-mail, phone,
	// the data protection officer).
	Contact string
	// Retention: how long identifying data is kept. Empty: the periods
	// the hub set (internal/retention), the defaults of shared/DOMAIN.md
	// (2 years after the last activity) until it has.
	Retention string
}

// noticeView is what the notice page shows.
type noticeView struct {
	Notice
	Configured bool
	Personal   string // the personal fields' labels, "prénom, nom, …"
	Version    string
}

// getNotice shows the information notice: one A4 page once printed, no
// personal data at all, the same for everyone (the person's page and the
// consent forms link to it).
func (s *Server) getNotice(w http.ResponseWriter, r *http.Request) {
	n := s.cfg.Notice
	if n.Retention == "" {
		n.Retention = tr("notice_retention_default")
		// Periods the hub set, once received, replace the defaults.
		if p, err := s.cfg.Store.Retention(r.Context()); err == nil && !p.Equal(retention.Default()) {
			n.Retention = fmt.Sprintf(tr("notice_retention_policy"), retention.FormatMonths(p.Months(retention.Identite)),
				retention.FormatMonths(p.Months(retention.Diagnostics)))
		}
	}
	var labels []string
	for _, f := range domain.Fields(domain.KindBeneficiary) {
		if f.Personal {
			labels = append(labels, strings.ToLower(tr("f."+f.Name)))
		}
	}
	v := noticeView{Notice: n, Configured: n.Structure != "" && n.Contact != "",
		Personal: strings.Join(labels, ", "), Version: ConsentTextVersion}
	s.render(w, r, http.StatusOK, "notice", s.page(r, "title_notice", v))
}
