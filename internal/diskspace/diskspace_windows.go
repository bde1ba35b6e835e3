//go:build windows

package diskspace

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// free asks GetDiskFreeSpaceExW, which counts the caller's quota.
func free(dir string) (Space, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return Space{}, fmt.Errorf("free space of %s: %w", dir, err)
	}
	var avail, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &totalFree); err != nil {
		return Space{}, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return Space{Avail: avail, Total: total}, nil
}
