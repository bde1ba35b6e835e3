package update

import "syscall"

// childAttr makes the program started for a trial end when the one that
// started it dies (killed, or stopped by a signal it does not handle):
// it gets the interrupt Ctrl-C would send, and stops cleanly.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
}
