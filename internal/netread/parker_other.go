//go:build !linux

package netread

import "errors"

// Parker is Linux-only (it needs epoll); elsewhere NewParker fails and an idle
// connection's owner keeps a goroutine.
type Parker struct{}

// NewParker returns an error: parking needs epoll.
func NewParker(func(error)) (*Parker, error) { return nil, errors.New("parking needs epoll (Linux)") }

// Park returns false: nothing parks.
func (*Parker) Park(*Reader, *Token, Sleeper) bool { return false }

// Unpark returns nil: nothing is parked.
func (*Parker) Unpark(*Token) Sleeper { return nil }

// Parked returns 0.
func (*Parker) Parked() int { return 0 }

// Err returns nil.
func (*Parker) Err() error { return nil }

// Stop does nothing.
func (*Parker) Stop() {}
