// Package errcat holds the error categories that omega and its framelog
// package share, so that an error of either unwraps to the same category
// value: omega.ErrFormat is ErrFormat, and framelog's format errors wrap it.
package errcat

import "errors"

// The categories, as omega documents them (see omega.ErrFormat).
var (
	ErrFormat          = errors.New("omega: format error")
	ErrVerification    = errors.New("omega: verification failed")
	ErrDivergence      = errors.New("omega: replay diverged")
	ErrBindingMismatch = New(ErrFormat, "omega: binding mismatch")
)

// sentinel is a specific error of one category: its message, and the
// category it unwraps to.
type sentinel struct {
	msg string
	cat error
}

// New returns a sentinel error with message msg that unwraps to cat.
func New(cat error, msg string) error { return &sentinel{msg: msg, cat: cat} }

func (e *sentinel) Error() string { return e.msg }

// Unwrap returns the category.
func (e *sentinel) Unwrap() error { return e.cat }
