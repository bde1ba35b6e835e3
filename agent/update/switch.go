package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"numeribus/internal/release"
)

// FS is the file operations of a switch: the operating system's (OSFS),
// or in tests one that keeps Windows' rules — a running executable can
// be renamed but neither removed nor replaced — on any system.
type FS interface {
	Rename(oldpath, newpath string) error
	Remove(name string) error
	Stat(name string) (fs.FileInfo, error)
	Open(name string) (io.ReadCloser, error)
	// WriteFile writes a small file whole and durably (temporary file,
	// sync, rename).
	WriteFile(name string, data []byte) error
	// Copy makes dst a synced copy of src with mode perm.
	Copy(dst, src string, perm fs.FileMode) error
}

// Runner starts a program: the new version on trial, or the previous one
// put back.
type Runner interface {
	Start(path string, args, env []string) (Child, error)
}

// Child is a started program.
type Child interface {
	Done() <-chan struct{}
	ExitCode() int // once Done
	Stop()         // asks it to end (an interrupt; on Windows, the end)
	Kill()
}

// DefaultGrace is how long a new version has to write its marker.
const DefaultGrace = 60 * time.Second

// Switch installs a staged release at the start of `agent serve`.
type Switch struct {
	Dir     string   // the agent's data directory
	Exe     string   // the running executable
	Version string   // the running program's
	Args    []string // the command line, given to the program started
	Env     []string // its environment
	Grace   time.Duration
	FS      FS
	Run     Runner
	// Say tells the person at the screen, in French, what happens.
	Say func(msg string)
	Log *slog.Logger
	Now func() time.Time
}

// Outcome is what AtStart did: Ran when a started program (the new
// version, or the previous one put back) ran the command, whose exit
// code is then this process's; otherwise the running program goes on
// with its command.
type Outcome struct {
	Ran  bool
	Exit int
}

// Paths beside the executable: agent.prev (the previous version, kept
// to go back), agent.new (the staged binary copied beside, so that the
// renames stay on one volume), agent.bad (a version that failed, on its
// way out). On Windows: agent.prev.exe…
func (s *Switch) sibling(tag string) string {
	dir, base := filepath.Split(s.Exe)
	ext := filepath.Ext(base)
	if !strings.EqualFold(ext, ".exe") {
		ext = ""
	}
	return filepath.Join(dir, strings.TrimSuffix(base, ext)+"."+tag+ext)
}

func (s *Switch) upd(name string) string { return filepath.Join(s.Dir, SubDir, name) }

func (s *Switch) marker(version string) string { return s.upd(markerPrefix + version) }

func (s *Switch) exists(p string) bool {
	_, err := s.FS.Stat(p)
	return err == nil
}

func (s *Switch) readJSON(p string, v any) error {
	f, err := s.FS.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(v)
}

func (s *Switch) writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.FS.WriteFile(p, append(b, '\n'))
}

// remove removes p; a file already gone is fine.
func (s *Switch) remove(p string) error {
	if err := s.FS.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (s *Switch) defaults() {
	if s.Grace == 0 {
		s.Grace = DefaultGrace
	}
	if s.Say == nil {
		s.Say = func(string) {}
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
}

// AtStart installs a staged release, if there is one for this program to
// install, and runs it on trial; or finishes a switch a previous start
// left. It never fails: whatever goes wrong is said and logged, and the
// running program goes on (Outcome.Ran false) or the one put back runs.
func (s *Switch) AtStart(ctx context.Context) Outcome {
	s.defaults()
	// A failed version left by a rollback that could not remove it
	// (Windows: it still ran).
	s.remove(s.sibling("bad"))
	var t trial
	if s.readJSON(s.upd(trialInfo), &t) == nil {
		switch {
		case s.exists(s.marker(t.Version)):
			// It had started; the program that ran its trial went before
			// saying so.
			s.confirm(t)
		case t.Version == s.Version:
			// This is the new version, started again without having said
			// it started the first time: the previous one comes back.
			s.Say(fmt.Sprintf("La version %s n'avait pas confirmé son démarrage : retour à la version %s.", t.Version, t.Previous))
			if err := s.rollback(t, "démarrage non confirmé", true); err != nil {
				s.Say(fmt.Sprintf("Retour à la version %s impossible (%v) : la version %s continue.", t.Previous, err, t.Version))
				return Outcome{}
			}
			return s.runPrevious(ctx)
		default:
			// The switch did not go through (the program stopped in the
			// middle): this program is still in place; forget it, the
			// staged release is tried again below.
			s.Log.Warn("an unfinished update switch is forgotten", "version", t.Version)
			s.remove(s.sibling("new"))
			s.remove(s.upd(trialInfo))
		}
	}
	var st Staged
	if err := s.readJSON(s.upd(stagedInfo), &st); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.Log.Warn("staged update unreadable: ignored", "err", err)
		}
		return Outcome{}
	}
	if !release.IsRelease(s.Version) {
		return Outcome{} // a development build never switches
	}
	if newer, err := release.Newer(st.Version, s.Version); err != nil || !newer || st.OS+"/"+st.Arch != Platform() {
		s.Log.Info("staged update not newer than this program, or not for it: removed", "version", st.Version)
		s.dropStaged()
		return Outcome{}
	}
	var bad []Bad
	if err := s.readJSON(s.upd(badInfo), &bad); err == nil {
		if _, ok := isBad(bad, st.Version); ok {
			s.dropStaged()
			return Outcome{}
		}
	}
	return s.install(ctx, st)
}

func (s *Switch) dropStaged() {
	s.remove(s.upd(stagedInfo))
	s.remove(s.upd(stagedBin))
}

// install copies the staged binary beside the executable, renames the
// executable to agent.prev and the copy to its place, and runs it on
// trial.
func (s *Switch) install(ctx context.Context, st Staged) Outcome {
	newPath, prev := s.sibling("new"), s.sibling("prev")
	fail := func(what string, err error) Outcome {
		s.Log.Warn("update not installed", "version", st.Version, "step", what, "err", err)
		s.Say(fmt.Sprintf("Mise à jour %s non installée (%s : %v) : la version %s continue ; nouvel essai au prochain démarrage.", st.Version, what, err, s.Version))
		s.remove(newPath)
		s.remove(s.upd(trialInfo))
		return Outcome{}
	}
	mode := fs.FileMode(0o755)
	if fi, err := s.FS.Stat(s.Exe); err == nil {
		mode = fi.Mode().Perm() | 0o100
	}
	if err := s.FS.Copy(newPath, s.upd(stagedBin), mode); err != nil {
		return fail("copie à côté du programme", err)
	}
	if sum, err := s.sha256(newPath); err != nil || sum != st.SHA256 {
		if err == nil {
			err = fmt.Errorf("empreinte %s au lieu de %s", sum, st.SHA256)
			s.dropStaged() // the staged bytes changed on disk: downloaded again
		}
		return fail("vérification de la copie", err)
	}
	t := trial{Version: st.Version, Previous: s.Version, SHA256: st.SHA256, At: s.Now().UTC()}
	if err := s.writeJSON(s.upd(trialInfo), t); err != nil {
		return fail("état de la mise à jour", err)
	}
	s.remove(s.marker(st.Version))
	if err := s.remove(prev); err != nil {
		return fail("retrait de l'avant-dernière version", err)
	}
	// Rename, then move: a running program can be renamed, even on
	// Windows, but not overwritten.
	if err := s.FS.Rename(s.Exe, prev); err != nil {
		return fail("mise de côté de la version en cours", err)
	}
	if err := s.FS.Rename(newPath, s.Exe); err != nil {
		if rerr := s.FS.Rename(prev, s.Exe); rerr != nil {
			s.Log.Error("the executable could not be put back", "err", rerr)
		}
		return fail("mise en place", err)
	}
	s.Say(fmt.Sprintf("Mise à jour : démarrage de la version %s (la version %s est gardée : %s).", st.Version, s.Version, filepath.Base(prev)))
	child, err := s.Run.Start(s.Exe, s.Args, append(append([]string{}, s.Env...), MarkerEnv+"="+s.marker(st.Version)))
	if err != nil {
		return s.failed(t, fmt.Sprintf("ne se lance pas : %v", err), true)
	}
	started, interrupted := s.await(ctx, child, st.Version)
	if !started {
		child.Kill()
		<-child.Done()
		if interrupted {
			return s.failed(t, "démarrage interrompu", false)
		}
		return s.failed(t, fmt.Sprintf("arrêtée sans avoir démarré (code %d)", child.ExitCode()), true)
	}
	s.confirm(t)
	s.Say(fmt.Sprintf("Version %s installée.", st.Version))
	s.Log.Info("update installed", "version", st.Version, "previous", s.Version)
	return s.proxy(ctx, child)
}

// await waits for the marker of version, the child's end, the grace
// period or ctx, whichever first.
func (s *Switch) await(ctx context.Context, child Child, version string) (started, interrupted bool) {
	deadline := time.NewTimer(s.Grace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-child.Done():
			return s.exists(s.marker(version)), false
		case <-tick.C:
			if s.exists(s.marker(version)) {
				return true, false
			}
		case <-deadline.C:
			return s.exists(s.marker(version)), false
		case <-ctx.Done():
			return s.exists(s.marker(version)), true
		}
	}
}

// failed puts the previous version back after a failed trial; when bad,
// the version is remembered and never installed again. The running
// program — the previous version — then goes on with its command.
func (s *Switch) failed(t trial, reason string, bad bool) Outcome {
	if err := s.rollback(t, reason, bad); err != nil {
		s.Log.Error("update rollback failed", "version", t.Version, "err", err)
		s.Say(fmt.Sprintf("La version %s %s, et la version %s n'a pas pu être remise en place (%v) : réinstallez l'agent.", t.Version, reason, t.Previous, err))
		return Outcome{}
	}
	if bad {
		s.Say(fmt.Sprintf("La version %s %s : retour à la version %s ; cette version ne sera plus installée.", t.Version, reason, t.Previous))
	} else {
		s.Say(fmt.Sprintf("Mise à jour %s interrompue : la version %s reste en place.", t.Version, t.Previous))
	}
	return Outcome{}
}

// rollback renames the executable (the failed version) away and
// agent.prev back to its place.
func (s *Switch) rollback(t trial, reason string, bad bool) error {
	prev, gone := s.sibling("prev"), s.sibling("bad")
	if !s.exists(prev) {
		return errors.New("pas de version précédente (" + filepath.Base(prev) + ")")
	}
	s.remove(gone)
	if err := s.FS.Rename(s.Exe, gone); err != nil {
		return err
	}
	if err := s.FS.Rename(prev, s.Exe); err != nil {
		s.FS.Rename(gone, s.Exe)
		return err
	}
	s.remove(gone) // fails on Windows while it runs: removed at a later start
	if bad {
		var bs []Bad
		s.readJSON(s.upd(badInfo), &bs)
		bs = append(bs, Bad{Version: t.Version, SHA256: t.SHA256, At: s.Now().UTC(), Reason: reason})
		if err := s.writeJSON(s.upd(badInfo), bs); err != nil {
			s.Log.Warn("failed version not remembered", "version", t.Version, "err", err)
		}
		s.dropStaged()
	}
	s.remove(s.marker(t.Version))
	s.remove(s.upd(trialInfo))
	s.Log.Warn("update rolled back", "version", t.Version, "previous", t.Previous, "reason", reason)
	return nil
}

// confirm ends a trial that went well: the previous version stays as
// agent.prev, the staged files go.
func (s *Switch) confirm(t trial) {
	s.remove(s.upd(trialInfo))
	s.remove(s.marker(t.Version))
	s.dropStaged()
}

// runPrevious runs the version put back with this command line.
func (s *Switch) runPrevious(ctx context.Context) Outcome {
	child, err := s.Run.Start(s.Exe, s.Args, s.Env)
	if err != nil {
		s.Say(fmt.Sprintf("La version remise en place ne se lance pas : %v", err))
		return Outcome{Ran: true, Exit: 1}
	}
	return s.proxy(ctx, child)
}

// proxy waits for child, asking it to stop when ctx ends, and returns
// its exit code as this process's.
func (s *Switch) proxy(ctx context.Context, child Child) Outcome {
	select {
	case <-child.Done():
	case <-ctx.Done():
		child.Stop()
		select {
		case <-child.Done():
		case <-time.After(15 * time.Second):
			child.Kill()
			<-child.Done()
		}
	}
	return Outcome{Ran: true, Exit: child.ExitCode()}
}

func (s *Switch) sha256(p string) (string, error) {
	f, err := s.FS.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
