package supersocket

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/sendq"
)

// UDP engine.
//
// Each UDP listener runs one read loop. A datagram is routed to its session, keyed by the
// sender's address or, with Config.UDPSessionKey, by an ID it carries; a new key makes a
// new session (subject to AllowConnect and MaxConnections). The datagram is copied into
// the session's bounded inbox, and the session's goroutine handles its datagrams one at a
// time in arrival order, each through the session's filter, with the same events as TCP.
// Replies are written straight to the socket, to the address the session's latest
// datagram came from.

// udpSocket is one bound UDP listener.
type udpSocket[T any] struct {
	srv   *Server[T]
	pc    *net.UDPConn
	stats *listenerStats
}

// udpRoute is where a UDP session's replies go: the socket and address of its latest
// datagram. It is replaced, never mutated, when the client roams.
type udpRoute[T any] struct {
	sock *udpSocket[T]
	addr netip.AddrPort
}

// udpPeer is the UDP half of a Session.
type udpPeer[T any] struct {
	route atomic.Pointer[udpRoute[T]]
	inbox chan []byte   // pooled copies of datagrams, oldest first
	quit  chan struct{} // closed by Session.Close
	key   netip.AddrPort
	byID  bool
}

// udpTable finds UDP sessions by key.
type udpTable[T any] struct {
	mu     sync.RWMutex
	byAddr map[netip.AddrPort]*Session[T]
	byID   map[string]*Session[T]
}

// tune applies SocketReadBuffer and SocketWriteBuffer to the shared socket: for UDP the
// receive buffer is what absorbs bursts.
func (u *udpSocket[T]) tune() {
	cfg := &u.srv.cfg
	var errs []error
	if cfg.SocketReadBuffer > 0 {
		errs = append(errs, u.pc.SetReadBuffer(cfg.SocketReadBuffer))
	}
	if cfg.SocketWriteBuffer > 0 {
		errs = append(errs, u.pc.SetWriteBuffer(cfg.SocketWriteBuffer))
	}
	if err := errors.Join(errs...); err != nil {
		u.srv.log.Warn("udp socket options not applied", "addr", u.pc.LocalAddr().String(), "err", err)
	}
}

func (u *udpSocket[T]) readLoop() {
	srv := u.srv
	defer srv.wg.Done()
	// One byte more than the largest request, so an oversized datagram is seen as such
	// rather than silently truncated to a valid-looking one.
	buf := make([]byte, min(srv.cfg.MaxRequestLength+1, 1<<16))
	for {
		n, addr, err := u.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-srv.quit:
				return
			default:
			}
			srv.log.Debug("udp read failed", "addr", u.pc.LocalAddr().String(), "err", err)
			continue
		}
		srv.counters.bytesIn.Add(uint64(n))
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		u.deliver(buf[:n], addr)
	}
}

// deliver routes one datagram to its session's inbox.
func (u *udpSocket[T]) deliver(d []byte, from netip.AddrPort) {
	srv := u.srv
	s := srv.udpSession(u, d, from)
	if s == nil {
		return
	}
	if r := s.udp.route.Load(); r.addr != from || r.sock != u {
		s.udp.route.Store(&udpRoute[T]{sock: u, addr: from})
	}
	cp := pool.Get(len(d))
	copy(cp, d)
	select {
	case s.udp.inbox <- cp:
	default:
		pool.Put(cp)
		srv.counters.datagramsDropped.Add(1)
	}
}

// udpSession returns the open session a datagram belongs to, creating it if needed, or
// nil when the datagram is to be dropped.
func (srv *Server[T]) udpSession(u *udpSocket[T], d []byte, from netip.AddrPort) *Session[T] {
	t := &srv.udp
	var id []byte
	keyed := srv.cfg.UDPSessionKey != nil
	if keyed {
		var ok bool
		if id, ok = srv.cfg.UDPSessionKey(d); !ok || len(id) == 0 {
			srv.counters.datagramsDropped.Add(1)
			return nil
		}
	}
	t.mu.RLock()
	var s *Session[T]
	if keyed {
		s = t.byID[string(id)]
	} else {
		s = t.byAddr[from]
	}
	t.mu.RUnlock()
	if s != nil && s.closed.Load() == 0 {
		return s
	}
	return srv.newUDPSession(u, from, id, keyed, false, nil)
}

// newUDPSession admits and starts a session for a new key. Two datagrams racing for the
// same new key get the same session.
// Outbound sessions (Connect) skip AllowConnect. The caller holds a count of srv.wg, or
// runMu for reading with the server running, so adding the session's goroutine is safe.
func (srv *Server[T]) newUDPSession(u *udpSocket[T], from netip.AddrPort, id []byte, keyed, outbound bool, init func(*Session[T])) *Session[T] {
	t := &srv.udp
	t.mu.Lock()
	defer t.mu.Unlock()
	var s *Session[T]
	if keyed {
		s = t.byID[string(id)]
	} else {
		s = t.byAddr[from]
	}
	if s != nil && s.closed.Load() == 0 {
		return s
	}
	remote := net.UDPAddrFromAddrPort(from)
	if !outbound {
		srv.counters.accepted.Add(1)
		u.stats.accepted.Add(1)
	}
	ip, why := srv.admit(remote, outbound)
	if why != nil {
		if !outbound {
			srv.refused(remote, why)
		}
		return nil
	}
	s = newSession(srv, nil)
	s.ip = ip
	if !outbound {
		s.listener = u.stats
		u.stats.sessions.Add(1)
	}
	s.udp = &udpPeer[T]{
		inbox: make(chan []byte, srv.cfg.DatagramQueueSize),
		quit:  make(chan struct{}),
		key:   from,
		byID:  keyed,
	}
	s.udp.route.Store(&udpRoute[T]{sock: u, addr: from})
	if keyed {
		s.id = string(id)
		if t.byID == nil {
			t.byID = make(map[string]*Session[T])
		}
		t.byID[s.id] = s
	} else {
		if t.byAddr == nil {
			t.byAddr = make(map[netip.AddrPort]*Session[T])
		}
		t.byAddr[from] = s
	}
	srv.sessions.add(s)
	srv.wg.Add(1)
	if init != nil {
		init(s)
	}
	go srv.serveUDP(s)
	return s
}

func (t *udpTable[T]) remove(s *Session[T]) {
	t.mu.Lock()
	if s.udp.byID {
		if t.byID[s.id] == s {
			delete(t.byID, s.id)
		}
	} else if t.byAddr[s.udp.key] == s {
		delete(t.byAddr, s.udp.key)
	}
	t.mu.Unlock()
}

// serveUDP is a UDP session's goroutine: its handlers run here, in order.
func (srv *Server[T]) serveUDP(s *Session[T]) {
	defer srv.wg.Done()
	if srv.State() == StateStopping {
		s.Close(CloseServerShutdown)
	}
	s.runUDP()
	s.finish()
}

func (s *Session[T]) runUDP() {
	if err := s.makeFilter(); err != nil {
		s.srv.log.Error("cannot create the receive filter", "session", s.id, "err", err)
		s.Close(CloseInternalError)
	}
	if h := s.srv.h.Connected; h != nil && s.closed.Load() == 0 {
		s.call(func() { h(s) })
	}
	for s.closed.Load() == 0 {
		select {
		case d := <-s.udp.inbox:
			if rest := s.process(d); rest != nil {
				pool.Put(rest)
				s.protocolError(errors.New("datagram ends inside a request: one datagram must hold whole requests"))
			}
		case <-s.udp.quit:
		}
	}
	for {
		select {
		case d := <-s.udp.inbox:
			pool.Put(d)
		default:
			return
		}
	}
}

// sendUDP writes parts as one datagram to the session's current address. It does not
// queue: the datagram is in the kernel's hands, or refused, when it returns.
func (s *Session[T]) sendUDP(parts [][]byte) error {
	if s.closed.Load() != 0 {
		return ErrSessionClosed
	}
	// Gathered into a pooled buffer even for one part, so that buffers passed to Send
	// never escape to the heap through the socket call.
	b := pool.Get(sendq.Size(parts))[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	defer pool.Put(b)
	r := s.udp.route.Load()
	n, err := r.sock.pc.WriteToUDPAddrPort(b, r.addr)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrSessionClosed
		}
		return err
	}
	s.onWrote(int64(n))
	return nil
}
