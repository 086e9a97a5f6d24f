//go:build linux

package supersocket

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/supersocket-go/supersocket/internal/eventloop"
)

// Accepting on the epoll engine (docs/engines.md, "Accepting").
//
// A listener is accepted on inside a loop: a duplicate of its descriptor is in one
// loop's epoll set (listener i in loop i mod N), level-triggered. When it is readable
// that loop accepts (accept4, non-blocking), admits (AllowConnect, MaxConnections,
// per-IP), keeps the new socket — unless it holds pickSlack more sessions than the least
// loaded loop, which then gets it — and serves its first turn at once: begin
// (Connected), then a read, which finds the first request when it came with the
// handshake. A new connection thus costs no other thread's wake-up. At most acceptBatch
// connections are accepted per event: the rest are reported again at the loop's next
// look, after the sessions' events of this one.
//
// One loop, not every loop with EPOLLEXCLUSIVE: an exclusive wake-up goes to one waiter
// of all the socket's epoll instances, those of other processes included, and a loop
// woken just as its listener closes (the drain of a hand-over, whose new process holds
// the same socket) would leave the connection in the backlog with nobody told of it.
//
// A listener with accept pacing (Config.AcceptRate) keeps an accept goroutine instead
// (acceptLoop): waiting for a token must not hold a loop.
//
// An accept that fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS…)
// takes the listener out of that loop's set for a back-off (5 ms doubling to 1 s, as
// the goroutine engine backs off), then a timer puts it back: a listener that stays
// readable cannot make a loop spin. Close (Drain, Shutdown, Stop) takes the listener's
// lock, which the loop holds only around accept4 and its own epoll changes for it,
// removes it from the loop's set and only then closes the duplicate: no loop accepts
// on it afterwards, and no descriptor reused under its number is ever accepted on.

// acceptBatch bounds the connections a loop accepts per readiness of a listener.
const acceptBatch = 16

// pickSlack is how many sessions more than the least loaded loop a loop may hold and
// still keep the connections it accepts.
const pickSlack = 16

// listenerGen is the registration number in a listener's events (its index in
// engine.lls is their descriptor half); sessions' registrations never take it.
const listenerGen = ^uint32(0)

// loopListener is a TCP listener of the epoll engine: the net.Listener Start bound, and a
// duplicate of its descriptor — registered in a loop's epoll set (fd), or, for the
// accept goroutine, a file that Go's poller waits on (a net.Listener's RawConn cannot
// wait for readability). Close closes both.
type loopListener struct {
	net.Listener
	stats *listenerStats

	// The accept goroutine's (acceptLoop): nil when a loop accepts.
	file *os.File
	raw  syscall.RawConn

	// The loop's (acceptOn): the duplicate, -1 for the accept goroutine.
	fd  int
	idx int // its index in engine.lls
	// mu: the loop accepts and changes its registration under the read lock (a timer
	// too), Close takes the write lock to end them.
	mu      sync.RWMutex
	closed  bool
	polls   []*eventloop.Poller // by loop index: the instance of the loop that accepts; nil for the others
	backoff []time.Duration     // per loop: its last back-off, 0 after an accept (that loop's runner's)
	timers  []*time.Timer       // per loop: the back-off's timer, if one was set
	onClose func()              // counts the listener out of the engine's acceptors
}

// listenIn is what a listener is registered for in its loop: readability,
// level-triggered.
const listenIn = eventloop.In

// loopListen prepares a bound TCP listener for the epoll engine: the socket options
// every accepted socket inherits from it (TCP_NODELAY, keep-alive, buffer sizes: Linux
// copies them into each new socket, so accepting costs no setsockopt), and a duplicate of
// its descriptor, for the loops (inLoops) or for the accept goroutine.
func (srv *Server[T]) loopListen(tl *net.TCPListener, ls *listenerStats, inLoops bool) (*loopListener, error) {
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	dup := -1
	if err := rc.Control(func(fd uintptr) {
		if serr = srv.inheritedOptions(int(fd)); serr == nil && inLoops {
			// Non-blocking like the original: the flag belongs to the open file.
			dup, serr = eventloop.Dup(int(fd))
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	ll := &loopListener{Listener: tl, stats: ls, fd: dup}
	if inLoops {
		return ll, nil
	}
	f, err := tl.File() // a duplicate, non-blocking like the original: Go's poller waits on it
	if err != nil {
		return nil, err
	}
	if ll.raw, err = f.SyscallConn(); err != nil {
		f.Close()
		return nil, err
	}
	ll.file = f
	return ll, nil
}

// inheritedOptions sets on a listening socket the options of Config that the sockets it
// accepts inherit.
func (srv *Server[T]) inheritedOptions(fd int) error {
	cfg := &srv.cfg
	errs := []error{eventloop.NoDelay(fd, !cfg.Nagle), eventloop.SetBuffers(fd, cfg.SocketReadBuffer, cfg.SocketWriteBuffer)}
	if ka := cfg.KeepAlive; ka > 0 {
		secs := max(1, int(ka/time.Second))
		// As net.ListenConfig does for the connections it accepts: idle time and interval
		// the period, 9 probes.
		errs = append(errs,
			syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1),
			syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, secs),
			syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, secs),
			syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9))
	}
	return errors.Join(errs...)
}

// Close stops accepting and closes the listener. The loop's duplicate leaves its
// epoll set before it is closed, under the lock its loop accepts under.
func (ll *loopListener) Close() error {
	if ll.file != nil {
		err := ll.Listener.Close()
		ll.file.Close()
		return err
	}
	ll.mu.Lock()
	wasOpen := !ll.closed
	if wasOpen {
		ll.closed = true
		for i, p := range ll.polls {
			if p != nil {
				p.Del(ll.fd)
			}
			if t := ll.timers[i]; t != nil {
				t.Stop()
			}
		}
		eventloop.Close(ll.fd)
	}
	ll.mu.Unlock()
	if wasOpen && ll.onClose != nil {
		ll.onClose()
	}
	return ll.Listener.Close()
}

// listen starts accepting on ll: in the loops, or, with accept pacing or when the
// loops cannot take the listener, on an accept goroutine.
func (e *engine[T]) listen(ll *loopListener) {
	if ll.fd >= 0 {
		if e.register(ll) {
			return
		}
		// Not registered anywhere: the duplicate becomes the accept goroutine's.
		f := os.NewFile(uintptr(ll.fd), "listener")
		raw, err := f.SyscallConn()
		if err != nil {
			f.Close()
			e.srv.log.Error("listener cannot accept", "addr", ll.Addr().String(), "err", err)
			return
		}
		ll.file, ll.raw, ll.fd = f, raw, -1
	}
	e.r.startLoop(func() { e.acceptLoop(ll) })
}

// register puts listener ll in its loop's epoll set; false if that fails, which leaves
// the listener to an accept goroutine.
func (e *engine[T]) register(ll *loopListener) bool {
	n := len(e.loops)
	ll.polls, ll.backoff, ll.timers = make([]*eventloop.Poller, n), make([]time.Duration, n), make([]*time.Timer, n)
	e.acceptors.Add(1)
	ll.onClose = func() {
		e.acceptors.Add(-1)
		e.kickSupervisor()
	}
	ll.mu.Lock()
	defer ll.mu.Unlock()
	l := e.loops[ll.idx%n]
	if err := l.p.Add(ll.fd, listenIn, listenerData(ll.idx)); err != nil {
		e.srv.log.Warn("listener cannot be accepted on in an event loop; it has an accept goroutine", "addr", ll.Addr().String(), "err", err)
		e.acceptors.Add(-1)
		ll.onClose = nil
		return false
	}
	ll.polls[l.idx] = l.p
	return true
}

// listenerData is what listener idx's events carry.
func listenerData(idx int) uint64 { return uint64(uint32(idx)) | uint64(listenerGen)<<32 }

// acceptOn runs on loop l's runner when listener ll is readable: it accepts up to
// acceptBatch connections, each admitted and registered, and serves the first turn of
// those the loop keeps. Like serveOne it reports false when the supervisor gave the loop
// to a new runner meanwhile (AllowConnect, or a Connected or Request handler, held it):
// this runner must then leave the loop alone. Accepting and admitting run with hseq
// odd, so that a blocking AllowConnect costs the loop's sessions one supervisor tick, as
// a blocking handler does.
func (l *loop[T]) acceptOn(rn *runner, ll *loopListener) (attached bool) {
	for range acceptBatch {
		v := l.hseq.Add(1)
		if l.e.napping.Load() {
			l.e.wakeSupervisor()
		}
		c, more := l.accept(ll)
		if !l.hseq.CompareAndSwap(v, v+1) {
			// c, if any, is registered: its first event reaches the new runner.
			return false
		}
		if c != nil && c.loop == l && c.acquire() {
			// Its first turn now: begin, and a read. Its registration reported it
			// writable, which the next look finds with connNew cleared and skips.
			if !l.serveOne(rn, c, allInput) {
				return false
			}
		}
		if !more {
			return true
		}
	}
	return true
}

// accept accepts one connection on ll and opens it (nil if it was refused); more: the
// listener may hold others.
func (l *loop[T]) accept(ll *loopListener) (c *loopConn[T], more bool) {
	var sa eventloop.Sockaddr
	ll.mu.RLock()
	if ll.closed {
		ll.mu.RUnlock()
		return nil, false
	}
	fd, errno := eventloop.Accept(uintptr(ll.fd), &sa)
	if errno != 0 {
		if errno != syscall.EAGAIN {
			l.pause(ll, errno)
		}
		ll.mu.RUnlock()
		return nil, false
	}
	if i := l.idx; ll.backoff[i] != 0 {
		ll.backoff[i] = 0
	}
	ll.mu.RUnlock()
	return l.e.open(fd, sa.AddrPort(), ll.stats, l), true
}

// pause takes listener ll out of loop l's epoll set after a failed accept (out of
// descriptors, and the like), and puts it back after a back-off, as the goroutine engine
// backs off (acceptFailed): the listener stays readable, and a level-triggered
// registration would have the loop spin. Called under ll.mu's read lock.
func (l *loop[T]) pause(ll *loopListener, errno syscall.Errno) {
	i := l.idx
	p := ll.polls[i]
	if p == nil {
		return
	}
	p.Del(ll.fd)
	b := min(max(2*ll.backoff[i], 5*time.Millisecond), time.Second)
	ll.backoff[i] = b
	l.e.srv.log.Warn("accept failed; retrying", "addr", ll.Addr().String(), "err", &net.OpError{Op: "accept", Net: "tcp", Addr: ll.Addr(), Err: errno}, "retry_in", b)
	ll.timers[i] = time.AfterFunc(b, func() {
		ll.mu.RLock()
		defer ll.mu.RUnlock()
		if ll.closed {
			return
		}
		if err := p.Add(ll.fd, listenIn, listenerData(ll.idx)); err != nil {
			l.e.srv.log.Error("listener cannot rejoin its event loop", "addr", ll.Addr().String(), "err", err)
		}
	})
}

// acceptLoop accepts on a listener with accept pacing (or one the loops could not take)
// until the server stops: admission as for the goroutine engine, then the new socket
// joins a loop, in turn (open). It runs as one of the run's loops.
func (e *engine[T]) acceptLoop(ll *loopListener) {
	e.acceptors.Add(1)
	defer func() {
		e.acceptors.Add(-1)
		e.kickSupervisor()
	}()
	srv, r := e.srv, e.r
	var sa eventloop.Sockaddr
	var nfd int
	var errno syscall.Errno
	accept := func(fd uintptr) bool {
		nfd, errno = eventloop.Accept(fd, &sa)
		return errno != syscall.EAGAIN
	}
	var backoff time.Duration
	for {
		if srv.acceptRate != nil && !srv.acceptRate.wait(r.quit) {
			return
		}
		err := ll.raw.Read(accept)
		if err == nil && errno != 0 {
			err = &net.OpError{Op: "accept", Net: "tcp", Addr: ll.Addr(), Err: errno}
		}
		if err != nil {
			if errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.EINVAL) || errors.Is(err, os.ErrClosed) {
				// The listener was closed under the call, or before it (Drain, Close:
				// the duplicate's *os.File reports os.ErrClosed).
				err = net.ErrClosed
			}
			if !srv.acceptFailed(r, ll.Addr(), err, &backoff) {
				return
			}
			continue
		}
		backoff = 0
		e.open(nfd, sa.AddrPort(), ll.stats, nil)
	}
}

// pick returns the loop for a connection that loop l accepted: l itself, whose runner
// is awake and serves the connection's first turn at once, unless l holds more than
// pickSlack sessions more than the least loaded loop, which then gets it (a burst of
// long-lived connections still spreads over the loops).
func (e *engine[T]) pick(l *loop[T]) *loop[T] {
	n := l.conns.Load()
	best, least := l, n
	for _, m := range e.loops {
		if k := m.conns.Load(); k < least {
			best, least = m, k
		}
	}
	if n-least > pickSlack {
		return best
	}
	return l
}

// open admits an accepted socket and makes it a session of a loop: the one pick chooses
// for a connection that loop from accepted, or the next in turn when from is nil (the
// accept goroutine). It returns the session's connection, nil if it was refused.
func (e *engine[T]) open(fd int, remote netip.AddrPort, ls *listenerStats, from *loop[T]) *loopConn[T] {
	srv := e.srv
	srv.counters.accepted.Add(1)
	ls.accepted.Add(1)
	var ip netip.Addr
	if srv.cfg.MaxConnectionsPerIP > 0 {
		ip = remote.Addr()
	}
	why := ErrConnectionNotAllowed
	if srv.cfg.AllowConnect == nil || srv.allowConnect(net.TCPAddrFromAddrPort(remote)) {
		why = srv.take(ip)
	}
	if why != nil {
		eventloop.Close(fd)
		srv.refused(net.TCPAddrFromAddrPort(remote), why)
		return nil
	}
	var l *loop[T]
	if from != nil {
		l = e.pick(from)
	} else {
		l = e.loops[int(e.next.Add(1))%len(e.loops)]
	}
	s, c := newLoopSession(srv, e.r, l, fd)
	// The session keeps the peer's IP whether MaxConnectionsPerIP counts it or not:
	// RemoteAddr is made of it (release counts it out only under a cap).
	s.ip = remote.Addr()
	c.port = remote.Port()
	s.listener = ls
	ls.sessions.Add(1)
	// Counted, in the table, and registered before epoll may report it: its first event
	// (a new socket is writable at once) runs begin on its loop, unless the loop that
	// accepted it serves it first (acceptOn). A Close meanwhile (a stop under way)
	// finishes it from a goroutine of its own, which closes the descriptor under c.mu: it
	// is registered only if still open.
	e.live.Add(1)
	l.conns.Add(1)
	e.add(c)
	srv.register(s)
	c.mu.Lock()
	var err error
	if !c.fdClosed {
		err = l.p.Add(fd, registered, c.data())
	}
	c.mu.Unlock()
	if err != nil {
		srv.log.Warn("cannot register a connection with its loop; closing it", "remote", remote.String(), "err", err)
		s.Close(CloseSocketError)
	}
	return c
}
