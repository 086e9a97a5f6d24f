// Package netread reads a connection into pooled buffers, and holds no buffer while the
// connection is idle.
//
// A goroutine blocked in net.Conn.Read pins the buffer it passed, so ten thousand idle
// sessions would pin ten thousand receive buffers. On Unix, Reader instead waits for
// readability through the connection's syscall.RawConn and takes a buffer from the pool
// only when bytes are ready; when a read would block with nothing pending, the buffer goes
// back to the pool before the wait. It is the same single read system call that
// net.Conn.Read makes, so the saving costs nothing on a busy connection.
//
// Connections that expose no RawConn (TLS, pipes, other platforms) fall back to Read,
// which pins a buffer while waiting.
package netread

import (
	"errors"
	"io"
	"net"

	"github.com/supersocket-go/supersocket/internal/pool"
)

// Reader reads one connection. It is used by one goroutine at a time.
type Reader struct {
	conn net.Conn
	raw  rawReader // nil: use conn.Read
}

// New returns a Reader of c.
func New(c net.Conn) *Reader {
	r := &Reader{conn: c}
	r.raw = newRawReader(c)
	return r
}

// Read reads more bytes after the pending ones and returns pending extended by them.
//
// pending holds the bytes not consumed yet; its spare capacity is where new bytes land, so
// the caller grows it before calling when it is full. A pending of capacity 0 means
// nothing is pending: Read then takes a buffer of size bytes from the pool, and only once
// bytes are ready to be read. On error the returned slice still holds the pending bytes
// (it may be nil if there were none); a peer's orderly close is io.EOF.
func (r *Reader) Read(pending []byte, size int) ([]byte, error) {
	if r.raw != nil {
		return r.raw.read(pending, size)
	}
	if cap(pending) == 0 {
		pending = pool.Get(size)[:0]
	}
	n, err := r.conn.Read(pending[len(pending):cap(pending)])
	pending = pending[:len(pending)+n]
	if n > 0 {
		return pending, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if len(pending) == 0 {
		pool.Put(pending)
		pending = nil
	}
	return pending, err
}

// ReleasesIdleBuffer reports whether the Reader gives its buffer back while it waits
// (it reads through the connection's RawConn).
func (r *Reader) ReleasesIdleBuffer() bool { return r.raw != nil }

// ErrNoRawConn is Control's error for a connection read without a RawConn.
var ErrNoRawConn = errors.New("netread: connection has no raw file descriptor")

// Control runs f with the connection's file descriptor, which stays open until f
// returns (syscall.RawConn.Control). It returns ErrNoRawConn when the Reader does not read
// through a RawConn (see ReleasesIdleBuffer), or the error of a closed connection.
func (r *Reader) Control(f func(fd uintptr)) error {
	if r.raw == nil {
		return ErrNoRawConn
	}
	return r.raw.control(f)
}

// rawReader is the platform's buffer-releasing read path.
type rawReader interface {
	read(pending []byte, size int) ([]byte, error)
	control(f func(fd uintptr)) error
}
