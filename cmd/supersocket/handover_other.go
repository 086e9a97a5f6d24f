//go:build !unix

package main

import (
	"net"
	"os"
	"syscall"
)

// socketFile returns a duplicate of c's socket as a file (no hand-over off unix).
func socketFile(c syscall.Conn, _ string) (*os.File, error) {
	switch c := c.(type) {
	case *net.TCPListener:
		return c.File()
	case *net.UDPConn:
		return c.File()
	}
	return nil, os.ErrInvalid
}

// restartSignal: no SIGUSR2 off unix, so no hand-over; a nil channel never receives.
func restartSignal() (<-chan os.Signal, func()) { return nil, func() {} }
