//go:build !unix

package main

import "os"

// restartSignal: no SIGUSR2 off unix, so no hand-over; a nil channel never receives.
func restartSignal() (<-chan os.Signal, func()) { return nil, func() {} }
