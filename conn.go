package supersocket

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/netread"
	"github.com/supersocket-go/supersocket/internal/pool"
)

// maxReadSize bounds how far a session's read buffer grows for a busy stream.
const maxReadSize = 64 << 10

// serveConn is a session's goroutine: every handler of the session runs here, which is
// what keeps them ordered and never concurrent (see the package documentation).
func (srv *Server[T]) serveConn(c net.Conn, lt *tlsListener, ls *listenerStats, ip netip.Addr) {
	defer srv.wg.Done()
	srv.tune(c)
	var tc *tls.Conn
	if lt != nil {
		var err error
		if tc, err = srv.handshake(c, lt.outer); err != nil {
			c.Close()
			srv.release(ip)
			srv.counters.handshakeFailures.Add(1)
			srv.log.Debug("tls handshake failed; no session", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
	}
	s := srv.openSession(c, tc, ip)
	s.listener = ls
	ls.sessions.Add(1)
	if s.begin() {
		s.serveIdle()
	} else {
		s.finish()
	}
}

// openSession makes and registers the session of a connection; tc is its TLS layer, if
// any, over c.
func (srv *Server[T]) openSession(c net.Conn, tc *tls.Conn, ip netip.Addr) *Session[T] {
	s := newSession(srv, c)
	s.ip = ip
	if tc != nil {
		s.stream = tc
		s.tlsConn.Store(tc)
	} else if s.dw.t.Init(c) {
		s.dw.s = s
		s.queue.SetDirect(&s.dw)
	}
	srv.sessions.add(s)
	if srv.State() == StateStopping {
		// Opened while a stop was taking its snapshot of the registry.
		s.Close(CloseServerShutdown)
	}
	return s
}

// tune applies the socket options of the Config. Keep-alive is set by the listener.
func (srv *Server[T]) tune(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	var errs []error
	if srv.cfg.Nagle {
		errs = append(errs, tc.SetNoDelay(false))
	}
	if n := srv.cfg.SocketReadBuffer; n > 0 {
		errs = append(errs, tc.SetReadBuffer(n))
	}
	if n := srv.cfg.SocketWriteBuffer; n > 0 {
		errs = append(errs, tc.SetWriteBuffer(n))
	}
	if err := errors.Join(errs...); err != nil {
		srv.log.Debug("socket options not applied", "remote", c.RemoteAddr().String(), "err", err)
	}
}

// begin makes the session's filter and runs Connected; false if the session cannot go on.
func (s *Session[T]) begin() bool {
	if err := s.makeFilter(); err != nil {
		s.srv.log.Error("cannot create the receive filter", "session", s.id, "err", err)
		s.Close(CloseInternalError)
		return false
	}
	if h := s.srv.h.Connected; h != nil && s.closed.Load() == 0 {
		s.call(func() { h(s) })
	}
	s.rd = netread.New(s.stream)
	s.readSize = s.srv.cfg.ReceiveBufferSize
	return true
}

// idleHop is how long a session waits for bytes, with nothing pending, before it gives up
// its goroutine. Handling requests grows a goroutine's stack (to 4 KiB and more), and the
// runtime keeps that stack while the goroutine waits. On Linux the session then parks: its
// goroutine exits and the server's parker starts a new one when the socket is readable
// (see parker); elsewhere it moves its wait to a fresh goroutine, on the smallest stack.
//
// A quarter second keeps a burst of new connections from holding a grown stack each for
// long, which is what the process's resident memory remembers after the burst (3.6–4.0
// KB per idle connection at 10 000 connections, against 6.6 KB with one second), and is
// still far longer than the gaps of a busy session, so steady traffic never parks.
const idleHop = 250 * time.Millisecond

// serveRead reads and dispatches until the session closes (it returns true) or until it
// has been idle for idleHop (false): the caller then parks it or continues it on a fresh
// goroutine. The loop itself is netread's Serve, driving the Session as its Handler
// (through readLoop, below); serveRead handles what ends a Serve.
func (s *Session[T]) serveRead() (done bool) {
	s.armed = false
	var pending []byte
	for s.closed.Load() == 0 {
		var err error
		pending, err = s.rd.Serve(&s.loop, pending)
		if s.upgrade != nil && s.closed.Load() == 0 {
			// StartTLS: the replies so far have left in plaintext; the rest of the stream
			// is TLS, bytes already received included. It runs here, outside Serve, since
			// the handshake reads the connection.
			err := s.upgradeTLS(pending)
			if cap(pending) > 0 {
				pool.Put(pending)
			}
			pending = nil
			if err != nil {
				s.srv.log.Info("starttls failed; closing session", "session", s.id, "err", err)
				s.Close(CloseSocketError)
				break
			}
			s.rd = netread.New(s.stream)
			s.armed = false
			s.lastActive.Store(time.Now().UnixNano())
			continue
		}
		if err == nil {
			continue // stopped by BeforeRead: closed
		}
		if s.armed && len(pending) == 0 && s.closed.Load() == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			s.conn.SetReadDeadline(time.Time{})
			if s.closed.Load() != 0 {
				break
			}
			s.hopped = true
			return false
		}
		s.readFailed(err)
	}
	if cap(pending) > 0 {
		pool.Put(pending)
	}
	return true
}

// readLoop is the session as netread's Handler; a field of the Session, so handing it to
// Serve allocates nothing, and an unexported type, so its methods stay out of Session's API.
type readLoop[T any] struct{ s *Session[T] }

// BeforeRead stops the read loop once the session closes or a StartTLS is pending, and
// keeps the idle deadline that ends an idle session's goroutine (see idleHop); that
// deadline is what bounds the wait (netread.Reader.Serve).
func (l *readLoop[T]) BeforeRead(pending int) (stop, bounded bool) {
	s := l.s
	if s.closed.Load() != 0 || s.upgrade != nil {
		return true, false
	}
	// Only a raw TCP session hops: its reader holds no buffer while it waits. Asked each
	// time round, since StartTLS replaces the reader.
	switch idle := pending == 0; {
	case idle && !s.hopped && (!s.armed || s.lastActive.Load()-s.armedAt > int64(s.srv.idleHop/2)) && s.rd.ReleasesIdleBuffer():
		// Re-armed at most every idleHop/2 of activity, not on every read: setting a
		// deadline costs a timer update. The hop comes idleHop/2 to idleHop after the
		// last request.
		s.armedAt = s.lastActive.Load()
		s.conn.SetReadDeadline(time.Unix(0, s.armedAt).Add(s.srv.idleHop))
		s.armed = true
		if s.closed.Load() != 0 { // Close's wake-up deadline must win
			s.conn.SetReadDeadline(aLongTimeAgo)
		}
	case s.armed && !idle:
		// Bytes of an unfinished request: no idle deadline while waiting for the rest.
		s.conn.SetReadDeadline(time.Time{})
		s.armed = false
		if s.closed.Load() != 0 {
			s.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
	return false, s.armed
}

// ReadSize is the next read's buffer size, which adapts to the stream (see Received).
func (l *readLoop[T]) ReadSize() int { return l.s.readSize }

// Received counts n new bytes, adapts the read size, and dispatches every complete
// request in pending.
func (l *readLoop[T]) Received(pending []byte, n, room int) (rest []byte, stop bool) {
	s := l.s
	s.hopped = false
	min0 := s.srv.cfg.ReceiveBufferSize
	// The read size doubles when a read fills its room, and halves when what the buffer
	// holds (the last read and the unfinished request before it) is under an eighth of
	// it: judged by the read alone, the tail of a request that straddled two reads would
	// shrink the size straight back, and every such request would cost two reads.
	switch {
	case n >= room:
		s.readSize = min(2*s.readSize, max(min0, maxReadSize))
	case len(pending) < s.readSize/8:
		s.readSize = max(s.readSize/2, min0)
	}
	s.srv.counters.bytesIn.Add(uint64(n))
	rest = s.process(pending)
	return rest, s.closed.Load() != 0 || s.upgrade != nil
}

// serveReadHopped continues serveRead on a fresh goroutine (see idleHop).
func (s *Session[T]) serveReadHopped() {
	defer s.srv.wg.Done()
	s.serveIdle()
}

// serveIdle runs serveRead and finishes the session when it closes. A session idle past
// idleHop parks (Linux: no goroutine until its socket is readable, see parker) or else
// continues on a fresh goroutine, whose stack is the smallest.
func (s *Session[T]) serveIdle() {
	if !s.serveRead() {
		s.srv.wg.Add(1) // this goroutine still holds a count: safe
		if !s.srv.park(s) {
			go s.hopFn()
		}
		return
	}
	s.finish()
}

func (s *Session[T]) makeFilter() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("filter factory panicked: %v", p)
		}
	}()
	f := s.srv.cfg.Filter(s.srv.cfg.MaxRequestLength)
	if f == nil {
		return errors.New("filter factory returned nil")
	}
	s.useFilter(f)
	return nil
}

// useFilter makes f the session's filter, noting once whether it can name a next one,
// rather than asking with a type assertion after every request.
func (s *Session[T]) useFilter(f filter.Filter) {
	s.filter = f
	s.switcher, _ = f.(filter.Switcher)
}

// readFailed closes the session for a read error. After Close the read was woken on
// purpose, and the reason is already set.
func (s *Session[T]) readFailed(err error) {
	if s.closed.Load() != 0 {
		return
	}
	if errors.Is(err, io.EOF) {
		// The peer may only have shut its sending side: let the writer finish first
		// (bounded by CloseLinger). A reset that the writer's failed write consumed also
		// reads as EOF here; waiting lets the writer report it as SocketError.
		if linger := s.srv.cfg.CloseLinger; linger > 0 && s.udp == nil {
			s.conn.SetWriteDeadline(time.Now().Add(linger))
			s.queue.WaitIdle()
		}
		s.Close(CloseClientClosing)
		return
	}
	s.srv.log.Debug("read failed", "session", s.id, "err", err)
	s.Close(CloseSocketError)
}

// process hands every complete request in buf to the Request handler and returns what is
// left: nil when everything was consumed (the buffer goes back to the pool), otherwise the
// unconsumed bytes moved to the front of a buffer with room for more.
//
// A reply to a lone request leaves as soon as the handler sends it, written by the
// sending goroutine itself when the socket takes it at once. When one read brought
// several requests (a pipelining client), their replies are held and leave together in
// one write when the batch ends.
func (s *Session[T]) process(buf []byte) []byte {
	rest := s.dispatchBatch(buf)
	if s.held {
		s.flush()
	}
	return rest
}

// flush ends a Hold: held replies leave now.
func (s *Session[T]) flush() {
	s.held = false
	s.queue.Release() // a write error closes the session via writeFailed
}

func (s *Session[T]) dispatchBatch(buf []byte) []byte {
	limit := s.srv.cfg.MaxRequestLength
	b := batch{data: buf}
	s.dispatch(&b, limit)
	if b.handled {
		if b.clock.IsZero() {
			b.clock = time.Now()
		}
		s.lastActive.Store(b.clock.UnixNano())
		s.served.Store(true)
	}
	if b.failed {
		return buf // the session is closed; serveRead returns the buffer to the pool
	}
	data := b.data
	if len(data) == 0 || s.closed.Load() != 0 {
		pool.Put(buf)
		return nil
	}
	// The unfinished request's buffer is reused rather than a new one of readSize
	// taken, so it grows to readSize here: else a stream whose requests straddle every
	// read would never read more than its first buffer held.
	return pool.Compact(buf, data, s.readSize, limit)
}

// batch is the progress of one dispatch, which its panic guard reads.
type batch struct {
	data     []byte    // not yet consumed
	inFilter bool      // the filter is running (a panic is the filter's, not a handler's)
	handled  bool      // a request was handled
	failed   bool      // the session was closed for a bad request or a panic
	clock    time.Time // when the last handler returned, if ObserveRequest is set
	key      string    // the key of the request being handled
}

// observeGuarded reports a panicked request to ObserveRequest from the panic guard, where
// a second panic would escape.
func observeGuarded(observe func(string, time.Duration), key string, d time.Duration) {
	defer func() { _ = recover() }()
	observe(key, d)
}

// dispatch runs the filter and the Request handler over b.data until it needs more bytes
// or the session closes. One deferred recover guards the whole batch rather than one per
// request: a panic, in the filter (CloseInternalError) or in a handler
// (CloseApplicationError), ends the session anyway.
func (s *Session[T]) dispatch(b *batch, limit int) {
	// ObserveRequest is fed one clock reading per request: a request's time runs from
	// the previous handler's return (or the batch's start) to its own handler's return.
	observe := s.srv.cfg.ObserveRequest
	if observe != nil {
		b.clock = time.Now()
	}
	defer s.guard(b, observe)
	for len(b.data) > 0 && s.closed.Load() == 0 {
		f := s.filter
		b.inFilter = true
		req, n, err := f.Filter(b.data)
		b.inFilter = false
		switch {
		case err != nil:
			b.failed = true
			s.protocolError(err)
			return
		case n == 0:
			if len(b.data) >= limit {
				b.failed = true
				s.tooMuchBuffered(len(b.data), limit)
			}
			return
		case n > len(b.data):
			b.failed = true
			s.filterOverran(n, len(b.data))
			return
		case n > limit:
			b.failed = true
			s.tooLarge(n, limit)
			return
		}
		b.handled = true
		if !s.held && n < len(b.data) {
			// More bytes follow this request: hold the replies for one write.
			s.queue.Hold()
			s.held = true
		}
		s.filterSet = false
		s.srv.counters.requests.Add(1)
		sw := s.switcher // the filter that produced req, whatever the handler sets
		if observe != nil {
			b.key = req.Key
		}
		s.srv.h.Request(s, req)
		if observe != nil {
			now := time.Now()
			observe(req.Key, now.Sub(b.clock))
			b.clock = now
		}
		if sw != nil && !s.filterSet {
			if next := sw.Next(); next != nil {
				s.useFilter(next)
			}
		}
		b.data = b.data[n:]
		if s.upgrade != nil {
			return // StartTLS: the rest of the bytes are for the handshake (serveRead)
		}
	}
}

// guard is dispatch's deferred panic guard: a panic in the filter closes the session
// with CloseInternalError, one in a handler with CloseApplicationError. It is a method
// rather than a closure, and the failure paths below are out-of-line calls, to keep
// dispatch's stack frame small: a session's stack is cold in the cache when it wakes
// among many, and every line of frame touched is a miss.
func (s *Session[T]) guard(b *batch, observe func(string, time.Duration)) {
	p := recover()
	if p == nil {
		return
	}
	b.failed = true
	if b.inFilter {
		s.srv.log.Error("receive filter panicked", "session", s.id, "panic", p, "stack", string(debug.Stack()))
		s.Close(CloseInternalError)
		return
	}
	s.srv.log.Error("handler panicked; closing session", "session", s.id, "panic", p, "stack", string(debug.Stack()))
	s.Close(CloseApplicationError)
	if observe != nil {
		observeGuarded(observe, b.key, time.Since(b.clock))
	}
}

// tooMuchBuffered closes a session whose filter wants more bytes than MaxRequestLength
// allows a request to have.
//
//go:noinline
func (s *Session[T]) tooMuchBuffered(have, limit int) {
	s.protocolError(fmt.Errorf("%w: %d bytes buffered without a complete request (MaxRequestLength %d)", filter.ErrTooLarge, have, limit))
}

// tooLarge closes a session that sent a request over MaxRequestLength.
//
//go:noinline
func (s *Session[T]) tooLarge(n, limit int) {
	s.protocolError(fmt.Errorf("%w: %d-byte request (MaxRequestLength %d)", filter.ErrTooLarge, n, limit))
}

// filterOverran closes the session of a filter that claimed more bytes than it was
// given: a bug in the filter, not the peer's fault.
//
//go:noinline
func (s *Session[T]) filterOverran(n, have int) {
	s.srv.log.Error("receive filter consumed more bytes than it was given", "session", s.id, "n", n, "len", have)
	s.Close(CloseInternalError)
}

func (s *Session[T]) protocolError(err error) {
	s.srv.log.Info("protocol error; closing session", "session", s.id, "remote", s.RemoteAddr().String(), "err", err)
	s.Close(CloseProtocolError)
}

// call runs a handler other than Request, recovering a panic.
func (s *Session[T]) call(fn func()) {
	defer s.recoverHandler()
	fn()
}

func (s *Session[T]) recoverHandler() {
	if p := recover(); p != nil {
		s.srv.log.Error("handler panicked; closing session", "session", s.id, "panic", p, "stack", string(debug.Stack()))
		s.Close(CloseApplicationError)
	}
}

// finish ends the session once reading has stopped: it waits for the writer to flush
// (bounded by CloseLinger), leaves the registry, closes the socket, then runs Closed.
func (s *Session[T]) finish() {
	srv := s.srv
	if s.udp != nil {
		srv.udp.remove(s)
	} else {
		s.queue.WaitIdle()
	}
	// Counts first, socket second: once the peer sees the close, SessionCount, Stats
	// and the slot under MaxConnections already reflect it.
	srv.sessions.remove(s)
	srv.release(s.ip)
	if s.listener != nil {
		s.listener.sessions.Add(-1)
	}
	reason := s.CloseReason()
	srv.counters.closes[reason].Add(1)
	if s.udp == nil {
		if s.stream != s.conn {
			s.stream.Close() // TLS: close_notify, bounded by the write deadline
		}
		s.conn.Close()
		s.queue.Discard()
	}
	srv.log.Debug("session closed", "session", s.id, "remote", s.RemoteAddr().String(), "reason", reason.String())
	if h := srv.h.Closed; h != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					srv.log.Error("Closed handler panicked", "session", s.id, "panic", p, "stack", string(debug.Stack()))
				}
			}()
			h(s, reason)
		}()
	}
	close(s.done)
}
