//go:build !linux

package main

import (
	"errors"
	"os"
	"syscall"
)

// Elsewhere than Linux the generator runs, without the figures /proc
// gives and without raising the open files limit.

var terminate = os.Interrupt

func childAttr() *syscall.SysProcAttr { return nil }

var errNoProc = errors.New("no /proc on this system")

func raiseFileLimit() (uint64, error) { return 0, errNoProc }

func memOf(int) (peak, rss int64, err error) { return 0, 0, errNoProc }

func fdsOf(int) (int, error) { return 0, errNoProc }
