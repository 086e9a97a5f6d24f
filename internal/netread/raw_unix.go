//go:build unix

package netread

import (
	"io"
	"net"
	"syscall"
	"unsafe"

	"github.com/supersocket-go/supersocket/internal/pool"
)

// unixReader reads through syscall.RawConn. Its fields carry the state of one read
// across the callback, and step is bound once, so a read allocates nothing.
type unixReader struct {
	rc      syscall.RawConn
	step    func(fd uintptr) bool
	pending []byte
	size    int
	n       int
	err     error
	// serve's state: its handler, its callback (bound once), and whether the last read
	// came back short, so the socket is known to be empty.
	h         Handler
	serveStep func(fd uintptr) bool
	drained   bool
}

func newRawReader(c net.Conn) rawReader {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	u := &unixReader{rc: rc}
	u.step = u.tryRead
	u.serveStep = u.serveRead
	return u
}

// tryRead is RawConn.Read's callback: true when the read is done (bytes, EOF or an
// error), false to wait for readability. Waiting with nothing pending gives the buffer back.
func (u *unixReader) tryRead(fd uintptr) bool {
	if cap(u.pending) == 0 {
		u.pending = pool.Get(u.size)[:0]
	}
	for {
		n, err := rawRead(fd, u.pending[len(u.pending):cap(u.pending)])
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if len(u.pending) == 0 {
				pool.Put(u.pending)
				u.pending = nil
			}
			return false
		}
		u.n, u.err = n, err
		return true
	}
}

func (u *unixReader) read(pending []byte, size int) ([]byte, error) {
	u.pending, u.size, u.n, u.err = pending, size, 0, nil
	err := u.rc.Read(u.step)
	pending, u.pending = u.pending, nil
	switch {
	case err != nil: // deadline, or the connection was closed
	case u.err != nil:
		err = &net.OpError{Op: "read", Net: "tcp", Err: u.err}
	case u.n == 0:
		err = io.EOF
	default:
		return pending[:len(pending)+u.n], nil
	}
	return keep(pending), err
}

func (u *unixReader) control(f func(fd uintptr)) error { return u.rc.Control(f) }

func (u *unixReader) serve(h Handler, pending []byte) ([]byte, error) {
	u.h, u.pending, u.err, u.drained = h, pending, nil, false
	err := u.rc.Read(u.serveStep)
	pending, u.pending, u.h = u.pending, nil, nil
	if err == nil {
		err = u.err
	}
	return keep(pending), err
}

// serveRead is serve's RawConn.Read callback: it reads and hands bytes to the handler
// for as long as the socket has them, and returns false to wait for readability (the
// runtime then calls it again), true to end the call.
func (u *unixReader) serveRead(fd uintptr) bool {
	for {
		stop, bounded := u.h.BeforeRead(len(u.pending))
		if stop {
			return true
		}
		if u.drained {
			// The last read came back short: the socket is empty, but for a FIN or a
			// reset that arrived with its bytes (see Serve). With a deadline bounding the
			// wait, wait for the poller's next edge rather than read again for an EAGAIN.
			u.drained = false
			if bounded {
				return false
			}
		}
		if cap(u.pending) == 0 {
			u.pending = pool.Get(u.h.ReadSize())[:0]
		} else if len(u.pending) == cap(u.pending) {
			bigger := append(pool.Get(2 * cap(u.pending))[:0], u.pending...)
			pool.Put(u.pending)
			u.pending = bigger
		}
		before := len(u.pending)
		room := cap(u.pending) - before
		n, err := rawRead(fd, u.pending[before:cap(u.pending)])
		switch err {
		case nil:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if before == 0 {
				pool.Put(u.pending)
				u.pending = nil
			}
			return false
		default:
			u.err = &net.OpError{Op: "read", Net: "tcp", Err: err}
			return true
		}
		if n == 0 {
			u.err = io.EOF
			return true
		}
		u.drained = n < room
		if u.pending, stop = u.h.Received(u.pending[:before+n], n, room); stop {
			return true
		}
	}
}

// rawRead is read(2) through syscall.RawSyscall: the socket is non-blocking, so the call
// never waits, and skipping the runtime's system-call bookkeeping (entersyscall, and the
// wake-up of an idle sysmon thread that it brings) saves that cost on every read.
func rawRead(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}
