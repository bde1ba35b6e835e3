// Package apperr is the one error vocabulary of both programs: an error
// the user can act on carries a Code and a message; anything else is
// internal (a generic message to the user, the details to the log). One
// table maps each code to what every surface answers — the CLI's exit
// code, the web's HTTP status, the sync's websocket close code — so the
// agent's and the hub's command lines, pages, API and sync server never
// disagree on what a failure is (shared/STYLE.md §9).
//
// Codes are stable strings: they appear in JSON answers and logs. Append,
// never rename.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error by what the user can do about it.
type Code string

// The codes. Each has one row in [table].
const (
	Internal    Code = "internal"    // a bug or the machine (disk, database): details in the log
	Usage       Code = "usage"       // a bad command line or request shape
	Auth        Code = "auth"        // a wrong or missing passphrase, code or credential
	Locked      Code = "locked"      // the agent's store is locked: a passphrase is needed
	Invalid     Code = "invalid"     // invalid data: nothing was written
	Conflict    Code = "conflict"    // the data conflicts with what is stored
	State       Code = "state"       // the store is not in the needed state (exists, missing, too new)
	NotFound    Code = "not_found"   // no such record, device or user
	Unreachable Code = "unreachable" // the hub could not be reached: try again later
	Refused     Code = "refused"     // the hub refused this device: retrying will not help
	Forbidden   Code = "forbidden"   // outside the user's rights or scope
	TooLarge    Code = "too_large"   // over a size limit
	Upgrade     Code = "upgrade"     // the other side speaks a protocol too old: upgrade it
)

// Outcome is what each surface answers for a code. A zero Close means the
// sync never closes a connection for this code.
type Outcome struct {
	Exit   int // CLI exit code (docs/CLI.md)
	Status int // HTTP status
	Close  int // websocket close code of the sync (docs/PROTOCOL.md)
}

// table is the one mapping from codes to outcomes. HTTP statuses are
// written as numbers: the package imports no I/O, so the domain may use
// it (internal/archtest).
var table = map[Code]Outcome{
	Internal:    {Exit: 1, Status: 500, Close: 4500},
	Usage:       {Exit: 2, Status: 400, Close: 4400},
	Auth:        {Exit: 3, Status: 401, Close: 4401},
	Locked:      {Exit: 3, Status: 423},
	Invalid:     {Exit: 4, Status: 422, Close: 4400},
	Conflict:    {Exit: 4, Status: 409},
	State:       {Exit: 5, Status: 409},
	NotFound:    {Exit: 5, Status: 404},
	Unreachable: {Exit: 6, Status: 503},
	Refused:     {Exit: 7, Status: 403, Close: 4403},
	Forbidden:   {Exit: 7, Status: 403, Close: 4403},
	TooLarge:    {Exit: 4, Status: 413, Close: 4413},
	Upgrade:     {Exit: 7, Status: 426, Close: 4426},
}

// Codes lists every code, in the table's documented order.
func Codes() []Code {
	return []Code{Internal, Usage, Auth, Locked, Invalid, Conflict, State, NotFound, Unreachable, Refused, Forbidden, TooLarge, Upgrade}
}

// Outcome returns what every surface answers for c (Internal's for an
// unknown code).
func (c Code) Outcome() Outcome {
	if o, ok := table[c]; ok {
		return o
	}
	return table[Internal]
}

// Exit is c's CLI exit code.
func (c Code) Exit() int { return c.Outcome().Exit }

// Status is c's HTTP status.
func (c Code) Status() int { return c.Outcome().Status }

// Close is c's websocket close code (0: none).
func (c Code) Close() int { return c.Outcome().Close }

// Error is an error with a code. Message is for the user (it may be
// empty: callers then say it in their own words); Err is the cause, for
// the log and for errors.Is.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	switch {
	case e.Message != "" && e.Err != nil:
		return e.Message + ": " + e.Err.Error()
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return e.Err.Error()
	}
	return string(e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with code c and message msg: the form of the
// sentinel errors packages export (errors.Is compares them by identity).
func New(c Code, msg string) *Error { return &Error{Code: c, Message: msg} }

// Errorf returns an error with code c and a formatted message; %w wraps
// a cause as fmt.Errorf does.
func Errorf(c Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: c, Message: err.Error(), Err: errors.Unwrap(err)}
}

// Coder is implemented by error types of their own that belong to a code
// (a validation error listing its problems, say).
type Coder interface{ ErrorCode() Code }

// CodeOf returns the code of the first error in err's chain that has
// one, Internal when none has, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	for e := err; e != nil; {
		switch x := e.(type) {
		case *Error:
			return x.Code
		case Coder:
			return x.ErrorCode()
		case interface{ Unwrap() []error }:
			for _, inner := range x.Unwrap() {
				if c := CodeOf(inner); c != Internal {
					return c
				}
			}
			return Internal
		}
		e = errors.Unwrap(e)
	}
	return Internal
}

// ExitCode is the CLI exit code of err: 0 for nil.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	return CodeOf(err).Exit()
}

// Status is the HTTP status of err: 200 for nil.
func Status(err error) int {
	if err == nil {
		return 200
	}
	return CodeOf(err).Status()
}
