//go:build unix

package netwrite

import (
	"net"
	"syscall"

	"github.com/supersocket-go/supersocket/internal/sendq"
)

// unixTrier writes through syscall.RawConn; its callback is bound once and its state
// lives in the struct, so a write allocates nothing.
type unixTrier struct {
	rc   syscall.RawConn
	step func(fd uintptr) bool
	b    []byte
	n    int
	err  error
}

func newTrier(c net.Conn) Trier {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	t := &unixTrier{rc: rc}
	t.step = t.write
	return t
}

// write is RawConn.Write's callback: it always reports done, so RawConn never waits.
func (t *unixTrier) write(fd uintptr) bool {
	for t.n < len(t.b) {
		n, err := syscall.Write(int(fd), t.b[t.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			t.err = err
			return true
		}
		t.n += n
	}
	return true
}

func (t *unixTrier) Try(b []byte) (int, error) {
	t.b, t.n, t.err = b, 0, nil
	if err := t.rc.Write(t.step); err != nil {
		t.b = nil
		return 0, err
	}
	n, err := t.n, t.err
	t.b, t.err = nil, nil
	if err == syscall.EAGAIN {
		return n, sendq.ErrWouldBlock
	}
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Err: err}
	}
	return n, nil
}
