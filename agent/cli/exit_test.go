package cli

import (
	"testing"

	"numeribus/internal/apperr"
)

// The exit codes the agent documents are apperr's.
func TestExitCodesAreApperrs(t *testing.T) {
	for c, want := range map[apperr.Code]int{apperr.Internal: ExitFailure, apperr.Usage: ExitUsage, apperr.Auth: ExitAuth,
		apperr.Invalid: ExitInvalid, apperr.State: ExitState, apperr.Unreachable: ExitUnreachable, apperr.Refused: ExitRefused} {
		if c.Exit() != want {
			t.Errorf("%s exits %d, the agent says %d", c, c.Exit(), want)
		}
	}
}
