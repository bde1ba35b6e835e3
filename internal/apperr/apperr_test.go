package apperr

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

type coded struct{}

func (coded) Error() string   { return "coded" }
func (coded) ErrorCode() Code { return Invalid }

func TestCodeOf(t *testing.T) {
	sentinel := New(NotFound, "record not found")
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, ""},
		{"plain", errors.New("disk on fire"), Internal},
		{"sentinel", sentinel, NotFound},
		{"wrapped sentinel", fmt.Errorf("reading 42: %w", sentinel), NotFound},
		{"Errorf", Errorf(Invalid, "la durée doit être positive"), Invalid},
		{"Errorf wrapping", Errorf(State, "opening: %w", fs.ErrNotExist), State},
		{"a type of its own", fmt.Errorf("saving: %w", coded{}), Invalid},
		{"joined", errors.Join(errors.New("x"), sentinel), NotFound},
		{"the outer code wins", Errorf(Refused, "sync: %w", sentinel), Refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeOf(tt.err); got != tt.want {
				t.Fatalf("CodeOf = %q, want %q", got, tt.want)
			}
		})
	}
	if err := Errorf(State, "opening: %w", fs.ErrNotExist); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Errorf lost its cause")
	}
	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != 1 || Status(sentinel) != 404 {
		t.Fatal("ExitCode or Status")
	}
}

// Every code has its row, and codes that share an exit code mean the same
// to a script.
func TestEveryCodeHasAnOutcome(t *testing.T) {
	for _, c := range Codes() {
		o, ok := table[c]
		if !ok || o.Exit == 0 || o.Status < 400 {
			t.Errorf("code %q: outcome %+v", c, o)
		}
	}
	if len(table) != len(Codes()) {
		t.Errorf("the table has %d rows, Codes lists %d", len(table), len(Codes()))
	}
}

// Close codes cross the wire: agents of every version read them. They
// never change (docs/PROTOCOL.md).
func TestCloseCodesAreTheProtocols(t *testing.T) {
	for c, want := range map[Code]int{Invalid: 4400, Usage: 4400, Auth: 4401, Refused: 4403, Forbidden: 4403,
		TooLarge: 4413, Upgrade: 4426, Internal: 4500} {
		if got := c.Close(); got != want {
			t.Errorf("%s closes with %d, the protocol says %d", c, got, want)
		}
	}
}
