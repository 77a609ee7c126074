// Package exitcode maps command errors to process exit codes: 0 for
// success, 2 for bad usage (flags, arguments, input files), 1 otherwise.
package exitcode

import (
	"errors"
	"fmt"
)

// UsageError marks an error caused by how the command was called.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage wraps err as a usage error (exit 2); nil stays nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// Of returns the exit code for err.
func Of(err error) int {
	var ue *UsageError
	var st *Status
	switch {
	case err == nil:
		return 0
	case errors.As(err, &st):
		return st.Code
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// Status is an exit code a command chose on purpose, with or without an
// error to print (units diff exits 2 when there are differences).
type Status struct {
	Code int
	Err  error
}

func (s *Status) Error() string {
	if s.Err == nil {
		return fmt.Sprintf("exit status %d", s.Code)
	}
	return s.Err.Error()
}
func (s *Status) Unwrap() error { return s.Err }

// With returns an error that makes the process exit with code; err, when
// not nil, is printed.
func With(code int, err error) error { return &Status{Code: code, Err: err} }

// Silent reports whether err only carries an exit code, nothing to print.
func Silent(err error) bool {
	var s *Status
	return errors.As(err, &s) && s.Err == nil
}
