package supersocket

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/netread"
	"github.com/supersocket-go/supersocket/internal/netwrite"
	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/sendq"
)

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read or write.
var aLongTimeAgo = time.Unix(1, 0)

// stream is the TCP transport, plain or TLS: the session's goroutine reads the socket
// and dispatches (stream_read.go), and replies go through a bounded send queue, written
// by the sender itself when the socket takes them at once, else by a writer goroutine
// that exists only while there is something to write.
//
// It lives inside its session's allocation (streamSession), hot fields first: see the
// Session struct.
type stream[T any] struct {
	s       *Session[T]
	rd      *netread.Reader
	armedAt int64 // lastActive when the idle deadline was set
	// readSize is the next read's buffer size (see Received): an int32, so that it
	// shares a word with the flags below and the send queue stays within the session's
	// first two cache lines.
	readSize int32
	// held: the replies of a batch are held (see hold); armed: an idle deadline bounds
	// the read (see BeforeRead); idleWait: the session went idle but could not park, so
	// it moved to a fresh goroutine and waits without a deadline.
	held, armed, idleWait bool
	queue                 sendq.Queue
	dw                    directWriter[T] // the queue's non-blocking writer (plain TCP on unix)

	ws      *wsConn[T] // the WebSocket layer, for a WebSocket session (ws_conn.go)
	initial []byte     // bytes read before the session existed (after a WebSocket upgrade)
	conn    net.Conn   // the socket: addresses, deadlines, shutdown, close
	rw      net.Conn   // what requests are read from and replies written to: conn, or TLS over it
	upgrade *tls.Config
	tlsConn atomic.Pointer[tls.Conn] // the TLS layer, once there is one
	tok     netread.Token            // the session's place in the server's parker
	writeFn func()                   // bound once: writeLoop, started without allocating
	wroteFn func(int64)              // bound once: wrote, the writer's byte count
}

// bindStream makes c, with its TLS layer tc if any, the session's transport.
func (s *Session[T]) bindStream(c net.Conn, tc *tls.Conn) {
	st := &s.tcp
	st.s, st.conn, st.rw = s, c, c
	st.queue.Init(s.srv.cfg.SendQueueSize, s.srv.cfg.SendQueueBytes, st)
	st.writeFn = st.writeLoop
	st.wroteFn = st.wrote
	if tc != nil {
		st.rw = tc
		st.tlsConn.Store(tc)
	} else if st.dw.t.Init(c) {
		st.dw.st = st
		st.queue.SetDirect(&st.dw)
	}
	s.tr = st
}

func (st *stream[T]) remoteAddr() net.Addr { return st.conn.RemoteAddr() }
func (st *stream[T]) localAddr() net.Addr  { return st.conn.LocalAddr() }

func (st *stream[T]) send(parts [][]byte, wait time.Duration) error {
	if w := st.ws; w != nil {
		// A WebSocket message (ws_send.go), decided here: one frame less under the handler.
		text := w.is(wsText)
		if text && w.cfg.Lines {
			return w.sendLine(parts, wait)
		}
		return w.sendBody(parts, text, wait)
	}
	return sendQueued(&st.queue, nil, parts, wait)
}

// sendFramed queues head and parts as one message of the stream's protocol, as they
// are: head is a frame header (WebSocket), or nil.
func (st *stream[T]) sendFramed(head []byte, parts [][]byte, wait time.Duration) error {
	return sendQueued(&st.queue, head, parts, wait)
}

// sendQueued queues head and parts as one message on q, waiting up to wait for room when wait > 0,
// and maps the queue's errors to the Session's.
func sendQueued(q *sendq.Queue, head []byte, parts [][]byte, wait time.Duration) error {
	err := q.PushFramed(head, parts)
	if err == sendq.ErrFull && wait > 0 {
		err = q.WaitForRoom(head, parts, wait)
	}
	switch err {
	case nil:
		return nil
	case sendq.ErrClosed:
		return ErrSessionClosed
	case sendq.ErrTimeout:
		return ErrSendTimeout
	default:
		return ErrSendQueueFull
	}
}

// hold holds the replies of a batch of requests, to leave in one write when it ends
// (flush).
func (st *stream[T]) hold() {
	st.held = true
	st.queue.Hold()
}

// flush ends a hold: held replies leave now.
func (st *stream[T]) flush() {
	st.held = false
	st.queue.Release() // a write error closes the session via writeFailed
}

// StartWriter implements sendq.Owner: it starts writeLoop. The queue calls it only while
// the session holds a count of its run (its owner goroutine, or the count a parked
// session keeps for its resume), so the count is never zero here.
func (st *stream[T]) StartWriter() {
	st.s.run.wg.Add(1)
	go st.writeFn()
}

// writeLoop drains the send queue; it runs only while there is something to write, so an
// idle session holds no writer goroutine.
func (st *stream[T]) writeLoop() {
	defer st.s.run.wg.Done()
	st.queue.Drain(st.rw, st.wroteFn) // a write error closes the session via writeFailed
}

// wrote counts n bytes written to the peer; writing makes the session active, unless
// all of it was WebSocket control frames.
func (st *stream[T]) wrote(n int64) {
	if st.ws != nil && !st.ws.activity(n) {
		st.s.srv.counters.bytesOut.Add(uint64(n))
		return
	}
	st.s.wrote(n)
}

// WriteFailed implements sendq.Owner: it closes the session for a write error. The queue
// calls it before it wakes blocked senders, so the reason is SocketError even if the
// reader then sees EOF.
func (st *stream[T]) WriteFailed(err error) { st.s.writeFailed(err) }

// writeFailed closes the session for a write error: the transports' send queues report
// them here.
func (s *Session[T]) writeFailed(err error) {
	if s.closed.Load() == 0 {
		s.srv.log.Debug("write failed", "session", s.id, "err", err)
	}
	s.Close(CloseSocketError)
}

func (st *stream[T]) wake(linger time.Duration) {
	if st.ws != nil && st.ws.wake(linger) {
		return
	}
	if linger < 0 {
		if st.queue.Close() {
			// End a write in progress too, or a peer that never reads holds the session.
			st.conn.SetWriteDeadline(aLongTimeAgo)
		}
		st.queue.Discard()
	} else if st.queue.Close() {
		st.conn.SetWriteDeadline(time.Now().Add(linger))
	}
	// Wake the reading goroutine, or bring one back for a parked session; it finishes
	// the session once the writer is done.
	st.conn.SetReadDeadline(aLongTimeAgo)
	st.s.srv.unpark(&st.tok)
}

// halfCloser is a connection that can shut down each direction (*net.TCPConn).
type halfCloser interface {
	CloseRead() error
	CloseWrite() error
}

func (st *stream[T]) cut() {
	st.queue.Discard()
	st.conn.SetWriteDeadline(aLongTimeAgo)
	// shutdown(2) in both directions: the peer sees a FIN now, a read in progress
	// returns, and a handler blocked inside the read callback keeps only the descriptor.
	if hc, ok := st.conn.(halfCloser); ok {
		hc.CloseWrite()
		hc.CloseRead()
	}
}

func (st *stream[T]) drain() { st.queue.WaitIdle() }

func (st *stream[T]) release() {
	if st.ws != nil {
		st.ws.release()
	}
	pool.Put(st.initial)
	st.initial = nil
	if st.rw != st.conn {
		st.rw.Close() // TLS: close_notify, bounded by the write deadline
	}
	st.conn.Close()
	st.queue.Discard()
}

// Closing implements netread.Sleeper: a closing session does not park.
func (st *stream[T]) Closing() bool { return st.s.closed.Load() != 0 }

// Resume implements netread.Sleeper: the parker runs it on a new goroutine, which owns
// the session from then on.
func (st *stream[T]) Resume() { st.s.resume() }

// directWriter is the session's non-blocking writer as its send queue sees it: the
// socket's Trier, and the count of what it writes. It lives inside the Session, so a
// direct send touches no other object than the socket's own.
type directWriter[T any] struct {
	st *stream[T]
	t  netwrite.Trier
}

// Try implements sendq.Direct.
func (d *directWriter[T]) Try(b []byte) (int, error) {
	n, err := d.t.Try(b)
	if n > 0 {
		d.st.wrote(int64(n))
	}
	return n, err
}

// TryVec implements sendq.Direct.
func (d *directWriter[T]) TryVec(bufs [][]byte) (int64, error) {
	n, err := d.t.TryVec(bufs)
	if n > 0 {
		d.st.wrote(n)
	}
	return n, err
}
