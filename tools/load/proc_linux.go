package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// terminate is the signal that asks a hub to stop.
var terminate = syscall.SIGTERM

// childAttr puts a hub in a process group of its own, so that a Ctrl-C
// at the terminal reaches the generator alone (which then stops the hubs
// itself, after writing what it measured), and kills it if the generator
// dies without stopping it: no hub is left running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// raiseFileLimit raises this process's limit of open files to its hard
// limit: a thousand agents hold a thousand sockets here and as many in
// the hub, which inherits the limit. It returns the new limit.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("reading the open files limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("raising the open files limit to %d: %w", l.Max, err)
		}
	}
	return l.Cur, nil
}

// memOf returns the peak resident memory (VmHWM), the current one
// (VmRSS) and its anonymous part (RssAnon: the heap, not the mapped
// database file) of process pid, in bytes.
func memOf(pid int) (peak, rss, anon int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
		switch string(f[0]) {
		case "VmHWM:":
			peak = kb << 10
		case "VmRSS:":
			rss = kb << 10
		case "RssAnon:":
			anon = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return peak, rss, anon, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuOf returns the CPU time (user + system) process pid has used.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (state is field 3).
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64) // utime, field 14
	st, _ := strconv.ParseInt(string(f[12]), 10, 64) // stime, field 15
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fdsOf counts the open file descriptors of process pid.
func fdsOf(pid int) (int, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	return len(names), err
}
