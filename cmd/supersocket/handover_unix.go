//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// restartSignal returns the channel of SIGUSR2, the hand-over's signal, caught from now on
// (its default action would end the process), and the function that stops catching it.
func restartSignal() (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	return c, func() { signal.Stop(c) }
}
