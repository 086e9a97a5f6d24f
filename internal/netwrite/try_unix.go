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
	err  syscall.Errno
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
func (t *rawTrier) write(fd uintptr) bool {
	t.n, t.err = writeFD(fd, t.b)
	return true
}

// Write writes b to the non-blocking socket fd until it is all written or the socket is
// full; it returns the count written and the errno that stopped it (EAGAIN for a full
// socket), or 0 when all was written. Its write(2), like Writev's, goes through
// syscall.RawSyscall: the socket is non-blocking, so the call never waits, and skipping
// the runtime's system-call bookkeeping (entersyscall, and the wake-up of an idle sysmon
// thread it brings) saves a share of the server's CPU per message that
// docs/performance.md measures. The caller keeps fd open meanwhile.
func Write(fd uintptr, b []byte) (int, syscall.Errno) { return writeFD(fd, b) }

func writeFD(fd uintptr, b []byte) (n int, err syscall.Errno) {
	for n < len(b) {
		r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return n, errno
		}
		n += int(r)
	}
	return n, 0
}

func (t *rawTrier) try(b []byte) (int, error) {
	t.b, t.n, t.err = b, 0, 0
	if err := t.rc.Write(t.step); err != nil {
		t.b = nil
		return 0, err
	}
	n, err := t.n, t.err
	t.b, t.err = nil, 0
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
	t.nv, t.err = 0, 0
	err := t.rc.Write(t.stepVec)
	clear(t.iov) // drop the references to the caller's buffers
	n := t.nv
	if err != nil {
		return 0, err
	}
	errno := t.err
	t.err = 0
	return n, writeError(errno)
}

// writeError turns a write's errno into what Try and TryVec return: ErrWouldBlock for a
// full socket, a *net.OpError for a failure, nil for none.
func writeError(errno syscall.Errno) error {
	switch errno {
	case 0:
		return nil
	case syscall.EAGAIN:
		return sendq.ErrWouldBlock
	}
	return &net.OpError{Op: "write", Net: "tcp", Err: errno}
}

// Error is writeError for Write's and Writev's callers: nil, sendq.ErrWouldBlock or a
// *net.OpError.
func Error(errno syscall.Errno) error { return writeError(errno) }

// writev is TryVec's RawConn.Write callback: it always reports done, so RawConn never
// waits.
func (t *rawTrier) writev(fd uintptr) bool {
	t.nv, t.err = Writev(fd, t.iov)
	return true
}

// Writev writes iov to the non-blocking socket fd with writev(2) until it is all
// written or the socket is full, as Write does; it advances iov's entries past what it
// wrote (they are the caller's scratch).
func Writev(fd uintptr, iov []syscall.Iovec) (nv int64, err syscall.Errno) {
	for len(iov) > 0 {
		r, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return nv, errno
		}
		n := int64(r)
		nv += n
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
	return nv, 0
}

// MaxIovecs bounds one writev's vector (the kernel's IOV_MAX is 1024).
const MaxIovecs = maxIovecs
