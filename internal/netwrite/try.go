// Package netwrite writes to a connection without ever blocking: the write either goes
// into the kernel's send buffer at once or reports that it would block.
//
// It lets a session's reader goroutine send the replies to a batch of requests itself,
// in one system call, instead of waking a writer goroutine for them; when the socket is
// full, the rest is left to a writer that may block.
package netwrite

import (
	"net"
)

// Trier writes to one connection without blocking.
type Trier interface {
	// Try writes b, or as much of it as the socket takes. It returns
	// sendq.ErrWouldBlock, with the count written, when the socket is full.
	Try(b []byte) (int, error)
	// TryVec writes bufs, in order, with vectored writes (writev), as much as the socket
	// takes: one system call for a whole batch of chunks. Results as for Try.
	TryVec(bufs [][]byte) (int64, error)
}

// New returns a Trier for c, or nil when c offers no non-blocking write (TLS, pipes,
// other platforms).
func New(c net.Conn) Trier { return newTrier(c) }
