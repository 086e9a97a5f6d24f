//go:build unix

package netwrite

import (
	"net"
	"syscall"
	"unsafe"

	"github.com/supersocket-go/supersocket/internal/sendq"
)

// rawTrier writes through syscall.RawConn; its callback is bound once and its state
// lives in the struct, so a write allocates nothing.
type rawTrier struct {
	rc   syscall.RawConn
	step func(fd uintptr) bool
	b    []byte
	n    int
	err  error
	// TryVec's state: its callback, the iovecs (reused), and the bytes written.
	stepVec func(fd uintptr) bool
	iov     []syscall.Iovec
	nv      int64
}

// maxIovecs bounds one writev's vector (the kernel's IOV_MAX is 1024).
const maxIovecs = 1024

func (t *rawTrier) init(c net.Conn) bool {
	sc, ok := c.(syscall.Conn) // a TCP socket, or one wrapped (its PROXY client's address)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	*t = rawTrier{rc: rc}
	t.step = t.write
	t.stepVec = t.writev
	return true
}

// write is RawConn.Write's callback: it always reports done, so RawConn never waits.
// Its write(2), like writev's, goes through syscall.RawSyscall: the socket is
// non-blocking, so the call never waits, and skipping the runtime's system-call
// bookkeeping (entersyscall, and the wake-up of an idle sysmon thread it brings) saves a
// share of the server's CPU per message that docs/performance.md measures.
func (t *rawTrier) write(fd uintptr) bool {
	for t.n < len(t.b) {
		r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&t.b[t.n])), uintptr(len(t.b)-t.n))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			t.err = errno
			return true
		}
		t.n += int(r)
	}
	return true
}

func (t *rawTrier) try(b []byte) (int, error) {
	t.b, t.n, t.err = b, 0, nil
	if err := t.rc.Write(t.step); err != nil {
		t.b = nil
		return 0, err
	}
	n, err := t.n, t.err
	t.b, t.err = nil, nil
	return n, writeError(err)
}

func (t *rawTrier) tryVec(bufs [][]byte) (int64, error) {
	t.iov = t.iov[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(t.iov) == maxIovecs {
			break // the rest is written by the caller's next call
		}
		v := syscall.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		t.iov = append(t.iov, v)
	}
	t.nv, t.err = 0, nil
	err := t.rc.Write(t.stepVec)
	clear(t.iov) // drop the references to the caller's buffers
	n := t.nv
	if err != nil {
		return 0, err
	}
	err, t.err = t.err, nil
	return n, writeError(err)
}

// writeError turns a write's errno into what Try and TryVec return: ErrWouldBlock for a
// full socket, a *net.OpError for a failure, nil for none.
func writeError(errno error) error {
	switch errno {
	case nil:
		return nil
	case syscall.EAGAIN:
		return sendq.ErrWouldBlock
	}
	return &net.OpError{Op: "write", Net: "tcp", Err: errno}
}

// writev is TryVec's RawConn.Write callback: it writes the iovecs until they are all
// written or the socket is full, and always reports done, so RawConn never waits.
func (t *rawTrier) writev(fd uintptr) bool {
	iov := t.iov
	for len(iov) > 0 {
		r, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			t.err = errno
			return true
		}
		n := int64(r)
		t.nv += n
		// Skip what was written: whole iovecs, then part of the next.
		for len(iov) > 0 && n >= int64(iov[0].Len) {
			n -= int64(iov[0].Len)
			iov = iov[1:]
		}
		if len(iov) > 0 && n > 0 {
			iov[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(iov[0].Base), n))
			iov[0].SetLen(int(int64(iov[0].Len) - n))
		}
	}
	return true
}
