//go:build linux

package supersocket

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/supersocket-go/supersocket/internal/eventloop"
)

// loopListen prepares a bound TCP listener for the epoll engine: the socket options
// every accepted socket inherits from it (TCP_NODELAY, keep-alive, buffer sizes: Linux
// copies them into each new socket, so accepting costs no setsockopt), and a duplicate of
// its descriptor to wait on.
func (srv *Server[T]) loopListen(tl *net.TCPListener) (*loopListener, error) {
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = srv.inheritedOptions(int(fd)) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	f, err := tl.File() // a duplicate, non-blocking like the original: Go's poller waits on it
	if err != nil {
		return nil, err
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &loopListener{Listener: tl, file: f, raw: raw}, nil
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

// acceptLoop accepts on one listener of the engine until the server stops: admission as
// for the goroutine engine, then the new socket joins a loop (open). It runs as one of
// the run's loops.
func (e *engine[T]) acceptLoop(ll *loopListener, ls *listenerStats) {
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
		e.open(nfd, sa.AddrPort(), ls)
	}
}

// open admits an accepted socket and makes it a session of one of the loops.
func (e *engine[T]) open(fd int, remote netip.AddrPort, ls *listenerStats) {
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
		return
	}
	l := e.loops[int(e.next.Add(1))%len(e.loops)]
	s, c := newLoopSession(srv, e.r, l, fd)
	// The session keeps the peer's IP whether MaxConnectionsPerIP counts it or not:
	// RemoteAddr is made of it (release counts it out only under a cap).
	s.ip = remote.Addr()
	c.port = remote.Port()
	s.listener = ls
	ls.sessions.Add(1)
	// Counted, in the table, and registered before epoll may report it: its first event
	// (a new socket is writable at once) runs begin on its loop. A Close meanwhile (a stop
	// under way) finishes it from a goroutine of its own, which closes the descriptor
	// under c.mu: it is registered only if still open.
	e.live.Add(1)
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
}
