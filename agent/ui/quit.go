package ui

import "net/http"

// postQuit stops the program (« Quitter », shown when Config.Quit is
// set, as in `agent app`): the store is locked first, so that the key
// leaves memory even before the process ends; the page says the program
// stopped and may be closed. A locked session may quit too: stopping
// reveals nothing, and a mediator must not have to unlock to stop.
// Other sites cannot make a browser post here (internal/webguard).
func (s *Server) postQuit(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Quit == nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.lockLocked()
	s.mu.Unlock()
	s.log.Info("stopping: « Quitter » in the UI")
	p := s.page(r, "title_stopped", nil)
	p.CanQuit = false
	// Nothing more will be served on this connection.
	w.Header().Set("Connection", "close")
	s.render(w, r, http.StatusOK, "stopped", p)
	// Serve's shutdown waits for this answer to be sent.
	s.cfg.Quit()
}
