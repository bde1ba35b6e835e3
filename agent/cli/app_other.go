//go:build !windows

package cli

// ownConsole: only Windows closes a program's window when it ends.
func ownConsole() bool { return false }
