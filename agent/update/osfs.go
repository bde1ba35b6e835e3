package update

import (
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
)

// OSFS is the operating system's files.
type OSFS struct{}

func (OSFS) Rename(oldpath, newpath string) error     { return os.Rename(oldpath, newpath) }
func (OSFS) Remove(name string) error                 { return os.Remove(name) }
func (OSFS) Stat(name string) (fs.FileInfo, error)    { return os.Stat(name) }
func (OSFS) Open(name string) (io.ReadCloser, error)  { return os.Open(name) }
func (OSFS) WriteFile(name string, data []byte) error { return writeFile(name, data) }

func (OSFS) Copy(dst, src string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm) // O_CREATE's mode goes through the umask
}

// OSRunner starts programs as children sharing this process's terminal.
type OSRunner struct{}

func (OSRunner) Start(path string, args, env []string) (Child, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &osChild{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

type osChild struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (c *osChild) Done() <-chan struct{} { return c.done }
func (c *osChild) Kill()                 { c.cmd.Process.Kill() }

// ExitCode is the child's, 1 when a signal ended it.
func (c *osChild) ExitCode() int {
	if code := c.cmd.ProcessState.ExitCode(); code >= 0 {
		return code
	}
	return 1
}

// Stop interrupts the child as Ctrl-C would; Windows has no interrupt
// to send to another process: it ends.
func (c *osChild) Stop() {
	if runtime.GOOS == "windows" {
		c.cmd.Process.Kill()
		return
	}
	c.cmd.Process.Signal(os.Interrupt)
}
