//go:build linux || darwin || freebsd

package diskspace

import (
	"fmt"
	"syscall"
)

// free asks statfs(2): one system call, no file opened.
func free(dir string) (Space, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Space{}, fmt.Errorf("free space of %s: %w", dir, err)
	}
	bs := uint64(st.Bsize)
	return Space{Avail: uint64(st.Bavail) * bs, Total: uint64(st.Blocks) * bs}, nil
}
