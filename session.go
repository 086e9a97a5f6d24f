package supersocket

import (
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/frame"
)

// Request is one request a receive filter found; see filter.Request.
type Request = filter.Request

// lastSessionID numbers sessions process-wide, so IDs stay unique across the servers of
// one process and across restarts.
var lastSessionID atomic.Uint64

// Session is one client connection: SuperSocket's AppSession. T is the application's
// per-session state, reached with Data without casts.
//
// Concurrency: ID, RemoteAddr, LocalAddr, StartTime, Server, LastActive, Send, TrySend,
// Close, Done, CloseReason and TLS are safe from any goroutine. SetFilter and StartTLS
// belong to the session's own handlers. Data returns a pointer the framework never
// touches after the session is created: the session's handlers may use it freely, since
// they never run concurrently with each other; other goroutines must synchronise their
// own access.
//
// How the session's bytes travel is its transport's business (a TCP stream, plain or
// TLS, or datagrams of a UDP socket); its life, from Connected to Closed, is written once,
// in lifecycle.go, for every transport.
type Session[T any] struct {
	// The fields a request touches come first, packed into the struct's first cache
	// lines: with a thousand sessions each wake finds its session cold in the cache, and
	// a miss per scattered field costs more than the rest of the session's own code.
	closed atomic.Uint32 // 0 while open, then 1 + the CloseReason (set once)
	// handling is set while a Connected or Request handler runs: a stop does not wait
	// for such a session (see Server.Stop).
	handling atomic.Bool
	served   atomic.Bool // a request has been handled (FirstRequestTimeout)
	// switching: a StartTLS is pending, so the transport must act before the next
	// request is dispatched.
	switching  bool
	srv        *Server[T]
	tr         transport[T]
	lastActive atomic.Int64  // unix nanoseconds
	frames     frame.Stepper // the receive filter; the session's owner only
	// sessionInfo holds the fields a request does not touch. It lives in the same
	// allocation as the Session, behind the transport's state, which follows the
	// Session's hot fields directly: see streamSession (the goroutine engine's session:
	// its hot fields then lead the allocation) and loopSession (the epoll engine's). Its
	// fields are promoted: s.id, s.run, s.tcp and so on.
	*sessionInfo[T]
}

// sessionInfo is the part of a Session that requests do not touch (see Session).
type sessionInfo[T any] struct {
	// streamPart is the goroutine engine's TCP transport state (s.tcp), right behind the
	// Session's hot fields; nil for a session of the epoll engine.
	*streamPart[T]
	id       string
	run      *run       // the server run the session belongs to: its goroutines count there
	ip       netip.Addr // the remote IP counted by MaxConnectionsPerIP, if any
	listener *listenerStats
	start    int64 // unix nanoseconds (a time.Time is three words)
	data     T
	// done is made when Done is first called, or set to closedDone by finish if it was
	// not (most sessions never need a channel).
	done atomic.Pointer[doneSignal]
}

// streamPart holds the goroutine engine's TCP transport state: the stream (s.tcp).
type streamPart[T any] struct {
	// tcp is the TCP transport's state, kept in the session's allocation so that a TCP
	// session, the common and the hot case, is one allocation (its hot fields lead it,
	// right behind the Session's). tr points at it for a TCP session; a UDP session
	// leaves it zero.
	tcp stream[T]
}

// doneSignal is the channel Done returns.
type doneSignal struct{ ch chan struct{} }

// closedDone is the Done of every session that finished before anyone asked.
var closedDone = func() *doneSignal {
	d := &doneSignal{ch: make(chan struct{})}
	close(d.ch)
	return d
}()

// streamSession is a session of the goroutine engine in one allocation: the Session's
// hot fields, then the TCP transport's (unused by UDP sessions), with its send queue
// within the first two cache lines (TestSessionHotFieldsLeadTheStruct), then the rest.
type streamSession[T any] struct {
	Session[T]
	stream streamPart[T]
	info   sessionInfo[T]
}

// initSession fills in a new session of the server's current run; info is its
// sessionInfo, in the same allocation.
func initSession[T any](s *Session[T], info *sessionInfo[T], srv *Server[T], r *run) {
	now := time.Now()
	s.sessionInfo = info
	s.srv = srv
	info.id = sessionID(srv.cfg.SessionIDPrefix, lastSessionID.Add(1))
	info.run = r
	info.start = now.UnixNano()
	s.lastActive.Store(now.UnixNano())
}

// wsSession is a WebSocket session of the goroutine engine in one allocation: a
// streamSession and, behind it, its WebSocket layer.
type wsSession[T any] struct {
	streamSession[T]
	ws wsConn[T]
}

// newWSSession makes a WebSocket session of the goroutine engine, of the server's
// current run, with what its handshake kept; the caller binds its transport.
func newWSSession[T any](srv *Server[T], r *run, hs *wsHandshake) *Session[T] {
	ws := new(wsSession[T])
	ws.info.streamPart = &ws.stream
	initSession(&ws.Session, &ws.info, srv, r)
	w := &ws.ws
	w.st, w.cfg, w.head, w.sub, w.compressed = &ws.stream.tcp, hs.cfg, hs.head, hs.sub, hs.compressed
	if hs.cfg.Text {
		w.state.Store(wsText)
	}
	w.heard.Store(ws.start)
	ws.stream.tcp.ws = w
	return &ws.Session
}

// newSession makes a session of the goroutine engine, of the server's current run; the
// caller binds its transport.
func newSession[T any](srv *Server[T], r *run) *Session[T] {
	ss := new(streamSession[T])
	ss.info.streamPart = &ss.stream
	initSession(&ss.Session, &ss.info, srv, r)
	return &ss.Session
}

// sessionID is Config.SessionIDPrefix followed by n in decimal, in one allocation.
func sessionID(prefix string, n uint64) string {
	if prefix == "" {
		return strconv.FormatUint(n, 10)
	}
	var buf [96]byte
	return string(strconv.AppendUint(append(buf[:0], prefix...), n, 10))
}

// ID returns the session's ID, unique within the process and starting with
// Config.SessionIDPrefix (for a UDP session keyed by Config.UDPSessionKey, the ID its
// datagrams carry).
func (s *Session[T]) ID() string { return s.id }

// RemoteAddr returns the peer's address; for a UDP session, the address its latest
// datagram came from.
func (s *Session[T]) RemoteAddr() net.Addr { return s.tr.remoteAddr() }

// LocalAddr returns the local address the session was accepted on (for UDP: of the
// socket its latest datagram came through).
func (s *Session[T]) LocalAddr() net.Addr { return s.tr.localAddr() }

// StartTime returns when the session was accepted.
func (s *Session[T]) StartTime() time.Time { return time.Unix(0, s.start) }

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
// to the new filter. A nil filter is ignored.
func (s *Session[T]) SetFilter(f filter.Filter) {
	if f != nil {
		s.frames.Set(f)
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

// send hands parts to the transport, waiting up to wait for room; policy says whether
// the server's full-queue policy applies (Send) or the caller only probes (TrySend,
// Broadcast).
func (s *Session[T]) send(parts [][]byte, wait time.Duration, policy bool) error {
	// The transport is called by its concrete type, not through the interface: an
	// interface call would make parts escape, and every Send would allocate its
	// variadic slice.
	var err error
	switch tr := s.tr.(type) {
	case *stream[T]:
		err = tr.send(parts, wait)
	case *datagrams[T]:
		err = tr.send(parts, wait)
	case *loopConn[T]:
		err = tr.send(parts, wait)
	default:
		panic("supersocket: a transport without a case in Session.send")
	}
	switch err {
	case nil, ErrSessionClosed:
		return err
	case ErrSendTimeout:
		s.srv.counters.sendQueueFull.Add(1)
		if s.srv.cfg.CloseOnSendTimeout {
			s.Close(CloseTimeOut)
		}
	case ErrSendQueueFull:
		s.srv.counters.sendQueueFull.Add(1)
		if policy && s.srv.cfg.CloseOnSendTimeout {
			s.Close(CloseTimeOut)
		}
	}
	return err
}

// isLoop reports whether s is a session of the epoll engine.
func isLoop[T any](s *Session[T]) bool {
	_, ok := s.tr.(*loopConn[T])
	return ok
}

// wrote counts n bytes written to the peer.
func (s *Session[T]) wrote(n int64) {
	s.srv.counters.bytesOut.Add(uint64(n))
	s.lastActive.Store(time.Now().UnixNano())
}

// Done returns a channel closed once the session has closed and its Closed handler has
// returned.
func (s *Session[T]) Done() <-chan struct{} {
	d := s.done.Load()
	if d == nil {
		d = &doneSignal{ch: make(chan struct{})}
		if !s.done.CompareAndSwap(nil, d) {
			d = s.done.Load() // made by another caller, or closedDone: finish came first
		}
	}
	return d.ch
}

// closeDone closes Done's channel: finish's last step.
func (s *Session[T]) closeDone() {
	if !s.done.CompareAndSwap(nil, closedDone) {
		close(s.done.Load().ch)
	}
}

// CloseReason returns why the session closed, or CloseUnknown while it is open.
func (s *Session[T]) CloseReason() CloseReason {
	if c := s.closed.Load(); c > 0 {
		return CloseReason(c - 1)
	}
	return CloseUnknown
}
