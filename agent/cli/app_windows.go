package cli

import (
	"syscall"
	"unsafe"
)

var getConsoleProcessList = syscall.NewLazyDLL("kernel32.dll").NewProc("GetConsoleProcessList")

// ownConsole reports whether this process is the only one attached to
// its console: Windows made that console for it (a double-click in the
// Explorer), and closes it as soon as the process ends.
func ownConsole() bool {
	if getConsoleProcessList.Find() != nil {
		return false
	}
	var ids [2]uint32
	n, _, _ := getConsoleProcessList.Call(uintptr(unsafe.Pointer(&ids[0])), uintptr(len(ids)))
	return n == 1
}
