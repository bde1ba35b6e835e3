package cli

import (
	"fmt"
	"os/exec"
	"strings"
)

// browserCommand is the command that opens url in the person's default
// browser on goos: Windows' URL handler (no console window, no shell
// to quote for: url.dll takes the address as it is), macOS' open, and
// the freedesktop xdg-open elsewhere. NUMERIBUS_BROWSER, when set, names
// another program to run with the address as its one argument (a
// particular browser, or a test's stand-in).
func browserCommand(goos, override, url string) []string {
	if override = strings.TrimSpace(override); override != "" {
		return []string{override, url}
	}
	switch goos {
	case "windows":
		return []string{"rundll32", "url.dll,FileProtocolHandler", url}
	case "darwin":
		return []string{"open", url}
	}
	return []string{"xdg-open", url}
}

// openBrowser starts the browser on url and does not wait for it: the
// browser outlives the command that asked for it. The caller says the
// address anyway, for when no browser opens.
func openBrowser(goos, override, url string) error {
	argv := browserCommand(goos, override, url)
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ouverture du navigateur (%s) : %w", argv[0], err)
	}
	// Reaped in the background: xdg-open and open return at once.
	go cmd.Wait()
	return nil
}
