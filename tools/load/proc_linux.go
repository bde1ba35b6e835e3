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
	st, err := statOf(pid)
	return st.cpu, err
}

// procStat is what /proc/PID/stat says of a process.
type procStat struct {
	ppid     int
	cpu      time.Duration // user + system
	children time.Duration // user + system of its children it waited for
}

func statOf(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (state is field 3).
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(string(f[k-3]), 10, 64); return v }
	tick := func(v int64) time.Duration { return time.Duration(v) * time.Second / clockTicks }
	// ppid is field 4; utime, stime, cutime, cstime 14 to 17.
	return procStat{ppid: int(n(4)), cpu: tick(n(14) + n(15)), children: tick(n(16) + n(17))}, nil
}

// treeCPU returns the CPU time of process pid, of its children it waited
// for, and of its live children: a PostgreSQL server's, whose backends
// come and go with the connections.
func treeCPU(pid int) (time.Duration, error) {
	root, err := statOf(pid)
	if err != nil {
		return 0, err
	}
	total := root.cpu + root.children
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if st, err := statOf(child); err == nil && st.ppid == pid {
			total += st.cpu
		}
	}
	return total, nil
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
