//go:build !(linux || darwin || freebsd || windows)

package diskspace

func free(string) (Space, error) { return Space{}, ErrUnsupported }
