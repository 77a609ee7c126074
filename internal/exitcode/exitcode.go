// Package exitcode maps command errors to process exit codes: 0 for
// success, 2 for bad usage (flags, arguments, input files), 1 otherwise.
package exitcode

import "errors"

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
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}
