//go:build !linux

package main

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// Elsewhere than Linux the generator runs, without the figures /proc
// gives and without raising the open files limit.

var terminate = os.Interrupt

func childAttr() *syscall.SysProcAttr { return nil }

var errNoProc = errors.New("no /proc on this system")

func raiseFileLimit() (uint64, error) { return 0, errNoProc }

func memOf(int) (peak, rss, anon int64, err error) { return 0, 0, 0, errNoProc }

func cpuOf(int) (time.Duration, error) { return 0, errNoProc }

func selfCPU() time.Duration { return 0 }

func treeCPU(int) (time.Duration, error) { return 0, errNoProc }

func fdsOf(int) (int, error) { return 0, errNoProc }
