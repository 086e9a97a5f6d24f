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

// Trier writes to one connection without blocking. A zero Trier is unbound: Init binds it.
// It is a struct rather than an interface so that its owner can hold it by value, in the
// same allocation as the rest of its state (see supersocket's Session). Not safe for
// concurrent use: its owner's send queue lets one writer at a time use it.
type Trier struct {
	raw rawTrier
}

// Init binds t to c and reports whether c offers a non-blocking write (TCP on unix; not
// TLS, pipes or other platforms). A Trier whose Init returned false must not be used.
func (t *Trier) Init(c net.Conn) bool { return t.raw.init(c) }

// Try writes b, or as much of it as the socket takes. It returns sendq.ErrWouldBlock,
// with the count written, when the socket is full.
func (t *Trier) Try(b []byte) (int, error) { return t.raw.try(b) }

// TryVec writes bufs, in order, with vectored writes (writev), as much as the socket
// takes: one system call for a whole batch of chunks. Results as for Try.
func (t *Trier) TryVec(bufs [][]byte) (int64, error) { return t.raw.tryVec(bufs) }

// New returns a Trier bound to c, or nil when c offers no non-blocking write.
func New(c net.Conn) *Trier {
	t := new(Trier)
	if !t.Init(c) {
		return nil
	}
	return t
}
