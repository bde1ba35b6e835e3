package ui

import (
	"errors"

	"numeribus/agent/store"
	"numeribus/internal/diskspace"
)

// Low disk (agent/store/disk.go): a save refused for want of room says
// so next to the form, which keeps what was typed; every page shows a
// banner while the disk is low, before saves are refused.

// diskRefused returns the message of a save refused for want of room,
// and whether err is one.
func diskRefused(err error) (string, bool) {
	var dl *store.DiskLowError
	if !errors.As(err, &dl) {
		return "", false
	}
	return tr("disk_refused", diskspace.Format(dl.Avail)), true
}

// diskBanner is the banner of every page: empty while the disk has room.
func (s *Server) diskBanner() string {
	d := s.cfg.Store.Disk()
	switch {
	case d.Refusing:
		return tr("disk_banner_refusing", diskspace.Format(d.Avail))
	case d.Low:
		return tr("disk_banner_low", diskspace.Format(d.Avail), diskspace.Format(store.MinFreeBytes))
	}
	return ""
}
