//go:build unix

package netread

import (
	"io"
	"net"
	"syscall"

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
	return u
}

// tryRead is RawConn.Read's callback: true when the read is done (bytes, EOF or an
// error), false to wait for readability. Waiting with nothing pending gives the buffer back.
func (u *unixReader) tryRead(fd uintptr) bool {
	if cap(u.pending) == 0 {
		u.pending = pool.Get(u.size)[:0]
	}
	for {
		n, err := syscall.Read(int(fd), u.pending[len(u.pending):cap(u.pending)])
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
	if len(pending) == 0 && cap(pending) > 0 {
		pool.Put(pending)
		pending = nil
	}
	return pending, err
}

func (u *unixReader) control(f func(fd uintptr)) error { return u.rc.Control(f) }
