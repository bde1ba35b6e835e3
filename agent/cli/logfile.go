package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Log files of `agent app`, which has no terminal to read: DIR/logs/
// agent.log and, before it, agent.log.1 … agent.log.N, each at most
// logMax bytes, so that a laptop nobody looks after for months never
// fills its disk with logs. The agent logs ids, counts and errors only,
// never a personal value (docs/SECURITY.md).
const (
	logDir  = "logs"
	logName = "agent.log"
	logMax  = 1 << 20 // bytes per file
	logKeep = 3       // older files kept
)

// rotatingFile is an io.Writer appending to path, which it renames to
// path.1 (path.1 to path.2…, the oldest dropped) when a write would take
// it past max bytes. One write is never split across two files.
type rotatingFile struct {
	path string
	max  int64
	keep int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// openLog opens (appending) the rotating log file path, its directory
// and files kept to the account that runs the agent.
func openLog(path string, max int64, keep int) (*rotatingFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("dossier du journal : %w", err)
	}
	w := &rotatingFile{path: path, max: max, keep: keep}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *rotatingFile) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal : %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("journal : %w", err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would not fit.
func (w *rotatingFile) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, os.ErrClosed
	}
	if w.size > 0 && w.size+int64(len(p)) > w.max {
		if err := w.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// rotate shifts the files by one. Should a rename fail (on Windows, a
// file another program holds open cannot be renamed), the current file
// starts again empty rather than grow past the cap.
func (w *rotatingFile) rotate() error {
	w.f.Close()
	w.f = nil
	os.Remove(fmt.Sprintf("%s.%d", w.path, w.keep))
	for i := w.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", w.path, i), fmt.Sprintf("%s.%d", w.path, i+1))
	}
	if w.keep < 1 || os.Rename(w.path, w.path+".1") != nil {
		if err := os.Truncate(w.path, 0); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("journal : %w", err)
		}
	}
	return w.open()
}

// Close closes the current file.
func (w *rotatingFile) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
