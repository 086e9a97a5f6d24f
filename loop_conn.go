//go:build linux

package supersocket

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/supersocket-go/supersocket/internal/eventloop"
	"github.com/supersocket-go/supersocket/internal/netwrite"
	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/sendq"
)

// loopSession is a session of the epoll engine, in one allocation: the Session's hot
// fields, the connection's, then the rest.
type loopSession[T any] struct {
	Session[T]
	lc   loopConn[T]
	info sessionInfo[T]
}

// loopConn is the epoll engine's transport: a raw socket owned by a loop (loop.go). The
// loop reads it and dispatches on its runner; Send writes to it directly from any
// goroutine when its queue is empty, and what the socket does not take is written by
// the loop when epoll reports it writable (see flush and writable).
type loopConn[T any] struct {
	loop  *loop[T]
	fd    int32
	gen   uint32        // the registration's number, in its events' data
	state atomic.Uint32 // who owns the session: conn* bits
	out   atomic.Uint32 // the parked writer: out* values
	// paused: reading is stopped while the send queue is above its high-water mark;
	// changed under mu.
	paused atomic.Bool
	port   uint16 // the peer's port (its IP is the Session's ip)
	held   bool   // replies of a batch are held (hold)
	// fdClosed is set, under mu, before the descriptor is closed and may be reused: mu
	// orders what other goroutines do with the descriptor (epoll_ctl, shutdown,
	// getsockname) against its close (release).
	fdClosed bool
	in       []byte // the bytes of an unfinished request, in a pooled buffer; nil when none
	queue    sendq.Queue
	mu       sync.Mutex
}

// session returns the Session c belongs to: c lives inside its loopSession, at a fixed
// offset behind it (a pointer to it would cost every idle session 8 bytes).
func (c *loopConn[T]) session() *Session[T] {
	return (*Session[T])(unsafe.Add(unsafe.Pointer(c), -unsafe.Offsetof(loopSession[T]{}.lc)))
}

// Ownership bits of loopConn.state.
const (
	connBusy     uint32 = 1 << iota // an owner serves the session
	connReadable                    // input arrived while it was owned: the owner reads again
	connNew                         // begin has not run yet
	connDead                        // finished: nobody may own it again
)

// States of loopConn.out: the writer role, when the socket is full, waits for the loop to
// see the socket writable.
const (
	outIdle   uint32 = iota // no writer waits
	outParked               // the writer role waits for EPOLLOUT (flush parked it)
	outEdge                 // EPOLLOUT came while no writer waited
	outDead                 // released: no flush any more
)

// registered is the events a session's socket is registered for: edge-triggered
// readability, the peer's FIN and writability. Reading paused leaves writability alone.
const (
	registered = eventloop.In | eventloop.RdHup | eventloop.Out | eventloop.ET
	pausedRead = eventloop.Out | eventloop.ET
)

// newLoopSession makes a session of the epoll engine for the accepted socket fd; the
// caller registers it.
func newLoopSession[T any](srv *Server[T], r *run, l *loop[T], fd int) (*Session[T], *loopConn[T]) {
	ls := new(loopSession[T])
	s, c := &ls.Session, &ls.lc
	initSession(s, &ls.info, srv, r)
	c.loop, c.fd = l, int32(fd)
	c.state.Store(connNew)
	c.queue.Init(srv.cfg.SendQueueSize, srv.cfg.SendQueueBytes, c)
	c.queue.SetDirect(c)
	s.tr = c
	return s, c
}

// acquire makes the caller the session's owner; false if it has an owner (the input
// that came is then the owner's to read) or has finished.
func (c *loopConn[T]) acquire() bool {
	for {
		old := c.state.Load()
		switch {
		case old&connDead != 0:
			return false
		case old&connBusy != 0:
			if old&connReadable != 0 || c.state.CompareAndSwap(old, old|connReadable) {
				return false
			}
		case c.state.CompareAndSwap(old, old|connBusy):
			return true
		}
	}
}

// letGo gives the session back to its loop; false if input arrived while it was owned,
// which the owner must read first (it still owns the session).
func (c *loopConn[T]) letGo() bool {
	for {
		old := c.state.Load()
		if old&connReadable != 0 {
			if c.state.CompareAndSwap(old, old&^connReadable) {
				return false
			}
			continue
		}
		if c.state.CompareAndSwap(old, old&^connBusy) {
			return true
		}
	}
}

// serve implements transport for the goroutine engine's owners (own, resume), which a
// session of the epoll engine never has: its loop serves it (serveOn).
func (c *loopConn[T]) serve() bool { panic("supersocket: a loop session served by a goroutine") }

// serveOn runs on the session's owner (a loop's runner): begin, if it has not run, then
// reading and dispatching until the socket is drained, then, unless it must come back
// (more: its turn ended with bytes to read, and it stays owned), the session goes back to
// the loop, or finishes if it was closed.
func (c *loopConn[T]) serveOn(rn *runner, events uint32) (more bool) {
	s := c.session()
	if c.state.Load()&connNew != 0 {
		c.state.And(^connNew)
		s.begin()
	}
	for {
		if s.closed.Load() == 0 && !c.paused.Load() && events&^eventloop.Out != 0 {
			if c.read(rn, events) {
				return true
			}
		}
		if s.closed.Load() != 0 {
			c.end()
			return false
		}
		if c.letGo() {
			// A Close from another goroutine that found the session owned left its end
			// to the owner: look once more, now that it is let go.
			if s.closed.Load() == 0 || !c.acquire() {
				return false
			}
		}
		events = allInput
	}
}

// read reads the socket and dispatches what arrives until the socket is drained, the
// session closes or reading pauses; more: it read maxReadsPerEvent times and the socket
// may hold more. The requests of a read are handled before the next read.
//
// Bytes go into the runner's buffer. An unfinished request at the end of a read stays
// at the buffer's front and the next read lands after it, so a stream of pipelined
// requests that straddle reads still costs one read per buffer, not one per request.
// Only when the turn ends with such bytes (the socket is empty, or the session must give
// the loop up) do they move into a pooled buffer of the session's own, which the next
// turn copies back; an idle session holds none. A request too large for half the
// runner's buffer is read in the session's buffer, which dispatch grows up to
// MaxRequestLength.
func (c *loopConn[T]) read(rn *runner, events uint32) (more bool) {
	s := c.session()
	srv := s.srv
	// A short read means the socket is empty, unless the peer's FIN came too: then read
	// on to see the end.
	untilEmpty := events&(eventloop.RdHup|eventloop.Hup|eventloop.Err) != 0
	kept := 0 // the bytes of an unfinished request at the front of rn.buf
	for range maxReadsPerEvent {
		if c.in != nil && 2*len(c.in) <= len(rn.buf) {
			kept = copy(rn.buf, c.in)
			pool.Put(c.in)
			c.in = nil
		}
		buf := rn.buf[kept:]
		if c.in != nil {
			// dispatch left room after the unfinished request's bytes (see Session.dispatch):
			// it grows the buffer up to MaxRequestLength, and a request that fills it is
			// refused there.
			if buf = c.in[len(c.in):cap(c.in)]; len(buf) == 0 {
				s.protocolError(errors.New("receive buffer full without a complete request"))
				return false
			}
		}
		n, errno := eventloop.Read(int(c.fd), buf)
		switch {
		case errno == syscall.EAGAIN:
			c.keep(rn.buf[:kept])
			return false
		case errno != 0:
			c.readFailed(&net.OpError{Op: "read", Net: "tcp", Err: errno})
			return false
		case n == 0:
			c.readFailed(io.EOF)
			return false
		}
		srv.counters.bytesIn.Add(uint64(n))
		if c.in != nil {
			c.in = s.dispatch(c.in[:len(c.in)+n], srv.cfg.ReceiveBufferSize)
		} else {
			kept = c.dispatchShared(rn, kept+n)
		}
		if c.held {
			c.held = false
			c.queue.Release() // a write error closes the session via writeFailed
		}
		if c.out.Load() == outParked {
			c.pressure()
		}
		if s.closed.Load() != 0 || c.paused.Load() || n < len(buf) && !untilEmpty {
			c.keep(rn.buf[:kept])
			return false
		}
	}
	c.keep(rn.buf[:kept])
	return true
}

// dispatchShared dispatches the requests in the first n bytes of the runner's buffer and
// returns how many bytes of an unfinished request it moved to the buffer's front (a
// memmove within the buffer); a rest of more than half the buffer goes to a buffer of
// the session's own instead (see read). The held replies were copied into the send
// queue, so the handled requests' bytes are free to overwrite.
func (c *loopConn[T]) dispatchShared(rn *runner, n int) (kept int) {
	s := c.session()
	b := batch{data: rn.buf[:n]}
	s.dispatchBatch(&b)
	s.handled(&b)
	rest := b.data
	if len(rest) == 0 || b.failed || s.closed.Load() != 0 {
		return 0
	}
	if 2*len(rest) > len(rn.buf) {
		c.keep(rest)
		return 0
	}
	return copy(rn.buf, rest)
}

// keep moves the bytes of an unfinished request into a pooled buffer of the session's
// own, for the session's next turn, unless the session is closed.
func (c *loopConn[T]) keep(rest []byte) {
	if len(rest) == 0 || c.session().closed.Load() != 0 {
		return
	}
	c.in = append(pool.Get(max(c.session().srv.cfg.ReceiveBufferSize, 2*len(rest)))[:0], rest...)
}

// drainCheck is Server.Drain's look at an epoll session, on the drain's goroutine: the
// session closes once it is drained — no runner serves it, begin has run, no request is
// partly read, nothing is queued to send, it has been quiet for the drain's quiet time
// and its socket holds no unread byte. The check owns the session while it looks (a
// runner busy with it is left alone: a later pass looks again). Input that arrives
// meanwhile is left to the loop: the socket's registration is renewed, which reports
// the bytes waiting at once.
//
// Drain looks every drainQuiet/2; a session whose quiet time ends before the next look is
// looked at again when it ends (a timer), as the goroutine engine's read deadline does:
// else a client that pauses for a little more than the quiet time between bursts could
// be missed by every look.
func (c *loopConn[T]) drainCheck() {
	s := c.session()
	if !s.srv.door.draining.Load() || c.state.Load()&(connBusy|connNew|connDead) != 0 || !c.acquire() {
		return
	}
	if c.in == nil && !c.queue.Busy() && !c.unread() {
		if wait := time.Until(s.quietUntil()); wait <= 0 {
			s.srv.log.Debug("drained; closing session", "session", s.id, "remote", s.RemoteAddr().String())
			s.Close(CloseServerShutdown) // its end is left to this owner
		} else if wait < drainQuiet/2 {
			time.AfterFunc(wait, c.drainCheck)
		}
	}
	if s.closed.Load() != 0 {
		c.end()
		return
	}
	if c.letGo() {
		return
	}
	// Input came while the check owned the session: hand it back and let epoll report it.
	for !c.letGo() {
	}
	c.mu.Lock()
	if !c.fdClosed && !c.paused.Load() {
		c.loop.p.Mod(int(c.fd), registered, c.data())
	}
	c.mu.Unlock()
}

// unread reports whether the socket holds bytes not yet read.
func (c *loopConn[T]) unread() bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(c.fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == nil && n > 0
}

// readFailed closes the session for a read error or the peer's FIN.
func (c *loopConn[T]) readFailed(err error) {
	s := c.session()
	if s.closed.Load() != 0 {
		return
	}
	if errors.Is(err, io.EOF) {
		// The peer may only have shut its sending side: replies still queued leave first
		// (drain, bounded by CloseLinger).
		s.Close(CloseClientClosing)
		return
	}
	s.srv.log.Debug("read failed", "session", s.id, "err", err)
	s.Close(CloseSocketError)
}

// end finishes the closed session, on its owner: on the runner at once, unless a writer
// still flushes queued bytes, which finish's drain waits for; a goroutine of its own
// waits then, so that the loop never does.
func (c *loopConn[T]) end() {
	if !c.queue.Busy() {
		c.session().finish()
		return
	}
	c.session().run.wg.Add(1) // the loops of the run are counted in it: never zero here
	go c.finishOff()
}

// finishOff finishes the session on a goroutine of its own.
func (c *loopConn[T]) finishOff() {
	defer c.session().run.wg.Done()
	c.session().finish()
}

func (c *loopConn[T]) remoteAddr() net.Addr {
	return &net.TCPAddr{IP: c.session().ip.AsSlice(), Port: int(c.port)}
}

// localAddr is the listener's address, unless it listens on all addresses: then the
// socket's own, while it is open.
func (c *loopConn[T]) localAddr() net.Addr {
	la := c.session().listener.bound
	if tl, ok := la.(*net.TCPAddr); ok && tl.IP.IsUnspecified() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.fdClosed {
			if ap, err := eventloop.LocalAddr(int(c.fd)); err == nil {
				return net.TCPAddrFromAddrPort(ap)
			}
		}
	}
	return la
}

// send implements transport.
func (c *loopConn[T]) send(parts [][]byte, wait time.Duration) error {
	return sendQueued(&c.queue, nil, parts, wait)
}

// hold implements transport.
func (c *loopConn[T]) hold() {
	c.held = true
	c.queue.Hold()
}

// StartWriter implements sendq.Owner: the caller has taken the writer role for bytes
// queued. flush writes them without blocking.
func (c *loopConn[T]) StartWriter() { c.flush() }

// WriteFailed implements sendq.Owner.
func (c *loopConn[T]) WriteFailed(err error) { c.session().writeFailed(err) }

// flush writes what is queued, holding the writer role, without blocking; when the
// socket is full it parks the role for the loop, which calls flush again once epoll
// reports the socket writable.
func (c *loopConn[T]) flush() {
	for {
		blocked, err := c.queue.Flush()
		if err != nil || !blocked {
			break
		}
		if c.out.CompareAndSwap(outIdle, outParked) {
			return
		}
		// The socket became writable while the rest went back into the queue (outEdge):
		// write again. outDead cannot be seen here: release waits for the writer role.
		c.out.CompareAndSwap(outEdge, outIdle)
	}
	if c.paused.Load() {
		c.pressure()
	}
}

// writable is the loop's part of flush: epoll reported the socket writable.
func (c *loopConn[T]) writable() {
	for {
		switch c.out.Load() {
		case outParked:
			if c.out.CompareAndSwap(outParked, outIdle) {
				c.flush()
				return
			}
		case outIdle:
			if c.out.CompareAndSwap(outIdle, outEdge) {
				return
			}
		default:
			return
		}
	}
}

// pressure stops reading the socket while its send queue holds more than half its
// bounds, and reads again once it holds less than a quarter: a peer that does not read
// its replies stops being read, in the kernel's buffers first and then in TCP's window.
func (c *loopConn[T]) pressure() {
	msgs, bytes := c.queue.Len()
	cfg := &c.session().srv.cfg
	high := msgs > cfg.SendQueueSize/2 || bytes > cfg.SendQueueBytes/2
	low := msgs < cfg.SendQueueSize/4 && bytes < cfg.SendQueueBytes/4
	if !high && !low || c.paused.Load() == high {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fdClosed || c.paused.Load() == high {
		return
	}
	events := uint32(registered)
	if high {
		events = pausedRead
	}
	// Turning readability back on reports the bytes waiting in the socket at once.
	if err := c.loop.p.Mod(int(c.fd), events, c.data()); err == nil {
		c.paused.Store(high)
	}
}

// wake implements transport: no more sends, queued bytes bounded by linger (dropped
// when it is negative), and the session's end started: by its owner if it has one,
// else by a goroutine that takes it over.
func (c *loopConn[T]) wake(linger time.Duration) {
	c.queue.Close()
	if linger < 0 {
		c.dropOutput()
	}
	if c.acquire() {
		c.session().run.wg.Add(1)
		go c.finishOff()
	}
}

// dropOutput drops what is queued, and ends a writer role parked for the loop with
// what it had in flight.
func (c *loopConn[T]) dropOutput() {
	c.queue.Discard()
	if c.out.CompareAndSwap(outParked, outIdle) {
		c.queue.Abandon()
	}
}

// cut implements transport: queued bytes dropped and the peer told at once, the
// descriptor left open for finish.
func (c *loopConn[T]) cut() {
	c.dropOutput()
	c.mu.Lock()
	if !c.fdClosed {
		eventloop.Shutdown(int(c.fd))
	}
	c.mu.Unlock()
}

// drain implements transport: it waits for the writer role to end, bounded by
// CloseLinger from now, after which queued bytes are dropped.
func (c *loopConn[T]) drain() {
	if !c.queue.Busy() {
		return
	}
	t := time.AfterFunc(c.session().srv.cfg.CloseLinger, c.dropOutput)
	c.queue.WaitIdle()
	t.Stop()
}

// release implements transport: the descriptor leaves the table and is closed, and the
// session's buffers go back to the pool.
func (c *loopConn[T]) release() {
	c.out.Store(outDead)
	c.mu.Lock()
	c.fdClosed = true
	c.loop.e.remove(c)
	eventloop.Close(int(c.fd))
	c.mu.Unlock()
	c.state.Or(connDead)
	pool.Put(c.in)
	c.in = nil
	c.queue.Discard()
	c.loop.conns.Add(-1)
	c.loop.e.ended()
}

// data is what the socket's events carry: its descriptor and registration.
func (c *loopConn[T]) data() uint64 { return uint64(uint32(c.fd)) | uint64(c.gen)<<32 }

// Try implements sendq.Direct: a write that never blocks, from the holder of the
// queue's writer role (so the descriptor stays open meanwhile: release waits for it).
func (c *loopConn[T]) Try(b []byte) (int, error) {
	n, errno := netwrite.Write(uintptr(c.fd), b)
	if n > 0 {
		c.session().wrote(int64(n))
	}
	return n, netwrite.Error(errno)
}

// TryVec implements sendq.Direct.
func (c *loopConn[T]) TryVec(bufs [][]byte) (int64, error) {
	var iov [64]syscall.Iovec
	var total int64
	for len(bufs) > 0 {
		k := 0
		for k < len(iov) && len(bufs) > 0 {
			if b := bufs[0]; len(b) > 0 {
				iov[k] = syscall.Iovec{Base: &b[0]}
				iov[k].SetLen(len(b))
				k++
			}
			bufs = bufs[1:]
		}
		n, errno := netwrite.Writev(uintptr(c.fd), iov[:k])
		total += n
		if errno != 0 {
			if total > 0 {
				c.session().wrote(total)
			}
			return total, netwrite.Error(errno)
		}
	}
	if total > 0 {
		c.session().wrote(total)
	}
	return total, nil
}
