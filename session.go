package supersocket

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/netread"
	"github.com/supersocket-go/supersocket/internal/netwrite"
	"github.com/supersocket-go/supersocket/internal/sendq"
)

// Request is one request a receive filter found; see filter.Request.
type Request = filter.Request

// lastSessionID numbers sessions process-wide, so IDs stay unique across the servers of
// one process and across restarts.
var lastSessionID atomic.Uint64

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read or write.
var aLongTimeAgo = time.Unix(1, 0)

// Session is one client connection: SuperSocket's AppSession. T is the application's
// per-session state, reached with Data without casts.
//
// Concurrency: ID, RemoteAddr, LocalAddr, StartTime, Server, LastActive, Send, TrySend,
// Close, Done and CloseReason are safe from any goroutine. SetFilter belongs to the
// session's own handlers. Data returns a pointer the framework never touches after the
// session is created: the session's handlers may use it freely, since they never run
// concurrently with each other; other goroutines must synchronise their own access.
type Session[T any] struct {
	// The fields a request touches come first, packed into the struct's first cache
	// lines: with a thousand sessions each wake finds its session cold in the cache, and
	// a miss per scattered field cost more than the rest of the session's own code.
	loop   readLoop[T]   // the session as the read loop's handler
	closed atomic.Uint32 // 0 while open, then 1 + the CloseReason (set once)
	// held records that the reader holds the replies of a batch (see process); hopped
	// that the session moved its idle wait to a fresh goroutine and waits without a
	// deadline; armed an idle deadline set by BeforeRead at armedAt (lastActive then);
	// filterSet a SetFilter during the current request, which overrides the filter's own
	// Switcher choice.
	held       bool
	hopped     bool
	armed      bool
	filterSet  bool
	served     atomic.Bool // a request has been handled (FirstRequestTimeout)
	srv        *Server[T]
	readSize   int // the next read's buffer size (see serveRead)
	armedAt    int64
	lastActive atomic.Int64  // unix nanoseconds
	filter     filter.Filter // used by the session's goroutine only
	// switcher is filter as a filter.Switcher, or nil (see useFilter).
	switcher filter.Switcher
	// upgrade is a StartTLS pending until the current handler returns.
	upgrade *tls.Config
	rd      *netread.Reader
	queue   sendq.Queue
	dw      directWriter[T] // the queue's non-blocking writer (plain TCP on unix)

	id      string
	conn    net.Conn      // the socket: addresses, deadlines, close
	stream  net.Conn      // what requests are read from and replies written to: conn, or TLS over it
	parkTok atomic.Uint32 // non-zero while the session is parked (see parker)
	hopFn   func()        // bound once: serveReadHopped
	ip      netip.Addr    // the remote IP counted by MaxConnectionsPerIP, if any
	// listener counts the session in its ListenerStats; nil for outbound sessions.
	listener *listenerStats
	// tlsConn is the session's TLS layer once it has one.
	tlsConn atomic.Pointer[tls.Conn]
	start   time.Time
	data    T
	done    chan struct{} // closed after the Closed handler returned
	writeFn func()        // bound once: writeLoop, started without allocating
	wrote   func(int64)   // bound once: counts bytes written (writer goroutine)

	udp *udpPeer[T] // non-nil for a UDP session, whose conn is nil
}

func newSession[T any](srv *Server[T], c net.Conn) *Session[T] {
	now := time.Now()
	s := &Session[T]{
		id:     strconv.FormatUint(lastSessionID.Add(1), 10),
		srv:    srv,
		conn:   c,
		stream: c,
		start:  now,
		done:   make(chan struct{}),
	}
	s.lastActive.Store(now.UnixNano())
	s.queue.Init(srv.cfg.SendQueueSize, srv.cfg.SendQueueBytes, s.startWriter)
	s.queue.OnWriteError(s.writeFailed)
	s.wrote = s.onWrote
	s.writeFn = s.writeLoop
	s.hopFn = s.serveReadHopped
	s.loop.s = s
	return s
}

// ID returns the session's ID, unique within the process.
func (s *Session[T]) ID() string { return s.id }

// RemoteAddr returns the peer's address; for a UDP session, the address its latest
// datagram came from.
func (s *Session[T]) RemoteAddr() net.Addr {
	if s.udp != nil {
		return net.UDPAddrFromAddrPort(s.udp.route.Load().addr)
	}
	return s.conn.RemoteAddr()
}

// LocalAddr returns the local address the session was accepted on (for UDP: of the
// socket its latest datagram came through).
func (s *Session[T]) LocalAddr() net.Addr {
	if s.udp != nil {
		return s.udp.route.Load().sock.pc.LocalAddr()
	}
	return s.conn.LocalAddr()
}

// StartTime returns when the session was accepted.
func (s *Session[T]) StartTime() time.Time { return s.start }

// LastActive returns when the session last completed a request or wrote bytes. Bytes of
// an unfinished request do not count (a slowloris client stays idle).
func (s *Session[T]) LastActive() time.Time { return time.Unix(0, s.lastActive.Load()) }

// Server returns the server the session belongs to.
func (s *Session[T]) Server() *Server[T] { return s.srv }

// Data returns the session's own state, a zero T when the session starts.
func (s *Session[T]) Data() *T { return &s.data }

// SetFilter replaces the session's receive filter from the next request on: protocol
// switching and upgrades (SuperSocket's NextReceiveFilter). Call it only from the
// session's Connected or Request handler; bytes already received and not yet consumed go
// to the new filter.
func (s *Session[T]) SetFilter(f filter.Filter) {
	if f != nil {
		s.useFilter(f)
		s.filterSet = true
	}
}

// TrySend queues parts as one message and never blocks: the parts are copied, so the
// caller may reuse them as soon as TrySend returns, and they leave together and in order,
// whatever other goroutines send meanwhile. It returns ErrSendQueueFull when the queue
// holds SendQueueSize messages or SendQueueBytes bytes, and ErrSessionClosed once the
// session is closing. Safe from any goroutine.
//
// For a UDP session, TrySend and Send write parts at once as one datagram to the
// session's current address: there is no queue, and a full socket buffer drops the
// datagram in the kernel, as UDP does.
func (s *Session[T]) TrySend(parts ...[]byte) error {
	return s.send(parts, -1, false)
}

// Send is TrySend that, while the queue is full, waits up to SendTimeout for room,
// parked (it never spins), then returns ErrSendTimeout. What a full queue does to the
// session is the server's back-pressure policy:
//
//	SendTimeout > 0, CloseOnSendTimeout false: wait, then ErrSendTimeout; the session stays
//	SendTimeout > 0, CloseOnSendTimeout true:  wait, then close with CloseTimeOut
//	SendTimeout < 0, CloseOnSendTimeout false: drop: ErrSendQueueFull at once
//	SendTimeout < 0, CloseOnSendTimeout true:  close with CloseTimeOut at once
//
// It returns ErrSessionClosed if the session closes while it waits. Like TrySend it
// copies parts before returning. Safe from any goroutine.
func (s *Session[T]) Send(parts ...[]byte) error {
	return s.send(parts, s.srv.cfg.SendTimeout, true)
}

// send queues parts, waiting up to wait for room; policy says whether the server's
// full-queue policy applies (Send) or the caller only probes (TrySend, Broadcast).
func (s *Session[T]) send(parts [][]byte, wait time.Duration, policy bool) error {
	if s.udp != nil {
		return s.sendUDP(parts)
	}
	var err error
	if wait > 0 {
		err = s.queue.Wait(parts, wait)
	} else {
		err = s.queue.Push(parts)
	}
	switch err {
	case nil:
		return nil
	case sendq.ErrClosed:
		return ErrSessionClosed
	case sendq.ErrTimeout:
		s.srv.counters.sendQueueFull.Add(1)
		if s.srv.cfg.CloseOnSendTimeout {
			s.Close(CloseTimeOut)
		}
		return ErrSendTimeout
	default:
		s.srv.counters.sendQueueFull.Add(1)
		if policy && s.srv.cfg.CloseOnSendTimeout {
			s.Close(CloseTimeOut)
		}
		return ErrSendQueueFull
	}
}

// startWriter starts writeLoop. The queue calls it only while the session's goroutine is
// alive (it waits for the writer before ending), so the server's WaitGroup count is
// never zero here.
func (s *Session[T]) startWriter() {
	s.srv.wg.Add(1)
	go s.writeFn()
}

// writeFailed closes the session for a write error. The queue calls it before it wakes
// blocked senders, so the reason is SocketError even if the reader then sees EOF.
func (s *Session[T]) writeFailed(err error) {
	if s.closed.Load() == 0 {
		s.srv.log.Debug("write failed", "session", s.id, "err", err)
	}
	s.Close(CloseSocketError)
}

// writeLoop drains the send queue; it runs only while there is something to write, so an
// idle session holds no writer goroutine.
func (s *Session[T]) writeLoop() {
	defer s.srv.wg.Done()
	s.queue.Drain(s.stream, s.wrote) // a write error closes the session via writeFailed
}

// directWriter is the session's non-blocking writer as its send queue sees it: the
// socket's Trier, and the count of what it writes. It lives inside the Session, so a
// direct send touches no other object than the socket's own.
type directWriter[T any] struct {
	s *Session[T]
	t netwrite.Trier
}

// Try implements sendq.Direct.
func (d *directWriter[T]) Try(b []byte) (int, error) {
	n, err := d.t.Try(b)
	if n > 0 {
		d.s.onWrote(int64(n))
	}
	return n, err
}

// TryVec implements sendq.Direct.
func (d *directWriter[T]) TryVec(bufs [][]byte) (int64, error) {
	n, err := d.t.TryVec(bufs)
	if n > 0 {
		d.s.onWrote(n)
	}
	return n, err
}

func (s *Session[T]) onWrote(n int64) {
	s.srv.counters.bytesOut.Add(uint64(n))
	s.lastActive.Store(time.Now().UnixNano())
}

// Close closes the session with reason; the first reason given wins and later calls do
// nothing. Requests not yet handled are dropped; bytes queued before Close are flushed,
// bounded by CloseLinger, then the socket closes and the Closed handler runs on the
// session's goroutine. Close returns at once (see Done to wait). Safe from any goroutine,
// handlers included.
func (s *Session[T]) Close(reason CloseReason) {
	if !s.closed.CompareAndSwap(0, 1+uint32(reason)) {
		return
	}
	if s.udp != nil {
		close(s.udp.quit)
		return
	}
	linger := s.srv.cfg.CloseLinger
	if linger < 0 {
		if s.queue.Close() {
			// End a write in progress too, or a peer that never reads holds the session.
			s.conn.SetWriteDeadline(aLongTimeAgo)
		}
		s.queue.Discard()
	} else if s.queue.Close() {
		s.conn.SetWriteDeadline(time.Now().Add(linger))
	}
	// Wake the reading goroutine, or bring one back for a parked session; it ends the
	// session once the writer is done.
	s.conn.SetReadDeadline(aLongTimeAgo)
	s.srv.unpark(s)
}

// abort closes the session at once: queued bytes are dropped and the socket closed, which
// also ends a write in progress.
func (s *Session[T]) abort(reason CloseReason) {
	s.Close(reason)
	if s.udp != nil {
		return
	}
	s.queue.Discard()
	s.conn.Close()
}

// Done returns a channel closed once the session has closed and its Closed handler has
// returned.
func (s *Session[T]) Done() <-chan struct{} { return s.done }

// CloseReason returns why the session closed, or CloseUnknown while it is open.
func (s *Session[T]) CloseReason() CloseReason {
	if c := s.closed.Load(); c > 0 {
		return CloseReason(c - 1)
	}
	return CloseUnknown
}
