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
	return keep(pending), err
}

// keep returns pending for the caller to hold, or nil, its buffer back in the pool, when
// it holds no bytes: a reader keeps no buffer while nothing is pending.
func keep(pending []byte) []byte {
	if len(pending) == 0 {
		pool.Put(pending) // a nil or foreign buffer is ignored
		return nil
	}
	return pending
}

// Handler is what Serve drives: the session's read loop.
type Handler interface {
	// BeforeRead runs before every read and every wait for readability, with the count of
	// pending bytes. stop ends Serve (the session closed, or must change its reader);
	// bounded reports that a read deadline bounds the coming wait (see Serve).
	BeforeRead(pending int) (stop, bounded bool)
	// ReadSize is the size of the buffer to take when nothing is pending.
	ReadSize() int
	// Received is given pending extended by n new bytes, read into room bytes of space;
	// it returns what stays pending (with spare capacity for the next read, or nil) and
	// whether Serve must end.
	Received(pending []byte, n, room int) (rest []byte, stop bool)
}

// Serve reads the connection and hands every read's bytes to h until h stops it (err
// nil) or a read fails: a deadline, a closed connection, or io.EOF for the peer's
// orderly close. It returns the bytes still pending, or nil.
//
// On Unix the whole loop runs inside one RawConn.Read call, which is what makes it cheap:
// the runtime's poller is edge-triggered, and within one call a readiness that arrives
// while h runs is not forgotten, so a read that came back short (the socket was emptied)
// may be followed by a wait rather than by a second read that would only return EAGAIN: a
// request/reply exchange costs two system calls instead of three. h must therefore never
// read or close the connection itself: both wait for this call to return.
//
// A short read does not always mean an empty socket: when the peer's FIN (or a reset)
// arrived with the last bytes, the read stops before it, and the readiness it raised was
// already consumed by the wait that woke this loop. Nothing would ever wake that wait, so
// the reader skips the second read only when BeforeRead reports a deadline bounding the
// wait; the owner must then look again at a quiet socket when the deadline fires (the
// session parks, and its level-triggered parker sees the FIN at once).
func (r *Reader) Serve(h Handler, pending []byte) ([]byte, error) {
	if r.raw != nil {
		return r.raw.serve(h, pending)
	}
	for {
		if stop, _ := h.BeforeRead(len(pending)); stop {
			return pending, nil
		}
		before := len(pending)
		var err error
		pending, err = r.Read(pending, h.ReadSize())
		if n := len(pending) - before; n > 0 {
			var stop bool
			if pending, stop = h.Received(pending, n, cap(pending)-before); stop {
				return pending, nil
			}
		}
		if err != nil {
			return pending, err
		}
	}
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
	serve(h Handler, pending []byte) ([]byte, error)
	control(f func(fd uintptr)) error
}
