//go:build !linux

package update

import "syscall"

// childAttr: elsewhere than on Linux, a child outlives the program that
// started it (docs/SECURITY.md, "Agent releases").
func childAttr() *syscall.SysProcAttr { return nil }
